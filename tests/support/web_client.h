// HTTP/1.1 and WebSocket clients for tests that talk to radar-app, nginx or
// chromedriver over loopback TCP (Boost.Beast underneath).
// HttpConnection and WebSocketClient: one owner each (not thread-safe); a
// WebSocketClient reads on its own thread and buffers what arrives.
#ifndef STATESIDE_TESTS_SUPPORT_WEB_CLIENT_H_
#define STATESIDE_TESTS_SUPPORT_WEB_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::testing {

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string body;  // sent with Content-Type: application/json unless a header says otherwise
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. {"Cookie", "radar_sid=…"}
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;
  bool keep_alive = false;  // the server keeps the connection open

  // The first header of that name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
  // Every Set-Cookie header's value.
  std::vector<std::string> SetCookies() const;
  // The value of cookie `name` from Set-Cookie (may be "" when cleared),
  // nullopt if no Set-Cookie names it.
  std::optional<std::string> Cookie(std::string_view name) const;
};

// One keep-alive connection to 127.0.0.1:port.
class HttpConnection {
 public:
  static absl::StatusOr<std::unique_ptr<HttpConnection>> Open(
      int port, absl::Duration timeout = absl::Seconds(5));
  ~HttpConnection();

  // One request and its response within `timeout`. UNAVAILABLE when the
  // connection fails or the server closed it; DEADLINE_EXCEEDED on timeout.
  // After an error the connection is closed: open a new one.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request,
                                    absl::Duration timeout = absl::Seconds(10));

 private:
  struct Impl;
  explicit HttpConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection, closed afterwards.
absl::StatusOr<HttpResponse> HttpCall(int port, const HttpRequest& request,
                                      absl::Duration timeout = absl::Seconds(10));

// The value of `series` (its name and labels as /metrics writes them, e.g.
// `stateside_redis_redirects_total{kind="moved"}`) on the admin listener at
// 127.0.0.1:`port`: NOT_FOUND when /metrics has no such series, another
// error when it cannot be read.
absl::StatusOr<double> ScrapeMetric(int port, const std::string& series);

// A WebSocket client connection (text messages).
class WebSocketClient {
 public:
  struct Message {
    bool closed = false;      // the server closed the connection
    uint16_t close_code = 0;  // when closed: the code it sent (1005 if none)
    std::string text;         // when not closed: the message
  };

  // Upgrades GET `target` on 127.0.0.1:port with extra `headers` (e.g. the
  // cookie). A refused upgrade is FAILED_PRECONDITION with the HTTP status
  // in the message ("upgrade refused: 401 ...").
  static absl::StatusOr<std::unique_ptr<WebSocketClient>> Connect(
      int port, std::string_view target,
      const std::vector<std::pair<std::string, std::string>>& headers = {},
      absl::Duration timeout = absl::Seconds(5));
  ~WebSocketClient();  // closes (code 1000) if still open, joins the reader

  absl::Status Send(std::string_view text);
  // The next message (or the close) in arrival order; DEADLINE_EXCEEDED if
  // nothing arrives within `timeout`. After the close, every call returns the
  // same closed Message; UNAVAILABLE if the connection broke without a close.
  absl::StatusOr<Message> Read(absl::Duration timeout = absl::Seconds(5));
  // Reads until a message containing `needle` (skipping others) or `timeout`.
  absl::StatusOr<std::string> ReadUntil(std::string_view needle,
                                        absl::Duration timeout = absl::Seconds(5));

 private:
  struct Impl;
  explicit WebSocketClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_WEB_CLIENT_H_

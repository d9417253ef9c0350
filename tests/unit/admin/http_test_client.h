// A deliberately raw HTTP/1.1 client for the admin listener's tests: plain
// sockets, so tests can send half requests, garbage or huge headers, and read
// responses with a deadline. Not thread-safe: one owner per connection
// (sending from one thread while another waits for the close is fine).
#ifndef STATESIDE_TESTS_UNIT_ADMIN_HTTP_TEST_CLIENT_H_
#define STATESIDE_TESTS_UNIT_ADMIN_HTTP_TEST_CLIENT_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::testing {

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

class RawConnection {
 public:
  // Connects to 127.0.0.1:port (blocking, with a 5 s send timeout).
  static absl::StatusOr<RawConnection> Connect(int port);
  // Connects to host:port (an IPv4 or IPv6 literal), from the local address
  // `source` when given (e.g. "127.0.0.2": another loopback peer).
  static absl::StatusOr<RawConnection> Connect(std::string_view host, int port,
                                               std::string_view source = "");

  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&& other) noexcept;
  ~RawConnection();

  // False once the peer has closed or reset.
  bool Send(std::string_view data);
  // One response (Content-Length framed; `head`: no body follows) within
  // `timeout`; nullopt on close, reset, timeout or an unparsable reply.
  std::optional<RawResponse> ReadResponse(absl::Duration timeout,
                                          bool head = false);
  // True if the peer closes (EOF or reset) within `timeout`; bytes that
  // arrive meanwhile are discarded.
  bool WaitClosed(absl::Duration timeout);
  void Close();

 private:
  explicit RawConnection(int fd) : fd_(fd) {}
  // Appends what arrives before `deadline`; false on EOF, error or timeout.
  bool ReadMore(absl::Time deadline);

  int fd_ = -1;
  std::string pending_;  // received, not yet returned
};

// "GET /path HTTP/1.1" with a Host header and nothing else.
std::string GetRequest(std::string_view path, std::string_view method = "GET");

// An IPv4 address of an interface of this machine that is up and not
// loopback (e.g. the pod's or the host's own), for tests that need a remote
// peer without a network; nullopt if there is none.
std::optional<std::string> NonLoopbackLocalAddress();

// Connect, send `raw`, read one response.
std::optional<RawResponse> Exchange(int port, std::string_view raw,
                                    absl::Duration timeout = absl::Seconds(5));

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_ADMIN_HTTP_TEST_CLIENT_H_

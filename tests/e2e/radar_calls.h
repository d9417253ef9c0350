// Small helpers for talking to radar-app (directly or through nginx) in the
// end-to-end tests: requests with a cookie, login, JSON bodies.
// Free functions, thread-safe (each call opens its own connection).
#ifndef STATESIDE_TESTS_E2E_RADAR_CALLS_H_
#define STATESIDE_TESTS_E2E_RADAR_CALLS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tests/support/web_client.h"

namespace stateside::testing {

// A request carrying `cookie` ("name=value", as Login returns; "" = none);
// a null `body` sends none.
HttpRequest RadarGet(const std::string& target, const std::string& cookie = "");
HttpRequest RadarPost(const std::string& target, const nlohmann::json& body,
                      const std::string& cookie = "");

// "name=value" of the first Set-Cookie of `response` (whatever the cookie's
// name is configured to), "" if none.
std::string CookieHeader(const HttpResponse& response);

// POST /login {"user": user} on `port`; the Cookie header value to send
// afterwards. An error (with status and body) unless 200 with a cookie that
// is not empty.
absl::StatusOr<std::string> Login(int port, const std::string& user);

// The body as JSON (a discarded value if it is not JSON).
nlohmann::json BodyJson(const HttpResponse& response);

// "<status> <X-Instance-Id> <body>" for failure messages.
std::string Describe(const HttpResponse& response);

// The next text message of `ws` as JSON. An error if the connection closed
// (the message names the close code), nothing came in time, or the text is
// not JSON.
absl::StatusOr<nlohmann::json> NextJson(WebSocketClient& ws,
                                        absl::Duration timeout = absl::Seconds(10));

// A radar WebSocket and the `hello` it opened with.
struct RadarSocket {
  std::unique_ptr<WebSocketClient> ws;
  nlohmann::json hello;  // {"event":"hello","conn":…,"instance":…,"user":…}
  std::string instance() const { return hello.value("instance", ""); }
};

// Opens GET /ws on `port` with the cookie and reads the first message, which
// must be the hello.
absl::StatusOr<RadarSocket> OpenSocket(int port, const std::string& cookie);

// Sends {"join":room} and waits for {"joined":room} (the sidecar confirmed
// the membership), skipping other messages.
absl::Status Join(WebSocketClient& ws, const std::string& room);

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_E2E_RADAR_CALLS_H_

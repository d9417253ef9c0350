// Routes: radar-app's HTTP endpoints. HandleInline() answers what needs no
// sidecar call (the page, /healthz, 404/405) at once; StartAsync() serves
// GET /me, the hot path, with the client's asynchronous session read (no
// thread waits); Handle() makes synchronous sidecar calls for the rest and so
// runs on a worker thread, never on an I/O thread. Thread-safe: state is constant after construction
// (the Client and DrainState are themselves thread-safe).
//
// Sessions live in the sidecar only; the browser holds the signed cookie
// the sidecar made. Nothing about users is kept here.
#ifndef STATESIDE_APP_ROUTES_H_
#define STATESIDE_APP_ROUTES_H_

#include <optional>
#include <string>
#include <variant>

#include "app/config.h"
#include "app/drain.h"
#include "absl/functional/any_invocable.h"
#include "app/http_util.h"
#include "app/websocket_session.h"
#include "stateside/client.h"

namespace radar {

// A valid user name: 1..128 bytes of printable ASCII without space. Why
// narrower than "any string": the user id also names the user's realtime
// connections, which the sidecar requires to be printable ASCII.
bool IsValidUser(std::string_view user);

// The session attribute that holds cart item `item`: "cart:<item>" when
// that is a valid attribute name (printable ASCII, at most 128 bytes),
// else "cart:#<hash>" (the value always holds the item itself).
std::string CartAttribute(std::string_view item);

class WebSocketHub;

class Routes {
 public:
  // `client`, `drain` and `hub` (whose sockets a logout closes) must outlive
  // the Routes.
  Routes(stateside::Client* client, const Config& config, std::string instance,
         const DrainState* drain, WebSocketHub* hub);

  // A response for requests that need no sidecar call, else nullopt.
  std::optional<Response> HandleInline(const Request& request) const;
  // GET /me: starts the session read and returns true; `done` gets the
  // response once, on a client-library thread (or on this one, e.g. without
  // a cookie). Any other request: false, `done` untouched.
  bool StartAsync(const Request& request, absl::AnyInvocable<void(Response)>& done) const;
  // Every other request (not GET /me: StartAsync serves it). Blocks on the
  // sidecar: call on a worker thread.
  Response Handle(const Request& request) const;
  // GET /ws before the upgrade: the session and its user, or the error
  // response (401 without a valid session). Blocks: call on a worker thread.
  std::variant<SocketOwner, Response> AuthenticateWebSocket(const Request& request) const;

  const std::string& instance() const { return instance_; }

 private:
  Response Login(const Request& request) const;
  Response Guest() const;
  Response Me(absl::StatusOr<stateside::Session> session) const;
  Response AddToCart(const Request& request) const;
  Response Logout(const Request& request) const;
  Response GetOptOut(const Request& request) const;
  Response SetOptOut(const Request& request) const;
  Response Broadcast(const Request& request) const;
  // Whether `user` has a connection in `room` on any instance of the
  // cluster (the sidecar's presence): an error status when the sidecar
  // fails or the room name is refused.
  absl::StatusOr<bool> InRoom(const std::string& user, const std::string& room) const;

  // The session named by the request's cookie (NOT_FOUND without one).
  absl::StatusOr<stateside::Session> LookupSession(const Request& request,
                                                   bool touch = true) const;
  std::optional<stateside::SessionRef> CookieRef(const Request& request) const;
  // A cookie the client library or the sidecar cannot even parse (bad
  // UTF-8, too long) is as invalid as a forged one: no session.
  static absl::StatusOr<stateside::Session> Usable(absl::StatusOr<stateside::Session> session);

  // Constant after construction.
  stateside::Client* const client_;
  const Config config_;
  const std::string instance_;
  const DrainState* const drain_;
  WebSocketHub* const hub_;
};

}  // namespace radar

#endif  // STATESIDE_APP_ROUTES_H_

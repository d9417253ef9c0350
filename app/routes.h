// Routes: radar-app's HTTP endpoints. HandleInline() answers what needs no
// sidecar call (the page, /healthz, 404/405) at once; Serve() answers the
// rest with the client's Async forms, chained from their callbacks, so no
// thread waits for the sidecar (the WebSocket's calls too: see
// websocket_session.h).
// Thread-safe: state is constant after construction (the Client and
// DrainState are themselves thread-safe).
//
// Sessions live in the sidecar only; the browser holds the signed cookie
// the sidecar made. Nothing about users is kept here.
#ifndef STATESIDE_APP_ROUTES_H_
#define STATESIDE_APP_ROUTES_H_

#include <boost/asio/any_io_executor.hpp>

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

  using Reply = absl::AnyInvocable<void(Response)>;
  using Authenticated = std::variant<SocketOwner, Response>;

  // A response for requests that need no sidecar call, else nullopt.
  std::optional<Response> HandleInline(const Request& request) const;
  // Every other request (HandleInline returned nullopt): starts its sidecar
  // calls and returns; `done` gets the response exactly once, on a
  // client-library thread, on `executor` (after the X-Radar-Delay-Ms test
  // hook's wait), or on this thread before Serve returns (a bad request, no
  // cookie, an argument the client refuses). Nothing refers to `request`
  // once Serve has returned.
  void Serve(const Request& request, const boost::asio::any_io_executor& executor,
             Reply done) const;
  // GET /ws before the upgrade: `done` gets the session and its user, or
  // the error response (401 without a valid session), as Serve's does.
  void AuthenticateWebSocket(const Request& request,
                             absl::AnyInvocable<void(Authenticated)> done) const;

  const std::string& instance() const { return instance_; }

 private:
  void Login(const Request& request, Reply done) const;
  // Login's last step: a fresh session for `user`.
  void CreateForLogin(std::string user, Reply done) const;
  Response LoggedIn(const std::string& user, const stateside::Session& session) const;
  void Guest(Reply done) const;
  Response Me(absl::StatusOr<stateside::Session> session) const;
  void AddToCart(const Request& request, const boost::asio::any_io_executor& executor,
                 Reply done) const;
  void AddItem(stateside::SessionRef ref, std::string item, Reply done) const;
  void Logout(const Request& request, Reply done) const;
  void GetOptOut(const Request& request, Reply done) const;
  void SetOptOut(const Request& request, Reply done) const;
  void Broadcast(const Request& request, Reply done) const;
  // Whether `user` has a connection in `room` on any instance of the
  // cluster (the sidecar's presence): an error status when the sidecar
  // fails or the room name is refused.
  void InRoom(const std::string& user, const std::string& room,
              stateside::Callback<bool> done) const;

  // The session named by the request's cookie (NOT_FOUND without one),
  // read with touch.
  void LookupSession(const Request& request, stateside::Callback<stateside::Session> done) const;
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

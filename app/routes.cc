// radar-app's HTTP endpoints (the contract is in docs): login,
// me, cart, logout, analytics opt-out, broadcast, the page and /healthz.
#include "app/routes.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "app/browser_guard.h"
#include "app/page.h"
#include "app/websocket_hub.h"
#include "spdlog/spdlog.h"

namespace radar {
namespace {

constexpr size_t kMaxUserBytes = 128;
constexpr size_t kMaxItemBytes = 128;
constexpr size_t kMaxAttributeNameBytes = 128;  // the sidecar's limit
constexpr std::string_view kCartPrefix = "cart:";
constexpr int kMaxTestDelayMs = 10000;

// The request body as a JSON object, or nullopt (not JSON, not an object,
// invalid UTF-8: nlohmann's parser rejects all three).
std::optional<nlohmann::json> ParseObject(const std::string& body) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

// The string field `name`, if present and a string.
std::optional<std::string> StringField(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

Response BadBody(std::string_view what) {
  return ErrorResponse(http::status::bad_request, what);
}

Response NoSession() {
  return ErrorResponse(http::status::unauthorized, "no valid session");
}

// 64-bit FNV-1a from `basis`; two of them make a 128-bit name that is
// stable across processes (std::hash and absl::Hash are not).
uint64_t Fnv1a(std::string_view data, uint64_t basis) {
  uint64_t h = basis;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

bool IsValidUser(std::string_view user) {
  if (user.empty() || user.size() > kMaxUserBytes) return false;
  return std::all_of(user.begin(), user.end(),
                     [](char c) { return c >= 0x21 && c <= 0x7e; });
}

std::string CartAttribute(std::string_view item) {
  const bool printable = std::all_of(item.begin(), item.end(),
                                     [](char c) { return c >= 0x20 && c <= 0x7e; });
  if (printable && kCartPrefix.size() + item.size() <= kMaxAttributeNameBytes) {
    return std::string(kCartPrefix) + std::string(item);
  }
  return absl::StrFormat("%s#%016x%016x", kCartPrefix, Fnv1a(item, 0xcbf29ce484222325ULL),
                         Fnv1a(item, 0x84222325cbf29ce4ULL));
}

Routes::Routes(stateside::Client* client, const Config& config, std::string instance,
               const DrainState* drain, WebSocketHub* hub)
    : client_(client),
      config_(config),
      instance_(std::move(instance)),
      drain_(drain),
      hub_(hub) {}

std::optional<Response> Routes::HandleInline(const Request& request) const {
  const std::string_view path = TargetPath(Sv(request.target()));
  const http::verb method = request.method();
  struct Allowed {
    std::string_view path;
    std::string_view methods;  // for the Allow header
  };
  static constexpr Allowed kPaths[] = {
      {"/", "GET"},           {"/app.js", "GET"},         {"/app.css", "GET"},
      {"/healthz", "GET"},    {"/login", "POST"},         {"/guest", "POST"},
      {"/me", "GET"},         {"/cart", "POST"},          {"/logout", "POST"},
      {"/broadcast", "POST"}, {"/analytics/opt-out", "GET, POST"}, {"/ws", "GET"},
  };
  const Allowed* found = nullptr;
  for (const Allowed& allowed : kPaths) {
    if (allowed.path == path) found = &allowed;
  }
  if (found == nullptr) return ErrorResponse(http::status::not_found, "not found");
  // Known verbs only (an extension method is never allowed), compared by name.
  const std::string_view name = Sv(request.method_string());
  const bool method_ok = method != http::verb::unknown &&
                         (found->methods == name || found->methods == "GET, POST") &&
                         (name == "GET" || name == "POST");
  if (!method_ok) {
    Response response = ErrorResponse(http::status::method_not_allowed, "method not allowed");
    response.set(http::field::allow, std::string(found->methods));
    return response;
  }
  if (path == "/" || path == "/app.js" || path == "/app.css") {
    Response response{http::status::ok, 11};
    response.set(http::field::cache_control, "no-store");
    if (path == "/") {
      response.set(http::field::content_type, "text/html; charset=utf-8");
      response.set("Content-Security-Policy", kPageContentSecurityPolicy);
      response.body() = std::string(kPageHtml);
    } else if (path == "/app.js") {
      response.set(http::field::content_type, "text/javascript; charset=utf-8");
      response.body() = std::string(kPageScript);
    } else {
      response.set(http::field::content_type, "text/css; charset=utf-8");
      response.body() = std::string(kPageStyle);
    }
    return response;
  }
  if (path == "/healthz") {
    const bool draining = drain_->draining();
    return JsonResponse(draining ? http::status::service_unavailable : http::status::ok,
                        Json{{"status", draining ? "draining" : "ok"}, {"instance", instance_}});
  }
  if (path == "/ws") {
    // A WebSocket upgrade never gets here (the server takes it first).
    Response response =
        ErrorResponse(http::status::upgrade_required, "websocket upgrade required");
    response.set(http::field::upgrade, "websocket");
    return response;
  }
  return std::nullopt;
}

Response Routes::Handle(const Request& request) const {
  const std::string_view path = TargetPath(Sv(request.target()));
  const bool post = request.method() == http::verb::post;
  if (path == "/login") return Login(request);
  if (path == "/guest") return Guest();
  if (path == "/cart") return AddToCart(request);
  if (path == "/logout") return Logout(request);
  if (path == "/broadcast") return Broadcast(request);
  if (path == "/analytics/opt-out") return post ? SetOptOut(request) : GetOptOut(request);
  // HandleInline() and StartAsync() answer everything else; reaching here is
  // a bug.
  return ErrorResponse(http::status::internal_server_error, "no handler");
}

std::optional<stateside::SessionRef> Routes::CookieRef(const Request& request) const {
  std::optional<std::string> cookie = FindCookie(request, config_.cookie_name);
  if (!cookie.has_value() || cookie->empty()) return std::nullopt;
  return stateside::SessionRef::Cookie(*std::move(cookie));
}

absl::StatusOr<stateside::Session> Routes::LookupSession(const Request& request,
                                                         bool touch) const {
  std::optional<stateside::SessionRef> ref = CookieRef(request);
  if (!ref.has_value()) return absl::NotFoundError("no session cookie");
  return Usable(client_->GetSession(*ref, touch));
}

absl::StatusOr<stateside::Session> Routes::Usable(
    absl::StatusOr<stateside::Session> session) {
  if (session.status().code() == absl::StatusCode::kInvalidArgument) {
    return absl::NotFoundError("unusable session cookie");
  }
  return session;
}

bool Routes::StartAsync(const Request& request,
                        absl::AnyInvocable<void(Response)>& done) const {
  if (request.method() != http::verb::get || TargetPath(Sv(request.target())) != "/me") {
    return false;
  }
  std::optional<stateside::SessionRef> ref = CookieRef(request);
  if (!ref.has_value()) {
    done(Me(absl::NotFoundError("no session cookie")));
    return true;
  }
  client_->GetSessionAsync(*ref, /*touch=*/true,
                           [this, done = std::move(done)](
                               absl::StatusOr<stateside::Session> session) mutable {
                             done(Me(Usable(std::move(session))));
                           });
  return true;
}

Response Routes::Login(const Request& request) const {
  std::optional<nlohmann::json> body = ParseObject(request.body());
  if (!body.has_value()) return BadBody("body must be a JSON object");
  std::optional<std::string> user = StringField(*body, "user");
  if (!user.has_value()) return BadBody("user: a string is required");
  if (!IsValidUser(*user)) {
    return BadBody("user: 1..128 bytes of printable ASCII without spaces");
  }
  // An existing valid session is replaced in one step of the sidecar: a
  // guest's (anonymous) session becomes the user's and the same user's gets
  // a new id, the cart kept either way (session fixation defence: the old id
  // ends); another user's session is destroyed and a fresh one made.
  std::optional<stateside::Session> session;
  if (std::optional<stateside::SessionRef> ref = CookieRef(request); ref.has_value()) {
    absl::StatusOr<stateside::Session> old = client_->GetSession(*ref, /*touch=*/false);
    const absl::StatusCode code = old.status().code();
    if (old.ok() && (old->info.user_id == *user || old->info.user_id.empty())) {
      stateside::RegenerateOptions login;
      login.user_id = *user;
      absl::StatusOr<stateside::Session> regenerated = client_->RegenerateSession(*ref, login);
      if (regenerated.ok()) {
        session = *std::move(regenerated);
      } else if (regenerated.status().code() != absl::StatusCode::kNotFound) {
        // NOT_FOUND: logged out meanwhile; a fresh session follows.
        return SidecarError(regenerated.status(), "login: regenerate", false);
      }
    } else if (old.ok()) {
      absl::StatusOr<bool> destroyed = client_->DestroySession(*ref);
      if (!destroyed.ok()) return SidecarError(destroyed.status(), "login: destroy old", false);
    } else if (code != absl::StatusCode::kNotFound &&
               code != absl::StatusCode::kInvalidArgument) {
      return SidecarError(old.status(), "login: read old session", false);
    }
  }
  if (!session.has_value()) {
    absl::StatusOr<stateside::Session> created = client_->CreateSession(*user);
    if (!created.ok()) return SidecarError(created.status(), "login: create", false);
    session = *std::move(created);
  }
  Response response = JsonResponse(http::status::ok, Json{{"user", *user}, {"instance", instance_}});
  response.set(http::field::set_cookie,
               SetCookie(config_.cookie_name, session->cookie, config_.cookie_secure));
  return response;
}

Response Routes::Guest() const {
  // Shopping before logging in: an anonymous session, which a later login
  // gives its owner with the cart in it.
  absl::StatusOr<stateside::Session> created = client_->CreateSession("");
  if (!created.ok()) return SidecarError(created.status(), "guest: create", false);
  Response response = JsonResponse(http::status::ok, Json{{"user", ""}, {"instance", instance_}});
  response.set(http::field::set_cookie,
               SetCookie(config_.cookie_name, created->cookie, config_.cookie_secure));
  return response;
}

Response Routes::Me(absl::StatusOr<stateside::Session> session) const {
  if (!session.ok()) return SidecarError(session.status(), "me: session", true);
  std::vector<std::string> cart;
  for (const auto& [name, value] : session->attributes) {
    if (name.starts_with(kCartPrefix)) cart.push_back(value);
  }
  std::sort(cart.begin(), cart.end());
  return JsonResponse(http::status::ok, Json{{"user", session->info.user_id},
                                             {"cart", cart},
                                             {"instance", instance_}});
}

Response Routes::AddToCart(const Request& request) const {
  std::optional<stateside::SessionRef> ref = CookieRef(request);
  if (!ref.has_value()) return NoSession();
  std::optional<nlohmann::json> body = ParseObject(request.body());
  if (!body.has_value()) return BadBody("body must be a JSON object");
  std::optional<std::string> item = StringField(*body, "item");
  if (!item.has_value() || item->empty() || item->size() > kMaxItemBytes) {
    return BadBody("item: a string of 1..128 bytes is required");
  }
  int delay_ms = 0;
  if (config_.test_hooks) {
    if (auto it = request.find("X-Radar-Delay-Ms"); it != request.end()) {
      const std::string text(it->value().data(), it->value().size());
      if (!absl::SimpleAtoi(text, &delay_ms) || delay_ms < 0 || delay_ms > kMaxTestDelayMs) {
        return BadBody("X-Radar-Delay-Ms: 0..10000");
      }
    }
  }
  // Read the session (and roll its idle timeout) before writing: a dead
  // session is a 401 without a write.
  absl::StatusOr<stateside::SessionInfo> touched = client_->TouchSession(*ref);
  if (touched.status().code() == absl::StatusCode::kInvalidArgument) return NoSession();
  if (!touched.ok()) return SidecarError(touched.status(), "cart: session", true);
  if (delay_ms > 0) {
    // Test hook: lets a test race a logout against this request. Blocks
    // this worker only; never enabled in production (logged at startup).
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  }
  // One attribute per item, written alone: the sidecar merges updates of
  // different attributes, so concurrent adds (other tabs, other pods) all
  // survive without a retry loop. A single "cart" attribute would need
  // read-modify-write with expected_version and retries on ABORTED, which
  // degrade under exactly that contention. And an update of a destroyed
  // session is NOT_FOUND: a slow add cannot bring a logged-out session back.
  const stateside::Attributes set = {{CartAttribute(*item), *item}};
  absl::StatusOr<stateside::SessionInfo> updated = client_->UpdateSession(*ref, set);
  if (!updated.ok()) {
    // The session was alive a moment ago. NOT_FOUND: it ended meanwhile
    // (logout) → 401. INVALID_ARGUMENT is now about the write, not the
    // cookie (e.g. the sidecar's attribute limit: the cart is full) → 400
    // with the sidecar's message naming the limit.
    const bool ended = updated.status().code() == absl::StatusCode::kNotFound;
    return SidecarError(updated.status(), "cart: add", /*session_lookup=*/ended);
  }
  return JsonResponse(http::status::ok, Json{{"item", *item}, {"instance", instance_}});
}

Response Routes::Logout(const Request& request) const {
  // Optional body {"everywhere": true}: end every session of the user.
  bool everywhere = false;
  if (!request.body().empty()) {
    std::optional<nlohmann::json> body = ParseObject(request.body());
    if (!body.has_value()) return BadBody("body must be a JSON object");
    auto it = body->find("everywhere");
    if (it != body->end() && !it->is_boolean()) return BadBody("everywhere: true or false");
    everywhere = it != body->end() && it->get<bool>();
  }
  if (std::optional<stateside::SessionRef> ref = CookieRef(request); ref.has_value()) {
    // Whose session it is: its sockets close with it.
    absl::StatusOr<stateside::Session> session = client_->GetSession(*ref, /*touch=*/false);
    const absl::StatusCode code = session.status().code();
    if (!session.ok() && code != absl::StatusCode::kNotFound &&
        code != absl::StatusCode::kInvalidArgument) {
      return SidecarError(session.status(), "logout: read session", false);
    }
    if (session.ok() && everywhere && !session->info.user_id.empty()) {
      // The sidecar has the other instances close the user's sockets.
      absl::StatusOr<uint32_t> destroyed = client_->DestroyUserSessions(
          session->info.user_id, stateside::LogoutOptions{.close_connections = true});
      if (!destroyed.ok()) return SidecarError(destroyed.status(), "logout: destroy all", false);
      hub_->CloseUser(session->info.user_id);
    } else {
      absl::StatusOr<bool> destroyed = client_->DestroySession(*ref);
      // INVALID_ARGUMENT: a cookie nobody could parse names no session.
      if (!destroyed.ok() && destroyed.status().code() != absl::StatusCode::kInvalidArgument) {
        return SidecarError(destroyed.status(), "logout: destroy", false);
      }
      if (session.ok()) hub_->CloseSession(session->info.id);
    }
    if (session.ok() && !session->info.user_id.empty() && !everywhere) {
      // The user's sockets on the other instances: those instances check
      // their sessions now. If this is lost, their periodic check still
      // closes them.
      absl::StatusOr<stateside::PublishResult> published = client_->Publish(
          stateside::PublishTarget::User(session->info.user_id), kSessionEndedEvent,
          Json{{"everywhere", everywhere}}.dump());
      if (!published.ok()) {
        spdlog::warn("logout: telling the other instances: {}", published.status().ToString());
      }
    }
  }
  Response response = JsonResponse(http::status::ok, Json{{"logged_out", true}});
  response.set(http::field::set_cookie, ClearCookie(config_.cookie_name, config_.cookie_secure));
  return response;
}

Response Routes::GetOptOut(const Request& request) const {
  absl::StatusOr<stateside::Session> session = LookupSession(request);
  if (!session.ok()) return SidecarError(session.status(), "opt-out: session", true);
  if (session->info.user_id.empty()) return NoSession();
  absl::StatusOr<bool> opted_out = client_->GetOptOut(session->info.user_id);
  if (!opted_out.ok()) return SidecarError(opted_out.status(), "opt-out: get", false);
  return JsonResponse(http::status::ok,
                      Json{{"subject", session->info.user_id}, {"opted_out", *opted_out}});
}

Response Routes::SetOptOut(const Request& request) const {
  if (!CookieRef(request).has_value()) return NoSession();
  std::optional<nlohmann::json> body = ParseObject(request.body());
  if (!body.has_value()) return BadBody("body must be a JSON object");
  auto it = body->find("opted_out");
  if (it == body->end() || !it->is_boolean()) return BadBody("opted_out: true or false");
  const bool opted_out = it->get<bool>();
  absl::StatusOr<stateside::Session> session = LookupSession(request);
  if (!session.ok()) return SidecarError(session.status(), "opt-out: session", true);
  if (session->info.user_id.empty()) return NoSession();
  if (absl::Status s = client_->SetOptOut(session->info.user_id, opted_out); !s.ok()) {
    return SidecarError(s, "opt-out: set", false);
  }
  return JsonResponse(http::status::ok,
                      Json{{"subject", session->info.user_id}, {"opted_out", opted_out}});
}

Response Routes::Broadcast(const Request& request) const {
  if (!CookieRef(request).has_value()) return NoSession();
  std::optional<nlohmann::json> body = ParseObject(request.body());
  if (!body.has_value()) return BadBody("body must be a JSON object");
  std::optional<std::string> msg = StringField(*body, "msg");
  std::optional<std::string> room = StringField(*body, "room");
  std::optional<std::string> user = StringField(*body, "user");
  if (!msg.has_value()) return BadBody("msg: a string is required");
  if (room.has_value() == user.has_value() || (room.has_value() && room->empty()) ||
      (user.has_value() && user->empty())) {
    return BadBody("exactly one of room or user (a non-empty string) is required");
  }
  absl::StatusOr<stateside::Session> session = LookupSession(request);
  if (!session.ok()) return SidecarError(session.status(), "broadcast: session", true);
  if (room.has_value()) {
    // Only into a room the caller is in: a browser cannot fill the log of
    // a room it never joined (nor speak there).
    absl::StatusOr<bool> member = InRoom(session->info.user_id, *room);
    if (!member.ok()) return SidecarError(member.status(), "broadcast: presence", false);
    if (!*member) {
      return ErrorResponse(http::status::forbidden,
                           "join the room over the WebSocket before broadcasting to it");
    }
  }
  Json payload = room.has_value() ? Json{{"room", *room}} : Json{{"user", *user}};
  payload["msg"] = *msg;
  payload["from"] = session->info.user_id;
  payload["instance"] = instance_;
  const stateside::PublishTarget target = room.has_value()
                                              ? stateside::PublishTarget::Room(*room)
                                              : stateside::PublishTarget::User(*user);
  absl::StatusOr<stateside::PublishResult> published =
      client_->Publish(target, "message", payload.dump(), {}, session->info.user_id);
  if (!published.ok()) return SidecarError(published.status(), "broadcast: publish", false);
  return JsonResponse(http::status::ok, Json{{"instances", published->instances},
                                             {"sequence", published->sequence}});
}

absl::StatusOr<bool> Routes::InRoom(const std::string& user, const std::string& room) const {
  // The room's members first: that call also checks the room's name (400).
  // A user has few connections, a room may have many members: the pages are
  // walked until one of the user's connections shows, within a bound.
  constexpr int kPageSize = 1000;
  constexpr int kMaxPages = 100;
  absl::StatusOr<stateside::RoomMembersPage> page = client_->RoomMembers(room, kPageSize);
  if (!page.ok()) return page.status();
  if (user.empty() || page->count == 0) return false;
  absl::StatusOr<std::vector<stateside::ConnectionRef>> mine = client_->UserConnections(user);
  if (!mine.ok()) return mine.status();
  if (mine->empty()) return false;
  for (int pages = 1;; ++pages) {
    for (const stateside::ConnectionRef& member : page->members) {
      if (std::find(mine->begin(), mine->end(), member) != mine->end()) return true;
    }
    if (page->next_page_token.empty() || pages == kMaxPages) return false;
    page = client_->RoomMembers(room, kPageSize, page->next_page_token);
    if (!page.ok()) return page.status();
  }
}

std::variant<SocketOwner, Response> Routes::AuthenticateWebSocket(
    const Request& request) const {
  absl::StatusOr<stateside::Session> session = LookupSession(request);
  if (!session.ok()) return SidecarError(session.status(), "ws: session", true);
  return SocketOwner{session->info.user_id, session->info.id};
}

}  // namespace radar

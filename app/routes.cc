// radar-app's HTTP endpoints (the contract is in docs): login,
// me, cart, logout, analytics opt-out, broadcast, the page and /healthz.
#include "app/routes.h"

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
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

// Whether the sidecar refused a call's session key (INVALID_ARGUMENT with
// metadata field "key": an empty or oversized cookie).
bool NamesTheKey(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return false;
  std::optional<stateside::ErrorReason> reason = stateside::ErrorReasonOf(status);
  if (!reason.has_value()) return false;
  auto it = reason->metadata.find("field");
  return it != reason->metadata.end() && it->second == "key";
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

void Routes::Serve(const Request& request, const boost::asio::any_io_executor& executor,
                   Reply done) const {
  const std::string_view path = TargetPath(Sv(request.target()));
  const bool post = request.method() == http::verb::post;
  if (path == "/me") {
    std::optional<stateside::SessionRef> ref = CookieRef(request);
    if (!ref.has_value()) return done(Me(absl::NotFoundError("no session cookie")));
    return client_->GetSessionAsync(
        *ref, /*touch=*/true,
        [this, done = std::move(done)](absl::StatusOr<stateside::Session> session) mutable {
          done(Me(Usable(std::move(session))));
        });
  }
  if (path == "/login") return Login(request, std::move(done));
  if (path == "/guest") return Guest(std::move(done));
  if (path == "/cart") return AddToCart(request, executor, std::move(done));
  if (path == "/logout") return Logout(request, std::move(done));
  if (path == "/broadcast") return Broadcast(request, std::move(done));
  if (path == "/analytics/opt-out") {
    return post ? SetOptOut(request, std::move(done)) : GetOptOut(request, std::move(done));
  }
  // HandleInline() answers everything else; reaching here is a bug.
  done(ErrorResponse(http::status::internal_server_error, "no handler"));
}

std::optional<stateside::SessionRef> Routes::CookieRef(const Request& request) const {
  std::optional<std::string> cookie = FindCookie(request, config_.cookie_name);
  if (!cookie.has_value() || cookie->empty()) return std::nullopt;
  return stateside::SessionRef::Cookie(*std::move(cookie));
}

void Routes::LookupSession(const Request& request,
                           stateside::Callback<stateside::Session> done) const {
  std::optional<stateside::SessionRef> ref = CookieRef(request);
  if (!ref.has_value()) return done(absl::NotFoundError("no session cookie"));
  client_->GetSessionAsync(*ref, /*touch=*/true,
                           [done = std::move(done)](
                               absl::StatusOr<stateside::Session> session) mutable {
                             done(Usable(std::move(session)));
                           });
}

absl::StatusOr<stateside::Session> Routes::Usable(
    absl::StatusOr<stateside::Session> session) {
  if (session.status().code() == absl::StatusCode::kInvalidArgument) {
    return absl::NotFoundError("unusable session cookie");
  }
  return session;
}

void Routes::Login(const Request& request, Reply done) const {
  std::optional<nlohmann::json> body = ParseObject(request.body());
  if (!body.has_value()) return done(BadBody("body must be a JSON object"));
  std::optional<std::string> user = StringField(*body, "user");
  if (!user.has_value()) return done(BadBody("user: a string is required"));
  if (!IsValidUser(*user)) {
    return done(BadBody("user: 1..128 bytes of printable ASCII without spaces"));
  }
  // An existing valid session is replaced in one step of the sidecar: a
  // guest's (anonymous) session becomes the user's and the same user's gets
  // a new id, the cart kept either way (session fixation defence: the old id
  // ends); another user's session is destroyed and a fresh one made.
  std::optional<stateside::SessionRef> ref = CookieRef(request);
  if (!ref.has_value()) return CreateForLogin(*std::move(user), std::move(done));
  client_->GetSessionAsync(*ref, /*touch=*/false, [this, ref = *ref, user = *std::move(user),
                                                   done = std::move(done)](
                                                      absl::StatusOr<stateside::Session>
                                                          old) mutable {
    const absl::StatusCode code = old.status().code();
    if (old.ok() && (old->info.user_id == user || old->info.user_id.empty())) {
      stateside::RegenerateOptions login;
      login.user_id = user;
      client_->RegenerateSessionAsync(
          ref, login,
          [this, user = std::move(user), done = std::move(done)](
              absl::StatusOr<stateside::Session> regenerated) mutable {
            if (regenerated.ok()) return done(LoggedIn(user, *regenerated));
            // NOT_FOUND: logged out meanwhile; a fresh session follows.
            if (regenerated.status().code() != absl::StatusCode::kNotFound) {
              return done(SidecarError(regenerated.status(), "login: regenerate", false));
            }
            CreateForLogin(std::move(user), std::move(done));
          });
    } else if (old.ok()) {
      client_->DestroySessionAsync(
          ref, [this, user = std::move(user),
                done = std::move(done)](absl::StatusOr<bool> destroyed) mutable {
            if (!destroyed.ok()) {
              return done(SidecarError(destroyed.status(), "login: destroy old", false));
            }
            CreateForLogin(std::move(user), std::move(done));
          });
    } else if (code != absl::StatusCode::kNotFound &&
               code != absl::StatusCode::kInvalidArgument) {
      done(SidecarError(old.status(), "login: read old session", false));
    } else {
      CreateForLogin(std::move(user), std::move(done));
    }
  });
}

void Routes::CreateForLogin(std::string user, Reply done) const {
  client_->CreateSessionAsync(
      user, {}, {},
      [this, user, done = std::move(done)](absl::StatusOr<stateside::Session> created) mutable {
        if (!created.ok()) return done(SidecarError(created.status(), "login: create", false));
        done(LoggedIn(user, *created));
      });
}

Response Routes::LoggedIn(const std::string& user, const stateside::Session& session) const {
  Response response = JsonResponse(http::status::ok, Json{{"user", user}, {"instance", instance_}});
  response.set(http::field::set_cookie,
               SetCookie(config_.cookie_name, session.cookie, config_.cookie_secure));
  return response;
}

void Routes::Guest(Reply done) const {
  // Shopping before logging in: an anonymous session, which a later login
  // gives its owner with the cart in it.
  client_->CreateSessionAsync(
      "", {}, {},
      [this, done = std::move(done)](absl::StatusOr<stateside::Session> created) mutable {
        if (!created.ok()) return done(SidecarError(created.status(), "guest: create", false));
        Response response =
            JsonResponse(http::status::ok, Json{{"user", ""}, {"instance", instance_}});
        response.set(http::field::set_cookie,
                     SetCookie(config_.cookie_name, created->cookie, config_.cookie_secure));
        done(std::move(response));
      });
}

Response Routes::Me(absl::StatusOr<stateside::Session> session) const {
  if (!session.ok()) return SidecarError(session.status(), "me: session", true);
  // The items sorted by value, moved (not copied) from the session into the
  // JSON array.
  std::vector<std::string*> items;
  items.reserve(session->attributes.size());
  for (auto& [name, value] : session->attributes) {
    if (name.starts_with(kCartPrefix)) items.push_back(&value);
  }
  std::sort(items.begin(), items.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  Json cart = Json::array();
  cart.get_ref<Json::array_t&>().reserve(items.size());
  for (std::string* item : items) cart.push_back(std::move(*item));
  return JsonResponse(http::status::ok, Json{{"user", std::move(session->info.user_id)},
                                             {"cart", std::move(cart)},
                                             {"instance", instance_}});
}

void Routes::AddToCart(const Request& request, const boost::asio::any_io_executor& executor,
                       Reply done) const {
  std::optional<stateside::SessionRef> ref = CookieRef(request);
  if (!ref.has_value()) return done(NoSession());
  std::optional<nlohmann::json> body = ParseObject(request.body());
  if (!body.has_value()) return done(BadBody("body must be a JSON object"));
  std::optional<std::string> item = StringField(*body, "item");
  if (!item.has_value() || item->empty() || item->size() > kMaxItemBytes) {
    return done(BadBody("item: a string of 1..128 bytes is required"));
  }
  int delay_ms = 0;
  if (config_.test_hooks) {
    if (auto it = request.find("X-Radar-Delay-Ms"); it != request.end()) {
      const std::string text(it->value().data(), it->value().size());
      if (!absl::SimpleAtoi(text, &delay_ms) || delay_ms < 0 || delay_ms > kMaxTestDelayMs) {
        return done(BadBody("X-Radar-Delay-Ms: 0..10000"));
      }
    }
  }
  // The update is the only sidecar call: it rolls the idle timeout as a
  // read does, and a dead session is NOT_FOUND without a write (AddItem).
  if (delay_ms == 0) return AddItem(*std::move(ref), *std::move(item), std::move(done));
  // Test hook: lets a test race a logout against this request. The add
  // touches the session first (what such a test waits for), then waits on a
  // timer of the connection's executor (no thread waits), then writes.
  // Never enabled in production (logged at startup).
  client_->TouchSessionAsync(*ref, [this, ref = *ref, item = *std::move(item), delay_ms,
                                    executor, done = std::move(done)](
                                       absl::StatusOr<stateside::SessionInfo> touched) mutable {
    if (!touched.ok()) return done(SidecarError(touched.status(), "cart: session", true));
    auto timer = std::make_shared<boost::asio::steady_timer>(executor);
    timer->expires_after(std::chrono::milliseconds(delay_ms));
    timer->async_wait([this, timer, ref = std::move(ref), item = std::move(item),
                       done = std::move(done)](boost::system::error_code) mutable {
      AddItem(std::move(ref), std::move(item), std::move(done));
    });
  });
}

void Routes::AddItem(stateside::SessionRef ref, std::string item, Reply done) const {
  // One attribute per item, written alone: the sidecar merges updates of
  // different attributes, so concurrent adds (other tabs, other pods) all
  // survive without a retry loop. A single "cart" attribute would need
  // read-modify-write with expected_version and retries on ABORTED, which
  // degrade under exactly that contention. And an update of a destroyed
  // session is NOT_FOUND: a slow add cannot bring a logged-out session back.
  const stateside::Attributes set = {{CartAttribute(item), item}};
  client_->UpdateSessionAsync(
      ref, set, {}, std::nullopt,
      [this, item = std::move(item),
       done = std::move(done)](absl::StatusOr<stateside::SessionInfo> updated) mutable {
        if (!updated.ok()) {
          // NOT_FOUND: no such session (expired, logged out, a forged
          // cookie) → 401, nothing written. INVALID_ARGUMENT is a 401 too
          // when it names the key (the cookie is unusable), else it is about
          // the write (e.g. the sidecar's attribute limit: the cart is full)
          // → 400 with the sidecar's message naming the limit.
          const absl::Status& status = updated.status();
          const bool no_session = status.code() == absl::StatusCode::kNotFound ||
                                  NamesTheKey(status);
          return done(SidecarError(status, "cart: add", /*session_lookup=*/no_session));
        }
        done(JsonResponse(http::status::ok, Json{{"item", item}, {"instance", instance_}}));
      });
}

void Routes::Logout(const Request& request, Reply done) const {
  // Optional body {"everywhere": true}: end every session of the user.
  bool everywhere = false;
  if (!request.body().empty()) {
    std::optional<nlohmann::json> body = ParseObject(request.body());
    if (!body.has_value()) return done(BadBody("body must be a JSON object"));
    auto it = body->find("everywhere");
    if (it != body->end() && !it->is_boolean()) return done(BadBody("everywhere: true or false"));
    everywhere = it != body->end() && it->get<bool>();
  }
  auto logged_out = [this] {
    Response response = JsonResponse(http::status::ok, Json{{"logged_out", true}});
    response.set(http::field::set_cookie,
                 ClearCookie(config_.cookie_name, config_.cookie_secure));
    return response;
  };
  std::optional<stateside::SessionRef> ref = CookieRef(request);
  if (!ref.has_value()) return done(logged_out());
  // Whose session it is: its sockets close with it.
  client_->GetSessionAsync(*ref, /*touch=*/false, [this, ref = *ref, everywhere, logged_out,
                                                   done = std::move(done)](
                                                      absl::StatusOr<stateside::Session>
                                                          session) mutable {
    const absl::StatusCode code = session.status().code();
    if (!session.ok() && code != absl::StatusCode::kNotFound &&
        code != absl::StatusCode::kInvalidArgument) {
      return done(SidecarError(session.status(), "logout: read session", false));
    }
    if (session.ok() && everywhere && !session->info.user_id.empty()) {
      // The sidecar has the other instances close the user's sockets.
      const std::string user = session->info.user_id;
      stateside::LogoutOptions logout;
      logout.close_connections = true;
      client_->DestroyUserSessionsAsync(
          user, logout,
          [this, user, logged_out, done = std::move(done)](
              absl::StatusOr<uint32_t> destroyed) mutable {
            if (!destroyed.ok()) {
              return done(SidecarError(destroyed.status(), "logout: destroy all", false));
            }
            hub_->CloseUser(user);
            done(logged_out());
          });
      return;
    }
    client_->DestroySessionAsync(ref, [this, session = std::move(session), everywhere,
                                       logged_out, done = std::move(done)](
                                          absl::StatusOr<bool> destroyed) mutable {
      // INVALID_ARGUMENT: a cookie nobody could parse names no session.
      if (!destroyed.ok() && destroyed.status().code() != absl::StatusCode::kInvalidArgument) {
        return done(SidecarError(destroyed.status(), "logout: destroy", false));
      }
      if (session.ok()) hub_->CloseSession(session->info.id);
      if (!session.ok() || session->info.user_id.empty() || everywhere) return done(logged_out());
      // The user's sockets on the other instances: those instances check
      // their sessions now. If this is lost, their periodic check still
      // closes them.
      client_->PublishAsync(
          stateside::PublishTarget::User(session->info.user_id), kSessionEndedEvent,
          Json{{"everywhere", everywhere}}.dump(), {}, "",
          [logged_out, done = std::move(done)](
              absl::StatusOr<stateside::PublishResult> published) mutable {
            if (!published.ok()) {
              spdlog::warn("logout: telling the other instances: {}",
                           published.status().ToString());
            }
            done(logged_out());
          });
    });
  });
}

void Routes::GetOptOut(const Request& request, Reply done) const {
  LookupSession(request, [this, done = std::move(done)](
                             absl::StatusOr<stateside::Session> session) mutable {
    if (!session.ok()) return done(SidecarError(session.status(), "opt-out: session", true));
    if (session->info.user_id.empty()) return done(NoSession());
    const std::string subject = session->info.user_id;
    client_->GetOptOutAsync(subject, [subject, done = std::move(done)](
                                         absl::StatusOr<bool> opted_out) mutable {
      if (!opted_out.ok()) return done(SidecarError(opted_out.status(), "opt-out: get", false));
      done(JsonResponse(http::status::ok,
                        Json{{"subject", subject}, {"opted_out", *opted_out}}));
    });
  });
}

void Routes::SetOptOut(const Request& request, Reply done) const {
  if (!CookieRef(request).has_value()) return done(NoSession());
  std::optional<nlohmann::json> body = ParseObject(request.body());
  if (!body.has_value()) return done(BadBody("body must be a JSON object"));
  auto it = body->find("opted_out");
  if (it == body->end() || !it->is_boolean()) return done(BadBody("opted_out: true or false"));
  const bool opted_out = it->get<bool>();
  LookupSession(request, [this, opted_out, done = std::move(done)](
                             absl::StatusOr<stateside::Session> session) mutable {
    if (!session.ok()) return done(SidecarError(session.status(), "opt-out: session", true));
    if (session->info.user_id.empty()) return done(NoSession());
    const std::string subject = session->info.user_id;
    client_->SetOptOutAsync(subject, opted_out, std::nullopt,
                            [subject, opted_out, done = std::move(done)](absl::Status s) mutable {
                              if (!s.ok()) return done(SidecarError(s, "opt-out: set", false));
                              done(JsonResponse(http::status::ok,
                                                Json{{"subject", subject},
                                                     {"opted_out", opted_out}}));
                            });
  });
}

void Routes::Broadcast(const Request& request, Reply done) const {
  if (!CookieRef(request).has_value()) return done(NoSession());
  std::optional<nlohmann::json> body = ParseObject(request.body());
  if (!body.has_value()) return done(BadBody("body must be a JSON object"));
  std::optional<std::string> msg = StringField(*body, "msg");
  std::optional<std::string> room = StringField(*body, "room");
  std::optional<std::string> user = StringField(*body, "user");
  if (!msg.has_value()) return done(BadBody("msg: a string is required"));
  if (room.has_value() == user.has_value() || (room.has_value() && room->empty()) ||
      (user.has_value() && user->empty())) {
    return done(BadBody("exactly one of room or user (a non-empty string) is required"));
  }
  // What the publish needs once the session (and, for a room, the
  // caller's presence in it) is known.
  auto publish = [this, msg = *std::move(msg), room, user](std::string from, Reply done) {
    Json payload = room.has_value() ? Json{{"room", *room}} : Json{{"user", *user}};
    payload["msg"] = msg;
    payload["from"] = from;
    payload["instance"] = instance_;
    const stateside::PublishTarget target = room.has_value()
                                                ? stateside::PublishTarget::Room(*room)
                                                : stateside::PublishTarget::User(*user);
    client_->PublishAsync(
        target, "message", payload.dump(), {}, from,
        [done = std::move(done)](absl::StatusOr<stateside::PublishResult> published) mutable {
          if (!published.ok()) {
            return done(SidecarError(published.status(), "broadcast: publish", false));
          }
          done(JsonResponse(http::status::ok, Json{{"instances", published->instances},
                                                   {"sequence", published->sequence}}));
        });
  };
  LookupSession(request, [this, room = std::move(room), publish = std::move(publish),
                          done = std::move(done)](
                             absl::StatusOr<stateside::Session> session) mutable {
    if (!session.ok()) return done(SidecarError(session.status(), "broadcast: session", true));
    std::string from = session->info.user_id;
    if (!room.has_value()) return publish(std::move(from), std::move(done));
    // Only into a room the caller is in: a browser cannot fill the log of
    // a room it never joined (nor speak there).
    InRoom(from, *room, [from, publish = std::move(publish),
                         done = std::move(done)](absl::StatusOr<bool> member) mutable {
      if (!member.ok()) return done(SidecarError(member.status(), "broadcast: presence", false));
      if (!*member) {
        return done(ErrorResponse(http::status::forbidden,
                                  "join the room over the WebSocket before broadcasting to it"));
      }
      publish(std::move(from), std::move(done));
    });
  });
}

namespace {

// InRoom's walk through the room's pages.
struct RoomWalk {
  stateside::Client* client;
  std::string room;
  std::vector<stateside::ConnectionRef> mine;  // the user's connections
  int pages = 0;                               // pages looked at
  stateside::Callback<bool> done;
};

// A user has few connections, a room may have many members: the pages are
// walked until one of the user's connections shows, within a bound.
constexpr int kRoomPageSize = 1000;
constexpr int kMaxRoomPages = 100;

void CheckRoomPage(std::shared_ptr<RoomWalk> walk, stateside::RoomMembersPage page) {
  ++walk->pages;
  for (const stateside::ConnectionRef& member : page.members) {
    if (std::find(walk->mine.begin(), walk->mine.end(), member) != walk->mine.end()) {
      return walk->done(true);
    }
  }
  if (page.next_page_token.empty() || walk->pages == kMaxRoomPages) return walk->done(false);
  stateside::Client* client = walk->client;
  const std::string room = walk->room;
  client->RoomMembersAsync(
      room, kRoomPageSize, page.next_page_token,
      [walk = std::move(walk)](absl::StatusOr<stateside::RoomMembersPage> next) mutable {
        if (!next.ok()) return walk->done(next.status());
        CheckRoomPage(std::move(walk), *std::move(next));
      });
}

}  // namespace

void Routes::InRoom(const std::string& user, const std::string& room,
                    stateside::Callback<bool> done) const {
  // The room's members first: that call also checks the room's name (400).
  client_->RoomMembersAsync(
      room, kRoomPageSize, "",
      [this, user, room, done = std::move(done)](
          absl::StatusOr<stateside::RoomMembersPage> page) mutable {
        if (!page.ok()) return done(page.status());
        if (user.empty() || page->count == 0) return done(false);
        client_->UserConnectionsAsync(
            user, [this, room = std::move(room), page = *std::move(page),
                   done = std::move(done)](
                      absl::StatusOr<std::vector<stateside::ConnectionRef>> mine) mutable {
              if (!mine.ok()) return done(mine.status());
              if (mine->empty()) return done(false);
              CheckRoomPage(std::make_shared<RoomWalk>(RoomWalk{client_, std::move(room),
                                                                *std::move(mine), 0,
                                                                std::move(done)}),
                            std::move(page));
            });
      });
}

void Routes::AuthenticateWebSocket(const Request& request,
                                   absl::AnyInvocable<void(Authenticated)> done) const {
  LookupSession(request, [done = std::move(done)](
                             absl::StatusOr<stateside::Session> session) mutable {
    if (!session.ok()) return done(SidecarError(session.status(), "ws: session", true));
    done(SocketOwner{session->info.user_id, session->info.id});
  });
}

}  // namespace radar

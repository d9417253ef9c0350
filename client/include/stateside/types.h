// Plain value types of the Stateside client API: sessions, their metadata,
// instance metadata. No generated (protobuf/gRPC) types; C++17 suffices.
// Values only: safe to copy between threads, not to mutate one object from
// two threads at once.
#ifndef STATESIDE_CLIENT_INCLUDE_STATESIDE_TYPES_H_
#define STATESIDE_CLIENT_INCLUDE_STATESIDE_TYPES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace stateside {

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF — the rule protobuf applies to `string` fields. Every text field
// of the API (attribute names, user ids, room names, event names) must pass
// it; the client answers INVALID_ARGUMENT for one that does not. Pure.
bool IsValidUtf8(std::string_view text);

// A session's attributes: name → raw bytes. Names are UTF-8 text; values are
// arbitrary bytes (std::string used as a byte buffer; NULs allowed).
using Attributes = std::map<std::string, std::string>;

// Names one session, either by its raw id or by the signed cookie value
// "id.signature" that the browser carries. Apps normally hold the cookie.
struct SessionRef {
  enum class Kind { kId, kCookie };
  Kind kind = Kind::kId;
  std::string value;

  static SessionRef Id(std::string id) { return {Kind::kId, std::move(id)}; }
  static SessionRef Cookie(std::string cookie) {
    return {Kind::kCookie, std::move(cookie)};
  }
  // Auto-detects the kind: text containing '.' is a cookie ("id.signature"),
  // anything else an id. Unambiguous because ids are base64url, which has no
  // '.'. Does not validate: the sidecar judges (NOT_FOUND / INVALID_ARGUMENT).
  static SessionRef Parse(std::string_view text);

  friend bool operator==(const SessionRef& a, const SessionRef& b) {
    return a.kind == b.kind && a.value == b.value;
  }
  friend bool operator!=(const SessionRef& a, const SessionRef& b) { return !(a == b); }
};

// At the user's cap of live sessions (the sidecar's
// STATESIDE_MAX_SESSIONS_PER_USER, or SessionLimit::max_sessions_per_user).
enum class SessionLimitPolicy {
  kDefault,    // the sidecar's STATESIDE_SESSION_LIMIT_POLICY (refuse by default)
  kRefuse,     // RESOURCE_EXHAUSTED, reason SESSION_LIMIT; nothing written
  kEndOldest,  // the user's oldest sessions end to make room
};

// The cap a new session of a user is created under (CreateSession, and a
// RegenerateSession that gives a session its owner). Needs API revision 2.
struct SessionLimit {
  // Unset: the sidecar's setting. A call may tighten it, never lift it (0 or
  // more than the setting is INVALID_ARGUMENT).
  std::optional<uint32_t> max_sessions_per_user;
  SessionLimitPolicy policy = SessionLimitPolicy::kDefault;
};

// RegenerateSession's options.
struct RegenerateOptions {
  // Unset: the new session keeps the owner. Set: login: the anonymous
  // session becomes this user's (attributes kept, old id gone). A session
  // of another user is FAILED_PRECONDITION (reason SESSION_OWNED).
  std::optional<std::string> user_id;
  SessionLimit limit;  // applies when user_id gives the session its owner
  // "": one generated for this call (see Client::CreateSession).
  std::string request_id;
};

// Optional per-session timeouts at creation; each must not exceed the
// sidecar's configured SESSION_IDLE_TTL / SESSION_ABSOLUTE_TTL
// (INVALID_ARGUMENT otherwise). Unset = the sidecar's default.
struct SessionTtls {
  std::optional<absl::Duration> idle;
  std::optional<absl::Duration> absolute;
};

// A session's metadata.
struct SessionInfo {
  std::string id;       // 43 characters of base64url (256 random bits)
  std::string user_id;  // empty for an anonymous session
  absl::Time created;
  absl::Time last_access;
  absl::Time idle_expiry;      // last_access + idle TTL, capped by absolute_expiry
  absl::Time absolute_expiry;  // hard end, however active the session is
  uint64_t version = 0;        // +1 per Update; the value for expected_version
};

// What WatchSessionEvents reports (API revision 3; session.proto).
enum class SessionEventKind {
  kUnspecified,
  kCreated,
  kRegenerated,  // session_id the new id, previous_session_id the old one
  kUpdated,      // attributes: the names set or removed, never a value
  kDestroyed,
  kExpired,      // a lower bound: see SESSION_EVENT_KIND_EXPIRED
};
// "created", "regenerated", "updated", "destroyed", "expired"
// ("unspecified").
std::string_view SessionEventKindName(SessionEventKind kind);
// The kind of one of those names; nullopt for anything else.
std::optional<SessionEventKind> SessionEventKindFromName(std::string_view name);

// One change of a session, from the sidecar that made or saw it.
struct SessionChange {
  SessionEventKind kind = SessionEventKind::kUnspecified;
  std::string session_id;
  std::string user_id;  // "" anonymous, or not known to the reporter
  absl::Time time;
  std::string previous_session_id;      // kRegenerated
  std::vector<std::string> attributes;  // kUpdated
  std::string origin_instance;
};

// Client::DestroyUserSessions' options.
struct LogoutOptions {
  // Keep this session ("log out everywhere else").
  std::optional<SessionRef> keep;
  // Also tell every app instance to close the user's realtime connections
  // (the realtime event "stateside.close"; API revision 3).
  bool close_connections = false;
};

// One page of a user's sessions (Client::ListUserSessionsPage).
struct UserSessionsPage {
  std::vector<SessionInfo> sessions;
  std::string next_page_token;  // "" after the last page
};

// A session with its attributes and its signed cookie value.
struct Session {
  SessionInfo info;
  Attributes attributes;
  std::string cookie;  // "id.signature": what to put in the Set-Cookie header
};

enum class DrainState { kUnspecified, kServing, kDraining, kDrained };
// "SERVING", "DRAINING", "DRAINED" or "UNSPECIFIED".
std::string_view DrainStateName(DrainState state);

// One step of the sidecar's drain (LifecycleService.WatchDrain).
struct DrainNotice {
  DrainState state = DrainState::kUnspecified;
  // With kDraining: when the sidecar stops waiting for ReportDrained and
  // shuts down anyway (the sidecar may repeat it with kDrained).
  // InfiniteFuture() when the event carries none.
  absl::Time deadline = absl::InfiniteFuture();
  // With kDraining, for an app watcher (API revision 3): pass it to
  // Client::ReportDrained, so that the report counts once for this watcher
  // and cannot count for another drain. "" from an older sidecar.
  std::string drain_token;
};

// The Redis deployment behind the sidecar's store (kUnspecified: a sidecar
// that does not say).
enum class StoreTopology { kUnspecified, kMemory, kStandalone, kSentinel, kCluster };
// "memory", "standalone", "sentinel", "cluster" or "unspecified".
std::string_view StoreTopologyName(StoreTopology topology);

// What a sidecar serves (GetInstance's capabilities): check these rather
// than a version string. All false from a sidecar that predates them.
struct SidecarCapabilities {
  bool pipe = false;            // SessionService.Pipe (the client's fast path)
  bool session_events = false;  // a stream of a session's changes
  bool reflection = false;      // gRPC server reflection on the socket
  // request_id (retries of CreateSession, RegenerateSession, Publish apply
  // once) and drain tokens: API revision 3.
  bool request_ids = false;
  bool realtime_resume = false;  // per-target sequences, SubscribeOptions::resume
  StoreTopology topology = StoreTopology::kUnspecified;
};

// The sidecar instance the client talks to (LifecycleService.GetInstance).
struct InstanceInfo {
  std::string id;
  std::string hostname;
  int64_t pid = 0;
  absl::Time start_time;
  absl::Duration uptime;
  std::string version;
  DrainState drain_state = DrainState::kUnspecified;
  std::string backend;  // "memory", "redis" or "memory-fallback"
  std::string admin_address;
  bool ready = false;
  // STATESIDE_PRESTOP_DELAY, from GetInstance only (nullopt in
  // ListInstances, or from a sidecar that does not report it).
  std::optional<absl::Duration> prestop_delay;
  // From GetInstance only (0 and all false in ListInstances): the revision
  // of the stateside.v1 contract the sidecar implements (1, 2, ...: each
  // adds to the one before) and what it serves.
  uint32_t api_revision = 0;
  SidecarCapabilities capabilities;
};

// Why the sidecar refused a call, for a program to act on
// (stateside/v1/error.proto lists the reasons): read it with ErrorReasonOf
// (stateside/client.h) from any status the client returns.
struct ErrorReason {
  std::string reason;  // stable: "NOT_FOUND", "SESSION_LIMIT", "ATTRIBUTE_TOO_LARGE", ...
  std::string domain;  // "stateside.v1"
  // "field": the request field at fault; "limit": the limit's name.
  std::map<std::string, std::string> metadata;
};

// The reason a status from the sidecar carries (its google.rpc.ErrorInfo, an
// absl::Status payload under kErrorInfoPayload); nullopt for OK, for errors
// the client made itself (an invalid argument caught before sending, a
// deadline) and for a sidecar that predates them.
std::optional<ErrorReason> ErrorReasonOf(const absl::Status& status);
// The payload's type URL: its value is a serialized google.rpc.ErrorInfo.
inline constexpr std::string_view kErrorInfoPayload = "type.googleapis.com/google.rpc.ErrorInfo";

// grpc.health.v1 serving status.
enum class ServingStatus { kUnknown, kServing, kNotServing, kServiceUnknown };
// "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN" or "UNKNOWN".
std::string_view ServingStatusName(ServingStatus status);

}  // namespace stateside

#endif  // STATESIDE_CLIENT_INCLUDE_STATESIDE_TYPES_H_

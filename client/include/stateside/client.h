// stateside::Client: the application's handle on its Stateside sidecar.
// Thread-safe: one Client is meant to be shared by every thread of the app.
//
// Contract
// - Transport: gRPC over the sidecar's Unix socket (ClientOptions::socket_path,
//   default $STATESIDE_SOCKET, else /tmp/stateside/stateside.sock).
// - Start: Connect() waits, at most ready_timeout, until the sidecar's
//   grpc.health.v1 status is SERVING and each stream's connection is made
//   (the app may start before its sidecar); if not, Connect fails with
//   UNAVAILABLE naming the last cause. (wait_until_ready = false skips this:
//   Connect then does no I/O and never fails for a missing sidecar.)
// - Deadlines: every method has one deadline, call_timeout from the moment it
//   is called. Retries share it, so a method returns within about
//   call_timeout whatever happens (DEADLINE_EXCEEDED when it runs out).
// - Retries: only on UNAVAILABLE (sidecar unreachable, or its store is) and
//   only for idempotent operations and those sent with a request_id, at
//   most max_retries times, with
//   exponential backoff from initial_backoff (doubling, capped at max_backoff)
//   and jitter (each wait is uniform in [cap/2, cap]) so that many clients do
//   not retry in step. A retry that could not finish before the deadline is
//   not attempted; the UNAVAILABLE is returned.
//     Retried:     GetSession (touching a session twice is the same as once),
//                  TouchSession, DestroySession, ListUserSessions,
//                  DestroyUserSessions, SetOptOut, GetOptOut, GetInstance,
//                  CheckHealth, ListInstances, Drain, ReportDrained,
//                  RegisterConnection, UnregisterConnection, Join, Leave,
//                  RoomMembers, UserConnections, History, and Subscribe
//                  until the stream says `subscribed` (a failed attempt
//                  delivered nothing; its connections end with it).
//     Retried with a request_id: CreateSession, RegenerateSession and
//                  Publish. Each call generates one request_id (128 random
//                  bits) and sends it with every attempt: a sidecar of API
//                  revision 3 applies the call once and answers a retry
//                  with the first answer (a session created once, an event
//                  published once), also when the connection broke after
//                  the sidecar applied it. A retry that meets the first
//                  attempt still running is answered UNAVAILABLE (reason
//                  REQUEST_IN_PROGRESS) and retried in turn. An older
//                  sidecar ignores the request_id: a retried CreateSession
//                  may then leave a second, orphaned session, a
//                  RegenerateSession answer NOT_FOUND, a Publish deliver
//                  twice.
//     Not retried: UpdateSession — even with
//                  expected_version: if the first attempt was applied but
//                  its reply lost, a retry answers ABORTED for a write that
//                  succeeded; without it, a retry can re-apply an old value
//                  over a newer concurrent write (last-write-wins reordered).
//                  The caller, who knows its data, decides.
//   UNAVAILABLE may arrive after the sidecar applied a request, so a retried
//   call reports what the *last* attempt saw: DestroySession may say
//   existed=false and DestroyUserSessions a smaller count although this call
//   destroyed the session(s), and UnregisterConnection found=false.
// - Transport: session and opt-out calls travel, by default, on
//   SessionService.Pipe streams (ClientOptions::streams of them, each on a
//   connection of its own): calls made concurrently, from any threads or
//   through the Async forms, are multiplexed and batched on them. The rules,
//   answers and codes are those of the unary RPCs. When a stream breaks, the
//   calls it carried fail with UNAVAILABLE (and are retried by the rules
//   below) and the next call opens a new one. A sidecar that does not serve
//   Pipe (UNIMPLEMENTED) is called with unary RPCs for the Client's life; the
//   calls that were waiting on that stream are sent again that way (they
//   never ran). streams = 0: unary RPCs only. The lifecycle, health and
//   realtime calls are always unary.
// - Frame socket: GetSession and UpdateSession (and their Async forms) go,
//   by default (ClientOptions::frames), on the sidecar's frame socket
//   `<socket_path>.frames`: length-prefixed Pipe messages on a plain Unix
//   socket, without gRPC's per-message work (docs/BENCHMARKS.md). Same answers,
//   codes, deadlines and retries; a connection that ends fails the calls it
//   carried with UNAVAILABLE. Their Async callbacks then run on the
//   client's one frame I/O thread (keep them short: the answers behind wait).
//   While the socket is absent or refuses (an older sidecar, a drain), these
//   calls take the Pipe or unary path, and the client looks again a second
//   later.
// - Async forms: `FooAsync(..., done)` starts the call and returns; `done`
//   gets what `Foo` would have returned, exactly once, with the same
//   deadline, retries and codes. It runs on a library thread, or on the
//   calling thread before FooAsync returns when the call fails at once (an
//   argument error). It must not block or destroy the Client; it may start
//   other calls.
//   Destroying the Client ends the calls still running with CANCELLED (their
//   `done` runs before the destructor returns). The session and opt-out
//   calls have Async forms, and of the realtime calls RegisterConnection,
//   UnregisterConnection, Join, Leave, Publish, RoomMembers and
//   UserConnections; the others block.
// - Errors: the gRPC status code is kept (same numbering as absl::StatusCode)
//   with the sidecar's message: NOT_FOUND (unknown, expired, destroyed or
//   forged session — deliberately alike), INVALID_ARGUMENT (bad input or a
//   limit, named), ABORTED (expected_version mismatch), UNAVAILABLE,
//   RESOURCE_EXHAUSTED (also: a stream already holds max_calls_per_stream
//   calls, or on a stream, a call larger than the sidecar accepts in one
//   message, refused unsent without harming the others), DEADLINE_EXCEEDED. Text fields (ids, cookies, user
//   ids, attribute names, subjects) must be valid UTF-8, else
//   INVALID_ARGUMENT without a call.
#ifndef STATESIDE_CLIENT_INCLUDE_STATESIDE_CLIENT_H_
#define STATESIDE_CLIENT_INCLUDE_STATESIDE_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stateside/realtime.h"
#include "stateside/types.h"

namespace stateside {

// $STATESIDE_SOCKET if set and non-empty, else /tmp/stateside/stateside.sock.
std::string DefaultSocketPath();

struct ClientOptions {
  std::string socket_path = DefaultSocketPath();
  // Deadline of each method call, retries included. > 0.
  absl::Duration call_timeout = absl::Seconds(2);
  // How long Connect() waits for the sidecar to report SERVING. >= 0.
  absl::Duration ready_timeout = absl::Seconds(10);
  // false: Connect() returns at once; the first call finds out.
  bool wait_until_ready = true;
  // Retries after the first attempt (idempotent calls, UNAVAILABLE only). >= 0.
  int max_retries = 3;
  // First retry waits in [initial_backoff/2, initial_backoff]; then doubling.
  absl::Duration initial_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(1);
  // Pipe streams for the session and opt-out calls, each on its own
  // connection; calls are spread over them in turn. 0: unary RPCs. 0..64.
  int streams = 1;
  // Calls one stream may hold, queued or awaiting their result; one more
  // fails at once with RESOURCE_EXHAUSTED (memory stays bounded when the
  // sidecar stops reading). >= 1.
  int max_calls_per_stream = 4096;
  // GetSession and UpdateSession over the sidecar's frame socket
  // (`<socket_path>.frames`: length-prefixed frames on a plain Unix socket,
  // read by one client I/O thread that runs the callbacks itself) when the
  // sidecar serves it; the other calls, and these while it is absent or
  // refuses, go as `streams` says. Same deadlines, retries and errors; at
  // most max_calls_per_stream calls in flight on it.
  bool frames = true;
};

// What an Async form calls with its result (see "Async forms" above).
template <typename T>
using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;
using StatusCallback = absl::AnyInvocable<void(absl::Status)>;

class Client {
 public:
  // Validates `options` (INVALID_ARGUMENT naming the field), opens the
  // channel and, unless wait_until_ready is false, waits for SERVING.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const;

  // --- SessionService ---
  // A new session for `user_id` (empty: anonymous) holding `attributes`.
  // `limit`: this call's cap of the user's live sessions and what happens
  // at it (default: the sidecar's settings).
  // request_id: "" (the usual) generates one for this call; a caller that
  // retries the whole call itself (a script running statesidectl again)
  // passes the same one each time (1..128 printable ASCII bytes).
  absl::StatusOr<Session> CreateSession(std::string_view user_id,
                                        const Attributes& attributes = {},
                                        const SessionTtls& ttls = {},
                                        const SessionLimit& limit = {},
                                        std::string_view request_id = "");
  // The session with its attributes. touch = true rolls the idle timeout.
  absl::StatusOr<Session> GetSession(const SessionRef& ref, bool touch = true);
  // Sets `set` and deletes `remove` (a name may not be in both). With
  // expected_version, applies only if the version matches, else ABORTED.
  absl::StatusOr<SessionInfo> UpdateSession(
      const SessionRef& ref, const Attributes& set,
      const std::vector<std::string>& remove = {},
      std::optional<uint64_t> expected_version = std::nullopt);
  // Rolls the idle timeout without reading the attributes.
  absl::StatusOr<SessionInfo> TouchSession(const SessionRef& ref);
  // true if the session existed. Destroying an unknown session is not an error.
  absl::StatusOr<bool> DestroySession(const SessionRef& ref);
  // New id (and cookie), same user and attributes; the old id is gone.
  // Call on login (session fixation defence).
  absl::StatusOr<Session> RegenerateSession(const SessionRef& ref);
  // The same, optionally giving an anonymous session its owner (login that
  // keeps the cart). A sidecar that does not honour options.user_id (API
  // revision 1) is FAILED_PRECONDITION: its reply names another owner.
  absl::StatusOr<Session> RegenerateSession(const SessionRef& ref,
                                            const RegenerateOptions& options);
  // One page of the user's live sessions, in order of absolute expiry.
  // page_token: "" for the first page, else the previous page's
  // next_page_token ("" in the reply: the last page); a token the sidecar
  // did not hand out is INVALID_ARGUMENT. page_size: 0 is the sidecar's
  // default (100), more than 1000 is 1000. A page may hold fewer sessions,
  // or none, and still have a next one.
  absl::StatusOr<UserSessionsPage> ListUserSessionsPage(
      std::string_view user_id, std::string_view page_token = "",
      uint32_t page_size = 0);
  // Every page of the above, one call per page of 1000 (each retried on its
  // own), concatenated: as large as the user's sessions are many.
  absl::StatusOr<std::vector<SessionInfo>> ListUserSessions(
      std::string_view user_id);
  // Destroys every session of `user_id` except `keep`; returns how many.
  // A Create or Regenerate of the user racing with it cannot outrun it.
  absl::StatusOr<uint32_t> DestroyUserSessions(
      std::string_view user_id, const std::optional<SessionRef>& keep = std::nullopt);
  // The same with options; close_connections also has every app instance
  // told to close the user's realtime connections (a sidecar before API
  // revision 3 ignores it: check InstanceInfo::capabilities.session_events).
  absl::StatusOr<uint32_t> DestroyUserSessions(std::string_view user_id,
                                               const LogoutOptions& options);
  // Blocks on one WatchSessionEvents stream (API revision 3), calling
  // `on_event` for each change (SessionChange) or loss (Gap) in order on
  // this thread; `kinds` empty: every kind. `on_event` returning false ends
  // the stream (result OK). Otherwise returns when the sidecar ends it
  // (UNAVAILABLE at its shutdown) or it breaks. No deadline and no retry:
  // after a break, watch again and treat the break as a gap.
  using SessionEvent = std::variant<SessionChange, Gap>;
  absl::Status WatchSessionEvents(const std::function<bool(const SessionEvent&)>& on_event,
                                  const std::vector<SessionEventKind>& kinds = {});

  // --- AnalyticsService ---
  // ttl unset: the sidecar's default (1 year).
  absl::Status SetOptOut(std::string_view subject, bool opted_out,
                         std::optional<absl::Duration> ttl = std::nullopt);
  absl::StatusOr<bool> GetOptOut(std::string_view subject);

  // --- Async forms of the session and opt-out calls (contract above) ---
  // The arguments are copied before the call returns.
  void CreateSessionAsync(std::string_view user_id, const Attributes& attributes,
                          const SessionTtls& ttls, Callback<Session> done);
  void CreateSessionAsync(std::string_view user_id, const Attributes& attributes,
                          const SessionTtls& ttls, const SessionLimit& limit,
                          Callback<Session> done);
  void GetSessionAsync(const SessionRef& ref, bool touch, Callback<Session> done);
  void UpdateSessionAsync(const SessionRef& ref, const Attributes& set,
                          const std::vector<std::string>& remove,
                          std::optional<uint64_t> expected_version,
                          Callback<SessionInfo> done);
  void TouchSessionAsync(const SessionRef& ref, Callback<SessionInfo> done);
  void DestroySessionAsync(const SessionRef& ref, Callback<bool> done);
  void RegenerateSessionAsync(const SessionRef& ref, Callback<Session> done);
  void RegenerateSessionAsync(const SessionRef& ref, const RegenerateOptions& options,
                              Callback<Session> done);
  void ListUserSessionsPageAsync(std::string_view user_id,
                                 std::string_view page_token, uint32_t page_size,
                                 Callback<UserSessionsPage> done);
  void ListUserSessionsAsync(std::string_view user_id,
                             Callback<std::vector<SessionInfo>> done);
  void DestroyUserSessionsAsync(std::string_view user_id,
                                const std::optional<SessionRef>& keep,
                                Callback<uint32_t> done);
  void DestroyUserSessionsAsync(std::string_view user_id, const LogoutOptions& options,
                                Callback<uint32_t> done);
  void SetOptOutAsync(std::string_view subject, bool opted_out,
                      std::optional<absl::Duration> ttl, StatusCallback done);
  void GetOptOutAsync(std::string_view subject, Callback<bool> done);

  // --- LifecycleService / grpc.health.v1 ---
  absl::StatusOr<InstanceInfo> GetInstance();
  // The sidecar's health ("" = the server as a whole). NOT_SERVING is a
  // value here, not an error: it is what a draining sidecar answers.
  absl::StatusOr<ServingStatus> CheckHealth(std::string_view service = "");
  // Every live instance of the cluster (the sidecar's heartbeat registry).
  // Whatever the sidecar answers is passed through, e.g. UNIMPLEMENTED.
  absl::StatusOr<std::vector<InstanceInfo>> ListInstances();
  // Starts the sidecar's drain, as SIGTERM to it does. Idempotent (retried):
  // a drain already under way goes on unchanged. kHoldUntilSignal: once
  // drained, the sidecar stays up (not ready, serving nothing) until its
  // own SIGTERM instead of exiting (a Kubernetes preStop hook; see
  // DrainRequest.hold_until_signal in lifecycle.proto).
  enum class AfterDrain { kExit, kHoldUntilSignal };
  absl::Status Drain(AfterDrain after = AfterDrain::kExit);
  // Tells the sidecar this app has finished draining (after DRAINING).
  // Retried. `drain_token`: the DrainNotice's (API revision 3), which makes
  // the report count once for this app's watcher however often it is sent;
  // a token the sidecar did not hand out for its drain answers
  // FAILED_PRECONDITION (reason DRAIN_TOKEN_UNKNOWN). "": counted as one
  // more report (a retry may count twice).
  absl::Status ReportDrained(std::string_view drain_token = "");
  // Blocks on one WatchDrain stream, calling `on_event` for each event in
  // order on this thread (SERVING first). `on_event` returning false ends
  // the stream (result OK). Otherwise returns when the sidecar ends the
  // stream (OK, after DRAINED) or it breaks (e.g. UNAVAILABLE: the sidecar
  // went away). No deadline and no retry: see stateside/drain_watcher.h
  // for a watcher that re-attaches. An app watches as kApp: the sidecar waits
  // for its ReportDrained. Tools that only follow the drain use kObserver.
  enum class WatchRole { kApp, kObserver };
  absl::Status WatchDrain(const std::function<bool(const DrainNotice&)>& on_event,
                          WatchRole role = WatchRole::kApp);

  // --- RealtimeService (types and Subscription in stateside/realtime.h) ---
  // Names must be non-empty UTF-8 (INVALID_ARGUMENT without a call); the
  // sidecar enforces the exact limits (realtime.proto) and names the field.
  // RegisterConnection returns once the connection's presence is written:
  // an event published afterwards reaches it.
  absl::Status RegisterConnection(std::string_view conn_id, std::string_view user_id = "",
                                  const std::vector<std::string>& rooms = {});
  // false if the connection was not registered.
  absl::StatusOr<bool> UnregisterConnection(std::string_view conn_id);
  absl::Status Join(std::string_view conn_id, const std::vector<std::string>& rooms);
  absl::Status Leave(std::string_view conn_id, const std::vector<std::string>& rooms);
  // Retried on UNAVAILABLE with the one request_id of the call (see above),
  // so it applies once on a sidecar of API revision 3 or later. `payload` is
  // raw bytes. `sender_user_id`: the
  // user the app publishes for, rate-limited per user by the sidecar
  // (RESOURCE_EXHAUSTED past STATESIDE_PUBLISH_RATE_PER_USER); "" = none.
  absl::StatusOr<PublishResult> Publish(const PublishTarget& target,
                                        std::string_view event, std::string_view payload,
                                        const std::vector<ConnectionRef>& except = {},
                                        std::string_view sender_user_id = "",
                                        std::string_view request_id = "");
  // Opens this instance's event stream, registering `connections` for its
  // life; returns once the sidecar confirmed it (within call_timeout).
  // `resume` (at most 256, one per stream; needs capabilities
  // .realtime_resume): each stream's logged events after its position come
  // first, then the live ones, none twice.
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(
      const std::vector<ConnectionRegistration>& connections = {},
      const std::vector<StreamPosition>& resume = {});
  // Cluster-wide, on every instance (capabilities.realtime_resume): the
  // connections of `of` (a room, a user, one connection, or all), except
  // `except`, join / leave `rooms` (1..256), or are disconnected (their
  // streams get a Disconnect). Answers the instances it was sent to; each
  // applies it when it arrives. Not retried (they carry no request_id).
  absl::StatusOr<int64_t> JoinConnections(const PublishTarget& of,
                                          const std::vector<std::string>& rooms,
                                          const std::vector<ConnectionRef>& except = {});
  absl::StatusOr<int64_t> LeaveConnections(const PublishTarget& of,
                                           const std::vector<std::string>& rooms,
                                           const std::vector<ConnectionRef>& except = {});
  absl::StatusOr<int64_t> DisconnectConnections(const PublishTarget& of,
                                                const std::vector<ConnectionRef>& except = {});
  // page_size 0: the sidecar's default; page_token "" for the first page.
  absl::StatusOr<RoomMembersPage> RoomMembers(std::string_view room, int page_size = 0,
                                              std::string_view page_token = "");
  absl::StatusOr<std::vector<ConnectionRef>> UserConnections(std::string_view user_id);
  // Events after `after_sequence`; limit 0: the sidecar's default.
  absl::StatusOr<RoomHistory> History(std::string_view room, uint64_t after_sequence = 0,
                                      int limit = 0);

  // --- Async forms of realtime calls (contract above) ---
  // The arguments are copied before the call returns. Calls started one
  // after another may run concurrently: to keep a Join behind its
  // RegisterConnection, start it from the first one's `done`. PublishAsync
  // generates one request_id for the call, as Publish with "" does, and
  // sends it with every attempt.
  void RegisterConnectionAsync(std::string_view conn_id, std::string_view user_id,
                               const std::vector<std::string>& rooms, StatusCallback done);
  void UnregisterConnectionAsync(std::string_view conn_id, Callback<bool> done);
  void JoinAsync(std::string_view conn_id, const std::vector<std::string>& rooms,
                 StatusCallback done);
  void LeaveAsync(std::string_view conn_id, const std::vector<std::string>& rooms,
                  StatusCallback done);
  void PublishAsync(const PublishTarget& target, std::string_view event,
                    std::string_view payload, const std::vector<ConnectionRef>& except,
                    std::string_view sender_user_id, Callback<PublishResult> done);
  void RoomMembersAsync(std::string_view room, int page_size, std::string_view page_token,
                        Callback<RoomMembersPage> done);
  void UserConnectionsAsync(std::string_view user_id,
                            Callback<std::vector<ConnectionRef>> done);

 private:
  struct Impl;  // gRPC channel and stubs; keeps generated types out of here
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;  // constant after construction
};

}  // namespace stateside

#endif  // STATESIDE_CLIENT_INCLUDE_STATESIDE_CLIENT_H_

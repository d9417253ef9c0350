// The client's retry policy: which calls may be retried, on which codes, and
// how long to wait between attempts. Pure functions: thread-safe.
#ifndef STATESIDE_CLIENT_SRC_RETRY_H_
#define STATESIDE_CLIENT_SRC_RETRY_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace stateside::client_internal {

// Every call the client makes; the retry policy is decided per call.
enum class Rpc {
  kCreateSession,
  kGetSession,
  kUpdateSession,
  kTouchSession,
  kDestroySession,
  kRegenerateSession,
  kListUserSessions,
  kDestroyUserSessions,
  kSetOptOut,
  kGetOptOut,
  kGetInstance,
  kCheckHealth,
  kListInstances,
  kDrain,
  kReportDrained,
  kRegisterConnection,
  kUnregisterConnection,
  kJoin,
  kLeave,
  kPublish,
  kSubscribe,
  kRoomMembers,
  kUserConnections,
  kHistory,
};
// The session, analytics, lifecycle and health calls.
inline constexpr Rpc kAllRpcs[] = {
    Rpc::kCreateSession,    Rpc::kGetSession,          Rpc::kUpdateSession,
    Rpc::kTouchSession,     Rpc::kDestroySession,      Rpc::kRegenerateSession,
    Rpc::kListUserSessions, Rpc::kDestroyUserSessions, Rpc::kSetOptOut,
    Rpc::kGetOptOut,        Rpc::kGetInstance,         Rpc::kCheckHealth,
    Rpc::kListInstances,    Rpc::kDrain,               Rpc::kReportDrained,
};
// The RealtimeService calls.
inline constexpr Rpc kRealtimeRpcs[] = {
    Rpc::kRegisterConnection, Rpc::kUnregisterConnection, Rpc::kJoin,
    Rpc::kLeave,              Rpc::kPublish,              Rpc::kSubscribe,
    Rpc::kRoomMembers,        Rpc::kUserConnections,      Rpc::kHistory,
};

std::string_view RpcName(Rpc rpc);

// Whether repeating the call has the same effect as making it once. The
// reasons for each "no" are in client.h ("Not retried").
bool IsIdempotent(Rpc rpc);

// Whether the client sends the call with a request_id (generated once per
// call, the same in every attempt), which makes a retry safe on a sidecar
// of API revision 3: CreateSession, RegenerateSession, Publish.
bool CarriesRequestId(Rpc rpc);

// IsIdempotent or CarriesRequestId: the calls that may be retried.
bool IsRetryable(Rpc rpc);

// A new request_id: 128 random bits, 32 lowercase hex characters.
std::string NewRequestId();

// Whether to try again after an attempt failed with `code`, when `retries_done`
// retries (attempts after the first) have been made already.
// Only UNAVAILABLE is retried: every other code is an answer (NOT_FOUND,
// ABORTED, ...) or means the time is up (DEADLINE_EXCEEDED).
bool ShouldRetry(Rpc rpc, absl::StatusCode code, int retries_done,
                 int max_retries);

// The wait before retry number `retry` (1 = first retry).
// cap = min(max_backoff, initial_backoff * 2^(retry-1)); the result is
// cap/2 + jitter * cap/2, i.e. in [cap/2, cap] for jitter in [0, 1]
// ("equal jitter": spread out, yet never much shorter than the backoff).
// jitter outside [0, 1] is clamped. REQUIRES: retry >= 1.
absl::Duration BackoffDelay(int retry, absl::Duration initial_backoff,
                            absl::Duration max_backoff, double jitter);

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_RETRY_H_

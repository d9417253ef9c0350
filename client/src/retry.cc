// The client's retry policy (see retry.h and the contract in client.h).
#include "client/src/retry.h"

#include <algorithm>
#include <cstdint>
#include <random>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace stateside::client_internal {

std::string_view RpcName(Rpc rpc) {
  switch (rpc) {
    case Rpc::kCreateSession: return "CreateSession";
    case Rpc::kGetSession: return "GetSession";
    case Rpc::kUpdateSession: return "UpdateSession";
    case Rpc::kTouchSession: return "TouchSession";
    case Rpc::kDestroySession: return "DestroySession";
    case Rpc::kRegenerateSession: return "RegenerateSession";
    case Rpc::kListUserSessions: return "ListUserSessions";
    case Rpc::kDestroyUserSessions: return "DestroyUserSessions";
    case Rpc::kSetOptOut: return "SetOptOut";
    case Rpc::kGetOptOut: return "GetOptOut";
    case Rpc::kGetInstance: return "GetInstance";
    case Rpc::kCheckHealth: return "CheckHealth";
    case Rpc::kListInstances: return "ListInstances";
    case Rpc::kDrain: return "Drain";
    case Rpc::kReportDrained: return "ReportDrained";
    case Rpc::kRegisterConnection: return "RegisterConnection";
    case Rpc::kUnregisterConnection: return "UnregisterConnection";
    case Rpc::kJoin: return "Join";
    case Rpc::kLeave: return "Leave";
    case Rpc::kPublish: return "Publish";
    case Rpc::kSubscribe: return "Subscribe";
    case Rpc::kRoomMembers: return "RoomMembers";
    case Rpc::kUserConnections: return "UserConnections";
    case Rpc::kHistory: return "History";
  }
  return "?";
}

bool IsIdempotent(Rpc rpc) {
  switch (rpc) {
    case Rpc::kCreateSession:
    case Rpc::kUpdateSession:
    case Rpc::kRegenerateSession:
    // A retry after a lost reply would deliver the event twice (unless it
    // carries a request_id: CarriesRequestId).
    case Rpc::kPublish:
      return false;
    case Rpc::kGetSession:
    case Rpc::kTouchSession:
    case Rpc::kDestroySession:
    case Rpc::kListUserSessions:
    case Rpc::kDestroyUserSessions:
    case Rpc::kSetOptOut:
    case Rpc::kGetOptOut:
    case Rpc::kGetInstance:
    case Rpc::kCheckHealth:
    case Rpc::kListInstances:
    // Drain is idempotent. A ReportDrained with its drain token counts once
    // however often it arrives; without one (an older sidecar) it counts
    // twice, which with one app per pod (the supported layout) changes
    // nothing; with several, see "The drain" in docs/OPERATIONS.md.
    case Rpc::kDrain:
    case Rpc::kReportDrained:
    case Rpc::kRegisterConnection:
    case Rpc::kUnregisterConnection:
    case Rpc::kJoin:
    case Rpc::kLeave:
    // A stream that failed before `subscribed` delivered nothing, and the
    // sidecar unregisters its connections when it ends.
    case Rpc::kSubscribe:
    case Rpc::kRoomMembers:
    case Rpc::kUserConnections:
    case Rpc::kHistory:
      return true;
  }
  return false;  // an unknown call is never retried
}

bool CarriesRequestId(Rpc rpc) {
  return rpc == Rpc::kCreateSession || rpc == Rpc::kRegenerateSession || rpc == Rpc::kPublish;
}

bool IsRetryable(Rpc rpc) { return IsIdempotent(rpc) || CarriesRequestId(rpc); }

std::string NewRequestId() {
  // Unique and unpredictable (the kernel's generator: std::random_device
  // reads getrandom): the sidecar answers a retried id with the first
  // answer, which for an anonymous Create is a new session's cookie, so no
  // other caller may guess it.
  static absl::Mutex mu(absl::kConstInit);
  static std::random_device* const device = new std::random_device();
  uint64_t high;
  uint64_t low;
  {
    absl::MutexLock lock(&mu);
    high = (uint64_t{(*device)()} << 32) | (*device)();
    low = (uint64_t{(*device)()} << 32) | (*device)();
  }
  return absl::StrFormat("%016x%016x", high, low);
}

bool ShouldRetry(Rpc rpc, absl::StatusCode code, int retries_done,
                 int max_retries) {
  return code == absl::StatusCode::kUnavailable && IsRetryable(rpc) &&
         retries_done < max_retries;
}

absl::Duration BackoffDelay(int retry, absl::Duration initial_backoff,
                            absl::Duration max_backoff, double jitter) {
  absl::Duration cap = std::min(initial_backoff, max_backoff);
  // Doubling step by step (not 2^n) cannot overflow for any retry count.
  for (int i = 1; i < retry && cap < max_backoff; ++i) {
    cap = std::min(cap * 2, max_backoff);
  }
  jitter = std::clamp(jitter, 0.0, 1.0);
  return cap / 2 + (cap / 2) * jitter;
}

}  // namespace stateside::client_internal

// What happened to a session, as the session rules report it to watchers
// (SessionService.WatchSessionEvents): the kind, the ids and the names of
// the attributes an update touched, never a value. Plain value types and
// pure functions (thread-safe); the sink interface's implementations say
// their own thread-safety.
#ifndef STATESIDE_SIDECAR_SESSION_SESSION_CHANGE_H_
#define STATESIDE_SIDECAR_SESSION_SESSION_CHANGE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::session {

// The values are the wire's (SessionEventKind of session.proto and the
// frame below): never renumber.
enum class ChangeKind : uint8_t {
  kCreated = 1,
  kRegenerated = 2,
  kUpdated = 3,
  kDestroyed = 4,
  kExpired = 5,
};
inline constexpr uint8_t kMaxChangeKind = 5;

struct SessionChange {
  ChangeKind kind = ChangeKind::kCreated;
  std::string session_id;
  std::string user_id;      // "" anonymous or not known to the reporter
  absl::Time time = absl::UnixEpoch();
  std::string previous_id;  // kRegenerated: the retired id
  std::vector<std::string> attributes;  // kUpdated: names set or removed, sorted
  std::string origin;       // the reporting instance (set by the feed)
};

// Where the session rules report changes. Called on the thread of the
// session call (or of the store's completion, or of the memory store's
// sweep), after the change took effect; must not block.
class SessionChanges {
 public:
  virtual ~SessionChanges() = default;
  virtual void OnChange(SessionChange change) = 0;
};

// The byte form of a change between sidecars (sealed by the Redis relay
// before it leaves the process): a version, then each field as
// "<decimal length>:<bytes>". Decode refuses anything Encode did not write
// (INVALID_ARGUMENT).
std::string EncodeChange(const SessionChange& change);
absl::StatusOr<SessionChange> DecodeChange(std::string_view bytes);

}  // namespace stateside::session

#endif  // STATESIDE_SIDECAR_SESSION_SESSION_CHANGE_H_

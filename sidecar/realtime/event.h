// What travels between instances: one published event and its addressing,
// plus its byte form on the wire (Redis channels and the room log). The
// codec is a versioned, length-prefixed binary frame; the Redis broker seals
// it before it leaves the process. Plain value types; the functions are pure
// (thread-safe).
#ifndef STATESIDE_SIDECAR_REALTIME_EVENT_H_
#define STATESIDE_SIDECAR_REALTIME_EVENT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::realtime {

enum class TargetKind : uint8_t { kRoom = 1, kUser = 2, kConnection = 3, kAll = 4 };
// What an event asks of the instances it reaches: nothing (an app event for
// its connections), or, for a cluster-wide operation, that every local
// connection it targets joins or leaves `rooms`, or is disconnected.
enum class Control : uint8_t { kNone = 0, kJoin = 1, kLeave = 2, kDisconnect = 3 };
std::string_view TargetKindName(TargetKind kind);  // "room", "user", "connection", "all"

// A connection anywhere in the cluster: ids are scoped to their instance.
struct ConnRef {
  std::string instance;
  std::string conn;
  friend bool operator==(const ConnRef&, const ConnRef&) = default;
};

struct Event {
  TargetKind target = TargetKind::kAll;
  // The room, the user id, or the connection id (kConnection: of
  // `to_instance`); empty for kAll.
  std::string to;
  std::string to_instance;
  std::string name;     // the app's event name
  std::string payload;  // opaque bytes
  // Kept with the event in its stream's log, so a replay skips them too.
  std::vector<ConnRef> except;
  uint64_t sequence = 0;  // the position in its stream: set by the broker
  absl::Time published_at = absl::UnixEpoch();
  std::string origin;  // the publishing instance
  // Cluster-wide operations only (no sequence, no log): kJoin and kLeave
  // name `rooms`; `name` and `payload` are empty.
  Control control = Control::kNone;
  std::vector<std::string> rooms;
  // In this process only (not in the frame): an app event that is no event
  // of its stream, neither numbered nor logged, so never replayed
  // (receivers see sequence 0). The sidecar's own kCloseEventName; user
  // targets only (RealtimeHub::Publish refuses others: a room's receivers
  // take only numbered app events).
  bool transient = false;
};

// The event DestroyUserSessions' close_connections delivers to the user's
// connections (session.proto): transient, and never replayed from a log
// an older version wrote it to.
inline constexpr char kCloseEventName[] = "stateside.close";
// Event names the sidecar keeps for itself: Publish refuses them.
inline constexpr char kReservedEventPrefix[] = "stateside.";

// One target's event stream: what a sequence number counts (1, 2, 3, … per
// stream, cluster-wide). A room, a user, a connection (of its instance) and
// the broadcasts each have one; each keeps a bounded log for replays.
struct StreamRef {
  TargetKind target = TargetKind::kAll;
  std::string to;           // the room, user or connection id; "" for kAll
  std::string to_instance;  // kConnection only
  friend bool operator==(const StreamRef&, const StreamRef&) = default;
};
StreamRef StreamOf(const Event& event);
// Distinct for distinct streams: "r:<room>", "u:<user>", "c:<inst>/<conn>"
// (instance ids never contain '/'), "a".
std::string StreamKey(const StreamRef& stream);

// Limits of the API (realtime.proto): names are printable ASCII.
inline constexpr size_t kMaxConnIdBytes = 128;
inline constexpr size_t kMaxNameBytes = 256;       // user ids and rooms
inline constexpr size_t kMaxEventNameBytes = 128;
inline constexpr size_t kMaxPayloadBytes = 64 << 10;
inline constexpr size_t kMaxExcept = 1024;
inline constexpr size_t kMaxRoomsPerRequest = 256;
inline constexpr size_t kMaxResumePoints = 256;  // per Subscribe

// INVALID_ARGUMENT "<field>: …" unless `value` is min..max bytes of
// 0x21..0x7e.
absl::Status ValidateName(std::string_view field, std::string_view value, size_t min_bytes,
                          size_t max_bytes);

// The frame, without `sequence` (the broker assigns it and carries it beside
// the frame). Decode refuses anything Encode did not write (INVALID_ARGUMENT).
std::string EncodeEvent(const Event& event);
absl::StatusOr<Event> DecodeEvent(std::string_view bytes);

}  // namespace stateside::realtime

#endif  // STATESIDE_SIDECAR_REALTIME_EVENT_H_

// Plain value types of the realtime API (connections, rooms, events) and
// stateside::Subscription, one open RealtimeService.Subscribe stream.
// Values are safe to copy between threads; Subscription is thread-safe.
//
// Subscription contract
// - Client::Subscribe returns one only after the sidecar's first message
//   (`subscribed`): every event published after that reaches it.
// - Next(timeout) hands out the events in the order the sidecar sent them.
//   DEADLINE_EXCEEDED when none came within `timeout` (the stream goes on).
//   Once the stream has ended, Next returns the events still buffered, then
//   its final status forever:
//     CANCELLED     after Cancel() (buffered events are dropped at once),
//     UNAVAILABLE   the sidecar went away or cancelled the stream itself
//                   (its shutdown): subscribe again, fill gaps with History,
//     OUT_OF_RANGE  the sidecar ended the stream normally,
//     INTERNAL      the sidecar broke the protocol (no `subscribed` first),
//     any other code as the sidecar sent it.
// - No deadline and no automatic re-subscription: the stream lives until it
//   is cancelled or breaks; what was lost meanwhile is for the app to judge.
// - Cancel() from any thread, any number of times. The destructor cancels
//   and joins; it does not wait for the sidecar. REQUIRES: no thread is
//   inside Next() when the Subscription is destroyed.
// - Implementation: a synchronous ClientReader on one thread per
//   Subscription, feeding a buffer of at most kMaxBufferedEvents. Chosen over
//   the callback API (ClientReadReactor) because the reads must follow the
//   app's Next() calls (flow control: a slow app must make the *sidecar's*
//   bounded queue overflow and report a Gap, not grow memory here), and
//   starting reads from outside reactions needs holds and care with
//   reactions that run inline; a blocked thread and one mutex are simpler to
//   get right. Subscriptions are few (one per app worker), so a thread each
//   is cheap. Cancellation is ClientContext::TryCancel, which unblocks Read.
//   Memory per Subscription: kMaxBufferedEvents events plus what gRPC's
//   HTTP/2 window for the stream holds (a few MiB); a stalled stream does
//   not hold up the Client's other calls on the same connection.
// - A Subscription holds its own reference to the connection: it may outlive
//   the Client that opened it.
#ifndef STATESIDE_CLIENT_INCLUDE_STATESIDE_REALTIME_H_
#define STATESIDE_CLIENT_INCLUDE_STATESIDE_REALTIME_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside {

namespace client_internal {
class RealtimeCalls;
}

// A connection anywhere in the cluster. Connection ids are scoped to the
// instance that registered them; an empty instance_id (in a request) means
// the instance of the sidecar the client talks to.
struct ConnectionRef {
  std::string instance_id;
  std::string conn_id;

  friend bool operator==(const ConnectionRef& a, const ConnectionRef& b) {
    return a.instance_id == b.instance_id && a.conn_id == b.conn_id;
  }
  friend bool operator!=(const ConnectionRef& a, const ConnectionRef& b) {
    return !(a == b);
  }
};

// A connection to register on this instance: Client::RegisterConnection's
// arguments, or one of Client::Subscribe's stream-scoped connections.
struct ConnectionRegistration {
  std::string conn_id;
  std::string user_id;  // optional: makes it addressable by user
  std::vector<std::string> rooms;
};

enum class Target { kUnspecified, kRoom, kUser, kConnection, kAll };
// "room", "user", "connection", "all" or "unspecified".
std::string_view TargetName(Target target);

// Whom Client::Publish sends to. Build with the factories.
struct PublishTarget {
  Target kind = Target::kAll;
  std::string name;          // kRoom: the room; kUser: the user id
  ConnectionRef connection;  // kConnection

  static PublishTarget Room(std::string room) {
    return {Target::kRoom, std::move(room), {}};
  }
  static PublishTarget User(std::string user_id) {
    return {Target::kUser, std::move(user_id), {}};
  }
  static PublishTarget Connection(ConnectionRef connection) {
    return {Target::kConnection, "", std::move(connection)};
  }
  static PublishTarget All() { return {Target::kAll, "", {}}; }
};

struct PublishResult {
  // The event's sequence number in its target's stream (a sidecar with
  // api_revision < 3: rooms only, 0 for other targets).
  uint64_t sequence = 0;
  int64_t instances = 0;  // instances the event was sent to through Redis
};

// One event for this instance's connections.
struct Delivery {
  Target target = Target::kUnspecified;
  std::string to;     // the room, user id or connection id published to
  std::string event;  // the event name (may be empty)
  std::string payload;  // raw bytes
  std::vector<std::string> conn_ids;  // this instance's connections to hand it to
  uint64_t sequence = 0;  // the sequence number of the target's stream
  absl::Time published_at;
  std::string origin_instance;
};

// A position in a target's stream: the last sequence number the app has
// seen of it. Client::Subscribe's resume points: the new stream replays
// what the stream's log still holds after it, then goes live.
struct StreamPosition {
  PublishTarget target;  // a connection with an empty instance_id: this one
  uint64_t sequence = 0;
};
// The stream a delivery belongs to, at the delivery's sequence number (a
// connection's: on this instance). Keep the highest per stream (a user's
// events can arrive crossed on Redis; sequence 0 is in no stream and never
// a position) and hand them to Subscribe when the stream is opened again.
StreamPosition PositionOf(const Delivery& delivery);

// Events may have been lost: tell the clients (or recover them with History
// or by subscribing again with resume points).
struct Gap {
  enum class Reason { kUnspecified, kSubscriberOverflow, kRedisDisconnected, kResumeIncomplete };
  Reason reason = Reason::kUnspecified;
  uint64_t dropped = 0;  // kSubscriberOverflow: events dropped for this stream
  // kRedisDisconnected: the interval in which events may have been lost.
  std::optional<absl::Time> from;
  std::optional<absl::Time> to;
  // kResumeIncomplete: the resume point whose stream's log no longer
  // reaches back, and the first sequence replayed (0: none); those in
  // between are lost.
  std::optional<StreamPosition> resume;
  uint64_t first_sequence = 0;
};
// "subscriber-overflow", "redis-disconnected", "resume-incomplete" or
// "unspecified".
std::string_view GapReasonName(Gap::Reason reason);

// A cluster-wide DisconnectConnections reached these local connections:
// the sidecar has unregistered them; the app closes them.
struct Disconnect {
  std::vector<std::string> conn_ids;
};

using RealtimeEvent = std::variant<Delivery, Gap, Disconnect>;

// One page of a room's members (Client::RoomMembers).
struct RoomMembersPage {
  int64_t count = 0;  // members on live instances, cluster-wide
  std::vector<ConnectionRef> members;
  std::string next_page_token;  // empty on the last page
};

// A window of a room's recent events (Client::History).
struct RoomHistory {
  std::vector<Delivery> events;
  // True: nothing after after_sequence was lost from the window. False: the
  // window no longer reaches back to after_sequence + 1.
  bool complete = false;
  uint64_t last_sequence = 0;   // the room's latest sequence number
  uint64_t first_sequence = 0;  // the oldest one still held (0 if none)
  bool more = false;            // more follow: ask again after the last one
};

class Subscription {
 public:
  // Events buffered on the client before it stops reading from the stream.
  static constexpr int kMaxBufferedEvents = 64;

  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // The next event; blocks up to `timeout` (InfiniteDuration: no limit).
  absl::StatusOr<RealtimeEvent> Next(absl::Duration timeout = absl::InfiniteDuration());
  // Ends the stream; a Next() blocked in another thread returns CANCELLED.
  void Cancel();

 private:
  friend class client_internal::RealtimeCalls;
  class Impl;
  explicit Subscription(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;  // constant after construction
};

}  // namespace stateside

#endif  // STATESIDE_CLIENT_INCLUDE_STATESIDE_REALTIME_H_

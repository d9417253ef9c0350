// The cluster side of realtime: how events travel between instances and
// where presence lives. The hub (hub.h) keeps this instance's connections in
// memory and tells the broker what it needs; the broker moves events and
// keeps the cluster-wide presence registry. Implementations: MemoryBroker
// (the embedded store: one process, optionally several hubs in tests) and
// RedisBroker (pub/sub channels, presence hashes, a capped log per target
// stream).
//
// Routing contract (what makes it targeted rather than flooding): an
// instance receives a room's events only while Watch()ing the room (the hub
// watches a room while it has a local member), user- and
// connection-targeted events only when one of its connections is the
// target, and broadcasts only while it has connections at all
// (WatchBroadcast). Presence answers come from entries refreshed by
// heartbeats (Refresh): an instance that stops refreshing drops out of every
// answer within `presence_ttl`.
//
// Implementations are thread-safe. Callbacks run once, on a thread of the
// broker's or inline; they must not block and the caller must not hold a
// lock they take. The Sink is called from one broker thread at a time, in
// arrival order.
#ifndef STATESIDE_SIDECAR_REALTIME_BROKER_H_
#define STATESIDE_SIDECAR_REALTIME_BROKER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/realtime/event.h"

namespace stateside::realtime {

// One local connection as presence knows it.
struct ConnPresence {
  std::string conn;
  std::string user;  // "" = not addressable by user
  std::vector<std::string> rooms;
};

struct PublishResult {
  uint64_t sequence = 0;  // the event's position in its target's stream
  int64_t instances = 0;  // instances the event was sent to
};

struct MembersPage {
  int64_t count = 0;  // members on live instances
  std::vector<ConnRef> members;
  std::string next_page_token;
};

struct HistoryPage {
  std::vector<Event> events;  // with sequence set, oldest first
  bool complete = false;
  bool more = false;
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
};

class Broker {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;
  template <typename T>
  using Reply = absl::AnyInvocable<void(absl::StatusOr<T>) &&>;

  // Where this instance's incoming events go.
  class Sink {
   public:
    virtual ~Sink() = default;
    // An event published to something this instance watches (or to one of
    // its connections or users). `latency` source: event.published_at.
    virtual void OnEvent(Event event) = 0;
    // Incoming events may have been lost during [from, to] (the broker's
    // connection was down); subscriptions are restored.
    virtual void OnGap(absl::Time from, absl::Time to) = 0;
    // The presence entries may be gone (e.g. Redis restarted empty): the hub
    // writes all of its connections again with SyncPresence.
    virtual void OnPresenceLost() = 0;
  };

  virtual ~Broker() = default;

  // REQUIRES: called once, before anything else; `sink` outlives the broker
  // or Stop() is called first.
  virtual void Start(Sink* sink) = 0;
  // No more Sink calls after it returns. Idempotent.
  virtual void Stop() = 0;

  // Channel interest. Done: OK once events published afterwards are
  // received; UNAVAILABLE if that cannot be confirmed now (the interest stays
  // and is restored when the broker reconnects).
  virtual void WatchRoom(std::string_view room, Done done) = 0;
  virtual void UnwatchRoom(std::string_view room) = 0;
  virtual void WatchBroadcast(bool on, Done done) = 0;

  // Presence of this instance's connections. Add writes (or extends) the
  // entries of `conn`: its user and the given rooms; Remove deletes the
  // given rooms, or with `all` every entry of the connection.
  virtual void AddPresence(const ConnPresence& conn, Done done) = 0;
  virtual void RemovePresence(const ConnPresence& conn, bool all, Done done) = 0;
  // Replaces every entry of this instance with `conns` (after OnPresenceLost
  // or a reconnect).
  virtual void SyncPresence(std::vector<ConnPresence> conns, Done done) = 0;
  // Heartbeat: keeps this instance's presence alive for presence_ttl and
  // clears the entries of instances that stopped refreshing. Blocking.
  virtual absl::Status Refresh() = 0;
  // The drain: every entry of this instance goes at once. Blocking.
  virtual absl::Status RemoveInstance() = 0;

  // Event routing: the event gets the next sequence number of its target's
  // stream (StreamOf) and an entry in that stream's log.
  // `event.origin` and `published_at` are set by the caller.
  virtual void Publish(Event event, Reply<PublishResult> done) = 0;

  // Presence queries (cluster-wide, live instances only). `page_token` is
  // opaque; INVALID_ARGUMENT if it is not one this broker made.
  virtual void RoomMembers(std::string_view room, int page_size, std::string_view page_token,
                           Reply<MembersPage> done) = 0;
  virtual void UserConnections(std::string_view user, Reply<std::vector<ConnRef>> done) = 0;
  // A stream's logged events after `after_sequence`, oldest first, at most
  // `limit` (PageSize). Entries keep their `except`.
  virtual void StreamHistory(const StreamRef& stream, uint64_t after_sequence, int limit,
                             Reply<HistoryPage> done) = 0;
  void History(std::string_view room, uint64_t after_sequence, int limit,
               Reply<HistoryPage> done) {
    StreamHistory(StreamRef{TargetKind::kRoom, std::string(room), ""}, after_sequence, limit,
                  std::move(done));
  }

  // Channels (or their equivalent) this instance holds now.
  virtual int64_t channels_held() const = 0;
};

}  // namespace stateside::realtime

#endif  // STATESIDE_SIDECAR_REALTIME_BROKER_H_

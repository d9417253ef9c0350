// The in-process broker: realtime for the embedded memory store (one
// instance), and a cluster-in-a-process for tests (several hubs on one
// MemoryCluster, each with its own MemoryBroker). Same routing rules as the
// Redis broker: an endpoint receives a room's events only while watching
// it, user/connection events only for its own connections, broadcasts only
// while WatchBroadcast(true). Presence of an endpoint disappears when it
// stops. Events are handed to the sinks by one dispatcher thread, in publish
// order; its queue is bounded (kMaxQueued; beyond, events are dropped and
// counted). Stream logs (one per room, user, connection, and the
// broadcasts): the last `history_size` events of at most `max_logged_rooms`
// streams, and of at most `history_bytes` per stream (event name and
// payload; the oldest go first, the newest event always stays); the stream
// published to least recently goes first.
//
// Thread-safe. The cluster must outlive its brokers.
#ifndef STATESIDE_SIDECAR_REALTIME_MEMORY_BROKER_H_
#define STATESIDE_SIDECAR_REALTIME_MEMORY_BROKER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/common/clock.h"
#include "sidecar/realtime/broker.h"

namespace stateside::realtime {

class MemoryBroker;

struct MemoryClusterOptions {
  size_t history_size = 1000;
  size_t history_bytes = 1 << 20;
  size_t max_logged_rooms = 10000;  // streams of any kind
};

class MemoryCluster {
 public:
  static constexpr size_t kMaxQueued = 65536;

  explicit MemoryCluster(const Clock* clock, MemoryClusterOptions options = {});
  ~MemoryCluster();  // REQUIRES: every broker is gone
  MemoryCluster(const MemoryCluster&) = delete;
  MemoryCluster& operator=(const MemoryCluster&) = delete;

  std::unique_ptr<MemoryBroker> NewBroker(std::string instance_id);
  uint64_t dropped() const;

 private:
  friend class MemoryBroker;
  struct Endpoint {
    Broker::Sink* sink = nullptr;
    absl::flat_hash_set<std::string> rooms;
    bool broadcast = false;
    // conn -> its presence (user, rooms)
    absl::flat_hash_map<std::string, std::pair<std::string, std::set<std::string>>> conns;
  };
  struct StreamLog {
    uint64_t sequence = 0;
    std::deque<Event> events;
    size_t bytes = 0;  // LoggedBytes of `events`
    absl::Time last_publish;
  };

  // Called with or without mu_ held (Publish enqueues under the routing
  // lock so the dispatch order is the sequence order): mu_ is always taken
  // before queue_mu_.
  void Enqueue(std::vector<std::pair<std::string, Event>> batch) ABSL_LOCKS_EXCLUDED(queue_mu_);
  void DispatchLoop();
  PublishResult Route(Event event, std::vector<std::pair<std::string, Event>>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TrimLogsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;
  const MemoryClusterOptions options_;

  mutable absl::Mutex mu_;
  std::map<std::string, Endpoint> endpoints_ ABSL_GUARDED_BY(mu_);
  // StreamKey -> its counter and log.
  absl::flat_hash_map<std::string, StreamLog> logs_ ABSL_GUARDED_BY(mu_);

  // The dispatcher: endpoint id + event, in publish order.
  mutable absl::Mutex queue_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::deque<std::pair<std::string, Event>> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(queue_mu_) = 0;
  // The sink being called now, so Stop() can wait until it returns.
  std::string dispatching_ ABSL_GUARDED_BY(queue_mu_);
  std::thread dispatcher_;
};

class MemoryBroker final : public Broker {
 public:
  ~MemoryBroker() override;

  void Start(Sink* sink) override;
  void Stop() override;
  void WatchRoom(std::string_view room, Done done) override;
  void UnwatchRoom(std::string_view room) override;
  void WatchBroadcast(bool on, Done done) override;
  void AddPresence(const ConnPresence& conn, Done done) override;
  void RemovePresence(const ConnPresence& conn, bool all, Done done) override;
  void SyncPresence(std::vector<ConnPresence> conns, Done done) override;
  absl::Status Refresh() override { return absl::OkStatus(); }
  absl::Status RemoveInstance() override;
  void Publish(Event event, Reply<PublishResult> done) override;
  void RoomMembers(std::string_view room, int page_size, std::string_view page_token,
                   Reply<MembersPage> done) override;
  void UserConnections(std::string_view user, Reply<std::vector<ConnRef>> done) override;
  void StreamHistory(const StreamRef& stream, uint64_t after_sequence, int limit,
                     Reply<HistoryPage> done) override;
  int64_t channels_held() const override;

 private:
  friend class MemoryCluster;
  MemoryBroker(MemoryCluster* cluster, std::string id) : cluster_(cluster), id_(std::move(id)) {}

  MemoryCluster* const cluster_;
  const std::string id_;
};

// Validation shared by the brokers: page_size 0 → 100, else 1..1000;
// limit likewise. INVALID_ARGUMENT otherwise.
absl::StatusOr<int> PageSize(int requested, std::string_view field);

}  // namespace stateside::realtime

#endif  // STATESIDE_SIDECAR_REALTIME_MEMORY_BROKER_H_

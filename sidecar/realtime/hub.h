// The realtime hub: this instance's live client connections (registered by
// the app), their rooms and users, and the Subscribe streams the app reads
// events from. It keeps the broker's channel interest exactly in step with
// the local memberships (a room is watched while it has a local member,
// broadcasts while there is any connection), writes presence through the
// broker, and turns each incoming event into one Delivery naming the local
// connections it is for, queued to every subscriber.
//
// Writes (Register, Join, Leave, Unregister) apply locally at once and
// answer when the broker has confirmed the presence write and the channel
// subscriptions; if the broker is unavailable they answer UNAVAILABLE but the
// local state stands and is written again when the broker reconnects
// (SyncPresence), so a retry is safe and nothing is left half-done.
//
// Thread-safe. Callbacks run once, on a broker thread or inline.
#ifndef STATESIDE_SIDECAR_REALTIME_HUB_H_
#define STATESIDE_SIDECAR_REALTIME_HUB_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/common/clock.h"
#include "sidecar/realtime/broker.h"
#include "sidecar/realtime/rate_limiter.h"
#include "sidecar/realtime/subscriber_queue.h"

namespace stateside::realtime {

// Where the hub reports for metrics; must not block.
class RealtimeMetrics {
 public:
  virtual ~RealtimeMetrics() = default;
  virtual void Published(TargetKind target) = 0;
  // An event arrived from the broker (one per event per instance).
  virtual void Received() = 0;
  // An event was not handed to a subscriber: "overflow" (its queue was
  // full), "no_target" (no local connection is concerned any more),
  // "no_subscriber" (nobody reads this instance's events), "stale" (a
  // resume's replay delivered it already: a live event the resume held or
  // that arrived within SubscriberQueue::kCoverTtl after it).
  virtual void Dropped(std::string_view reason, uint64_t count) = 0;
  // A loss window was signalled: "overflow" or "redis".
  virtual void Gap(std::string_view reason) = 0;
  // A call refused with RESOURCE_EXHAUSTED by a cap: "rooms_per_connection",
  // "publish_rate_per_user".
  virtual void CapRefused(std::string_view cap) {}
};

struct HubOptions {
  std::string instance_id;
  size_t queue_events = 1024;     // per subscriber, >= 1
  size_t queue_bytes = 16 << 20;  // per subscriber
  size_t max_connections = 100000;
  size_t max_rooms_per_connection = 1024;
  // Publishes per second (and at once) one sender user may make through
  // this instance; rate 0 = no limit. See rate_limiter.h.
  double publish_rate_per_user = 100;
  double publish_burst_per_user = 200;
};

struct HubStats {
  int64_t connections = 0;
  int64_t rooms = 0;
  int64_t subscribers = 0;
  int64_t queue_depth = 0;  // events queued, all subscribers
};

class RealtimeHub final : public Broker::Sink {
 public:
  using Done = Broker::Done;

  // REQUIRES: broker, clock and metrics (may be null) outlive the hub.
  RealtimeHub(HubOptions options, Broker* broker, const Clock* clock,
              RealtimeMetrics* metrics = nullptr);
  ~RealtimeHub() override;

  // Starts the broker towards this hub.
  void Start();

  // A new connection (or, for a known one with the same user, more rooms).
  // ALREADY_EXISTS if known under another user; RESOURCE_EXHAUSTED past the
  // limits.
  void Register(ConnPresence conn, Done done);
  // Answers whether it was registered.
  void Unregister(std::string_view conn, Broker::Reply<bool> done);
  // NOT_FOUND for an unknown connection.
  void Join(std::string_view conn, std::vector<std::string> rooms, Done done);
  void Leave(std::string_view conn, std::vector<std::string> rooms, Done done);

  // A cluster-wide operation (event.control set, with the target and
  // `except` of an event) goes the same way: each instance it reaches
  // applies it to its local targets when it arrives (ApplyControl).
  // Stamps origin and time, normalises `except` (empty instance = this one)
  // and `to_instance`, and hands the event to the broker. With a
  // `sender_user`, RESOURCE_EXHAUSTED naming STATESIDE_PUBLISH_RATE_PER_USER
  // when that user's bucket on this instance is empty. A transient event
  // for a target other than a user is INTERNAL (a bug in the caller).
  void Publish(Event event, Broker::Reply<PublishResult> done) {
    Publish(std::move(event), "", std::move(done));
  }
  void Publish(Event event, std::string_view sender_user, Broker::Reply<PublishResult> done);

  // A new Subscribe stream's queue; `wake` as in SubscriberQueue. A stream
  // that resumes gets a `holding` queue and calls Resume.
  std::shared_ptr<SubscriberQueue> AddSubscriber(std::function<void()> wake,
                                                 bool holding = false);
  // Subscribe's resume: for each point, the stream's logged events after
  // `after_sequence`, oldest first, each queued with the local connections
  // it is for now (its `except` honoured; an event for none is skipped),
  // preceded by a kResumeIncomplete notice where the log no longer reaches
  // back (or the stream's sequence restarted); then the live events `queue`
  // held meanwhile follow, minus those at or below what the replay covered
  // per resumed stream (the queue's covers, which keep a replayed event
  // arriving live out for SubscriberQueue::kCoverTtl too). Done: OK, or the broker's error (the
  // queue is released either way).
  // REQUIRES: `queue` came from AddSubscriber(..., holding = true).
  struct ResumePoint {
    StreamRef stream;
    uint64_t after_sequence = 0;
  };
  void Resume(std::shared_ptr<SubscriberQueue> queue, std::vector<ResumePoint> points,
              Done done);
  void RemoveSubscriber(const std::shared_ptr<SubscriberQueue>& queue);

  // Heartbeat (blocking): keeps presence alive, sweeps dead instances.
  absl::Status Refresh();
  // The drain (blocking): removes this instance's presence from the
  // cluster and closes every subscriber queue (streams end once drained).
  absl::Status Shutdown();

  HubStats stats() const;
  const std::string& instance_id() const { return options_.instance_id; }

  // Broker::Sink.
  void OnEvent(Event event) override;
  void OnGap(absl::Time from, absl::Time to) override;
  void OnPresenceLost() override;

 private:
  struct Connection {
    std::string user;
    absl::flat_hash_set<std::string> rooms;
  };

  // Adds `conn` to `rooms` locally; appends the rooms it newly joined and
  // watches the rooms that had no local member.
  void JoinLocked(const std::string& conn, Connection& state,
                  const std::vector<std::string>& rooms, std::vector<std::string>* added,
                  const std::function<Done()>& next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LeaveLocked(const std::string& conn, Connection& state,
                   const std::vector<std::string>& rooms, std::vector<std::string>* removed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> TargetsLocked(const Event& event) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // A cluster-wide operation reached this instance: `conns` (its local
  // targets) join or leave its rooms, or are unregistered (then the
  // subscribers are told, so the app closes them).
  void ApplyControl(const Event& event, const std::vector<std::string>& conns);
  // Queues `event` for `conns` to every subscriber.
  void Deliver(Event event, std::vector<std::string> conns);
  std::vector<ConnPresence> SnapshotLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  struct Replay;
  // Replays the next page of the current resume point, or finishes.
  void ReplayNext(std::shared_ptr<Replay> replay);
  // Queues one page; false when the point is done.
  bool ReplayPage(Replay& replay, HistoryPage page);
  // Ends the replay's holding; the held events it leaves out count as stale.
  void ReleaseReplay(Replay& replay);
  // RESOURCE_EXHAUSTED for a Register or Join past max_rooms_per_connection
  // (counted in the metrics).
  absl::Status RoomCapError() const;

  const HubOptions options_;
  Broker* const broker_;
  const Clock* const clock_;
  RealtimeMetrics* const metrics_;
  UserRateLimiter publish_limiter_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Connection> connections_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> rooms_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> users_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<SubscriberQueue>> subscribers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside::realtime

#endif  // STATESIDE_SIDECAR_REALTIME_HUB_H_

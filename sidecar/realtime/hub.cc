#include "sidecar/realtime/hub.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace stateside::realtime {
namespace {

// Completes `done` once every callback handed out by Next() has run and
// Seal() was called, with the first error seen (or OK).
class Barrier {
 public:
  explicit Barrier(Broker::Done done) : state_(std::make_shared<State>()) {
    state_->done = std::move(done);
  }

  Broker::Done Next() {
    {
      absl::MutexLock lock(&state_->mu);
      ++state_->pending;
    }
    return [state = state_](absl::Status status) { Finish(*state, std::move(status)); };
  }
  void Seal() { Finish(*state_, absl::OkStatus()); }
  void Fail(absl::Status status) { Finish(*state_, std::move(status)); }

 private:
  struct State {
    absl::Mutex mu;
    int pending = 1;  // the seal
    absl::Status status;
    Broker::Done done;
  };

  static void Finish(State& state, absl::Status status) {
    Broker::Done done;
    absl::Status result;
    {
      absl::MutexLock lock(&state.mu);
      if (state.status.ok() && !status.ok()) state.status = std::move(status);
      if (--state.pending > 0) return;
      done = std::move(state.done);
      result = state.status;
    }
    std::move(done)(std::move(result));
  }

  std::shared_ptr<State> state_;
};

absl::Status Draining() {
  return absl::UnavailableError("realtime: the sidecar is shutting down");
}

}  // namespace

RealtimeHub::RealtimeHub(HubOptions options, Broker* broker, const Clock* clock,
                         RealtimeMetrics* metrics)
    : options_(std::move(options)),
      broker_(broker),
      clock_(clock),
      metrics_(metrics),
      publish_limiter_(options_.publish_rate_per_user,
                       std::max(1.0, options_.publish_burst_per_user)) {}

RealtimeHub::~RealtimeHub() { broker_->Stop(); }

void RealtimeHub::Start() { broker_->Start(this); }

void RealtimeHub::Register(ConnPresence conn, Done done) {
  Barrier barrier(std::move(done));
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return barrier.Fail(Draining());
    auto it = connections_.find(conn.conn);
    if (it != connections_.end() && it->second.user != conn.user) {
      return barrier.Fail(absl::AlreadyExistsError(
          absl::StrCat("conn_id: '", conn.conn, "' is registered with another user")));
    }
    if (it == connections_.end()) {
      if (connections_.size() >= options_.max_connections) {
        return barrier.Fail(absl::ResourceExhaustedError(absl::StrCat(
            "realtime: at most ", options_.max_connections, " connections per instance")));
      }
      if (conn.rooms.size() > options_.max_rooms_per_connection) {
        return barrier.Fail(RoomCapError());
      }
      it = connections_.emplace(conn.conn, Connection{conn.user, {}}).first;
      if (!conn.user.empty()) users_[conn.user].insert(conn.conn);
    } else {
      size_t fresh = 0;
      for (const std::string& room : conn.rooms) fresh += it->second.rooms.contains(room) ? 0 : 1;
      if (it->second.rooms.size() + fresh > options_.max_rooms_per_connection) {
        return barrier.Fail(RoomCapError());
      }
    }
    // On every Register, not only the first: a retry after UNAVAILABLE must
    // not answer before the subscription is confirmed (the broker's interest
    // is a set; a confirmed channel answers at once).
    broker_->WatchBroadcast(true, barrier.Next());
    std::vector<std::string> added;
    JoinLocked(conn.conn, it->second, conn.rooms, &added, [&] { return barrier.Next(); });
    // Every requested room, not only the new ones: a retried Register
    // restores presence the first attempt may not have written.
    broker_->AddPresence(conn, barrier.Next());
  }
  barrier.Seal();
}

void RealtimeHub::Unregister(std::string_view conn_id, Broker::Reply<bool> done) {
  const std::string conn(conn_id);
  ConnPresence gone{conn, "", {}};
  bool found = false;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = connections_.find(conn); it != connections_.end()) {
      found = true;
      gone.user = it->second.user;
      gone.rooms.assign(it->second.rooms.begin(), it->second.rooms.end());
      std::vector<std::string> removed;
      LeaveLocked(conn, it->second, gone.rooms, &removed);
      if (!gone.user.empty()) {
        auto user = users_.find(gone.user);
        if (user != users_.end()) {
          user->second.erase(conn);
          if (user->second.empty()) users_.erase(user);
        }
      }
      connections_.erase(it);
      if (connections_.empty()) broker_->WatchBroadcast(false, [](absl::Status) {});
    }
    if (!shut_down_) {
      // Even for an unknown connection: a retry after a lost reply must not
      // leave presence behind. Under the lock, so presence writes reach the
      // broker in the order the hub applied them (see OnPresenceLost).
      broker_->RemovePresence(gone, /*all=*/true,
                              [found, done = std::move(done)](absl::Status status) mutable {
                                if (!status.ok()) return std::move(done)(std::move(status));
                                std::move(done)(found);
                              });
      return;
    }
  }
  // After Shutdown the instance's presence is gone already: writing would
  // only list it again.
  std::move(done)(found);
}

absl::Status RealtimeHub::RoomCapError() const {
  if (metrics_ != nullptr) metrics_->CapRefused("rooms_per_connection");
  return absl::ResourceExhaustedError(
      absl::StrCat("rooms: at most ", options_.max_rooms_per_connection,
                   " per connection (STATESIDE_MAX_ROOMS_PER_CONNECTION)"));
}

void RealtimeHub::Join(std::string_view conn_id, std::vector<std::string> rooms, Done done) {
  const std::string conn(conn_id);
  Barrier barrier(std::move(done));
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return barrier.Fail(Draining());
    auto it = connections_.find(conn);
    if (it == connections_.end()) {
      return barrier.Fail(
          absl::NotFoundError(absl::StrCat("conn_id: '", conn, "' is not registered")));
    }
    size_t fresh = 0;
    for (const std::string& room : rooms) fresh += it->second.rooms.contains(room) ? 0 : 1;
    if (it->second.rooms.size() + fresh > options_.max_rooms_per_connection) {
      return barrier.Fail(RoomCapError());
    }
    std::vector<std::string> added;
    JoinLocked(it->first, it->second, rooms, &added, [&] { return barrier.Next(); });
    broker_->AddPresence(ConnPresence{it->first, it->second.user, std::move(rooms)},
                         barrier.Next());
  }
  barrier.Seal();
}

void RealtimeHub::Leave(std::string_view conn_id, std::vector<std::string> rooms, Done done) {
  const std::string conn(conn_id);
  bool found = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = connections_.find(conn);
    if (it != connections_.end()) {
      std::vector<std::string> removed;
      LeaveLocked(conn, it->second, rooms, &removed);
      if (!shut_down_) {
        // Under the lock: presence writes in the order the hub applied them.
        broker_->RemovePresence(ConnPresence{conn, it->second.user, std::move(rooms)},
                                /*all=*/false, std::move(done));
        return;
      }
      found = true;  // after Shutdown the presence is gone already
    }
  }
  if (found) return std::move(done)(absl::OkStatus());
  std::move(done)(
      absl::NotFoundError(absl::StrCat("conn_id: '", conn, "' is not registered")));
}

void RealtimeHub::JoinLocked(const std::string& conn, Connection& state,
                             const std::vector<std::string>& rooms,
                             std::vector<std::string>* added,
                             const std::function<Done()>& next) {
  for (const std::string& room : rooms) {
    if (state.rooms.insert(room).second) {
      added->push_back(room);
      rooms_[room].insert(conn);
    }
    // This instance needs the room's events from now on. Every requested
    // room, not only new ones, so that a retried Join waits for a
    // subscription still pending after a reconnect. Under the lock, so
    // watches and unwatches of one room reach the broker in the order the
    // memberships changed.
    broker_->WatchRoom(room, next());
  }
}

void RealtimeHub::LeaveLocked(const std::string& conn, Connection& state,
                              const std::vector<std::string>& rooms,
                              std::vector<std::string>* removed) {
  for (const std::string& room : rooms) {
    if (state.rooms.erase(room) == 0) continue;
    removed->push_back(room);
    auto members = rooms_.find(room);
    if (members == rooms_.end()) continue;
    members->second.erase(conn);
    if (members->second.empty()) {
      rooms_.erase(members);
      broker_->UnwatchRoom(room);
    }
  }
}

void RealtimeHub::Publish(Event event, std::string_view sender_user,
                          Broker::Reply<PublishResult> done) {
  if (event.transient && event.target != TargetKind::kUser) {
    return std::move(done)(absl::InternalError("a transient event is for a user only"));
  }
  event.origin = options_.instance_id;
  event.published_at = clock_->Now();
  if (!sender_user.empty() && !publish_limiter_.Allow(sender_user, event.published_at)) {
    if (metrics_ != nullptr) metrics_->CapRefused("publish_rate_per_user");
    return std::move(done)(absl::ResourceExhaustedError(absl::StrCat(
        "sender_user_id: more than ", options_.publish_rate_per_user,
        " events per second from this user on this instance (STATESIDE_PUBLISH_RATE_PER_USER, "
        "burst STATESIDE_PUBLISH_BURST_PER_USER)")));
  }
  if (event.target == TargetKind::kConnection && event.to_instance.empty()) {
    event.to_instance = options_.instance_id;
  }
  for (ConnRef& ref : event.except) {
    if (ref.instance.empty()) ref.instance = options_.instance_id;
  }
  const TargetKind target = event.target;
  broker_->Publish(std::move(event), [this, target, done = std::move(done)](
                                         absl::StatusOr<PublishResult> result) mutable {
    if (result.ok() && metrics_ != nullptr) metrics_->Published(target);
    std::move(done)(std::move(result));
  });
}

std::shared_ptr<SubscriberQueue> RealtimeHub::AddSubscriber(std::function<void()> wake,
                                                             bool holding) {
  auto queue = std::make_shared<SubscriberQueue>(
      std::max<size_t>(1, options_.queue_events), options_.queue_bytes, std::move(wake), holding);
  absl::MutexLock lock(&mu_);
  if (shut_down_) {
    queue->Close();
  } else {
    subscribers_.push_back(queue);
  }
  return queue;
}

// The state of one Resume, carried from page to page.
struct RealtimeHub::Replay {
  std::shared_ptr<SubscriberQueue> queue;
  std::vector<ResumePoint> points;
  size_t index = 0;        // the point being replayed
  uint64_t after = 0;      // the next page starts after this sequence
  bool first_page = true;  // of the current point
  uint64_t covered = 0;    // the highest sequence replayed for it
  Done done;
};

void RealtimeHub::Resume(std::shared_ptr<SubscriberQueue> queue, std::vector<ResumePoint> points,
                         Done done) {
  auto replay = std::make_shared<Replay>();
  replay->queue = std::move(queue);
  replay->points = std::move(points);
  replay->done = std::move(done);
  if (!replay->points.empty()) replay->after = replay->points[0].after_sequence;
  ReplayNext(std::move(replay));
}

void RealtimeHub::ReplayNext(std::shared_ptr<Replay> replay) {
  if (replay->index == replay->points.size() || replay->queue->closed()) {
    ReleaseReplay(*replay);
    return std::move(replay->done)(absl::OkStatus());
  }
  // Pages as large as History serves; a log holds about one or two.
  constexpr int kPage = 1000;
  broker_->StreamHistory(
      replay->points[replay->index].stream, replay->after, kPage,
      [this, replay](absl::StatusOr<HistoryPage> page) mutable {
        if (!page.ok()) {
          ReleaseReplay(*replay);
          return std::move(replay->done)(page.status());
        }
        if (!ReplayPage(*replay, *std::move(page))) {
          const ResumePoint& point = replay->points[replay->index];
          replay->queue->Cover(StreamKey(point.stream), replay->covered, clock_->Now());
          if (++replay->index < replay->points.size()) {
            replay->after = replay->points[replay->index].after_sequence;
            replay->first_page = true;
            replay->covered = 0;
          }
        }
        ReplayNext(std::move(replay));
      });
}

void RealtimeHub::ReleaseReplay(Replay& replay) {
  const uint64_t covered = replay.queue->Release(clock_->Now());
  if (covered > 0 && metrics_ != nullptr) metrics_->Dropped("stale", covered);
}

bool RealtimeHub::ReplayPage(Replay& replay, HistoryPage page) {
  const ResumePoint& point = replay.points[replay.index];
  if (replay.first_page) {
    replay.first_page = false;
    replay.covered = std::min(replay.after, page.last_sequence);
    GapNotice gap{GapNotice::Reason::kResumeIncomplete};
    gap.stream = point.stream;
    gap.after_sequence = point.after_sequence;
    if (page.last_sequence > 0 && replay.after > page.last_sequence) {
      // The stream is behind the point: its sequence restarted (idle past
      // its counter's TTL, or a Redis that lost it). Everything it holds is
      // new to the app.
      gap.first_sequence = page.first_sequence;
      replay.queue->PushGap(gap);
      replay.after = 0;  // read again from the start (no second notice)
      replay.covered = 0;
      return true;
    }
    if (!page.complete) {
      gap.first_sequence = page.events.empty() ? 0 : page.events.front().sequence;
      replay.queue->PushGap(gap);
    }
  }
  const absl::Time now = clock_->Now();
  for (Event& event : page.events) {
    replay.after = std::max(replay.after, event.sequence);
    replay.covered = std::max(replay.covered, event.sequence);
    // Logged by an older version: a close is for the sockets of its time.
    if (event.target == TargetKind::kUser && event.name == kCloseEventName) continue;
    auto delivery = std::make_shared<Delivery>();
    {
      absl::ReaderMutexLock lock(&mu_);
      delivery->conn_ids = TargetsLocked(event);
    }
    if (delivery->conn_ids.empty()) continue;
    delivery->event = std::move(event);
    if (!replay.queue->PushReplay(std::move(delivery), now) && !replay.queue->closed() &&
        metrics_ != nullptr) {
      metrics_->Dropped("overflow", 1);
    }
  }
  return page.more;
}

void RealtimeHub::RemoveSubscriber(const std::shared_ptr<SubscriberQueue>& queue) {
  queue->Close();
  absl::MutexLock lock(&mu_);
  std::erase(subscribers_, queue);
}

absl::Status RealtimeHub::Refresh() { return broker_->Refresh(); }

absl::Status RealtimeHub::Shutdown() {
  std::vector<std::shared_ptr<SubscriberQueue>> subscribers;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    subscribers.swap(subscribers_);
  }
  for (const auto& queue : subscribers) queue->Close();
  return broker_->RemoveInstance();
}

HubStats RealtimeHub::stats() const {
  absl::ReaderMutexLock lock(&mu_);
  HubStats stats;
  stats.connections = static_cast<int64_t>(connections_.size());
  stats.rooms = static_cast<int64_t>(rooms_.size());
  stats.subscribers = static_cast<int64_t>(subscribers_.size());
  for (const auto& queue : subscribers_) stats.queue_depth += static_cast<int64_t>(queue->depth());
  return stats;
}

std::vector<std::string> RealtimeHub::TargetsLocked(const Event& event) const {
  std::vector<std::string> targets;
  const auto excluded = [&](const std::string& conn) {
    return std::any_of(event.except.begin(), event.except.end(), [&](const ConnRef& ref) {
      return ref.conn == conn && ref.instance == options_.instance_id;
    });
  };
  const auto add_all = [&](const absl::flat_hash_set<std::string>& conns) {
    for (const std::string& conn : conns) {
      if (!excluded(conn)) targets.push_back(conn);
    }
  };
  switch (event.target) {
    case TargetKind::kRoom:
      if (auto it = rooms_.find(event.to); it != rooms_.end()) add_all(it->second);
      break;
    case TargetKind::kUser:
      if (auto it = users_.find(event.to); it != users_.end()) add_all(it->second);
      break;
    case TargetKind::kConnection:
      if (event.to_instance == options_.instance_id && connections_.contains(event.to) &&
          !excluded(event.to)) {
        targets.push_back(event.to);
      }
      break;
    case TargetKind::kAll:
      for (const auto& [conn, state] : connections_) {
        if (!excluded(conn)) targets.push_back(conn);
      }
      break;
  }
  // Stable order: tests and apps compare lists.
  std::sort(targets.begin(), targets.end());
  return targets;
}

void RealtimeHub::OnEvent(Event event) {
  if (metrics_ != nullptr) metrics_->Received();
  std::vector<std::string> conns;
  {
    absl::ReaderMutexLock lock(&mu_);
    conns = TargetsLocked(event);
  }
  if (event.control != Control::kNone) {
    ApplyControl(event, conns);
    // A disconnect reaches the app too: it closes the sockets.
    if (event.control != Control::kDisconnect || conns.empty()) return;
  }
  Deliver(std::move(event), std::move(conns));
}

void RealtimeHub::ApplyControl(const Event& event, const std::vector<std::string>& conns) {
  for (const std::string& conn : conns) {
    const auto report = [conn, control = event.control](absl::Status status) {
      // The connection may have gone meanwhile; anything else is logged
      // (presence is written again by the next resync).
      if (status.ok() || absl::IsNotFound(status)) return;
      spdlog::warn("realtime: cluster-wide {} of connection {}: {}",
                   control == Control::kJoin ? "join" : "leave", conn, status.ToString());
    };
    switch (event.control) {
      case Control::kJoin:
        Join(conn, event.rooms, report);
        break;
      case Control::kLeave:
        Leave(conn, event.rooms, report);
        break;
      case Control::kDisconnect:
        Unregister(conn, [](absl::StatusOr<bool>) {});
        break;
      case Control::kNone:
        break;
    }
  }
}

void RealtimeHub::Deliver(Event event, std::vector<std::string> conns) {
  auto delivery = std::make_shared<Delivery>();
  delivery->conn_ids = std::move(conns);
  std::vector<std::shared_ptr<SubscriberQueue>> subscribers;
  {
    absl::ReaderMutexLock lock(&mu_);
    subscribers = subscribers_;
  }
  if (delivery->conn_ids.empty()) {
    if (metrics_ != nullptr) metrics_->Dropped("no_target", 1);
    return;
  }
  if (subscribers.empty()) {
    if (metrics_ != nullptr) metrics_->Dropped("no_subscriber", 1);
    return;
  }
  delivery->event = std::move(event);
  const absl::Time now = clock_->Now();
  std::shared_ptr<const Delivery> shared = std::move(delivery);
  uint64_t overflow = 0, stale = 0;
  for (const auto& queue : subscribers) {
    bool skipped = false;
    // A closed queue belongs to a stream that is ending: not an overflow.
    if (!queue->Push(shared, now, &skipped) && !queue->closed()) ++overflow;
    stale += skipped ? 1 : 0;
  }
  if (metrics_ != nullptr) {
    if (overflow > 0) metrics_->Dropped("overflow", overflow);
    if (stale > 0) metrics_->Dropped("stale", stale);
  }
}

void RealtimeHub::OnGap(absl::Time from, absl::Time to) {
  std::vector<std::shared_ptr<SubscriberQueue>> subscribers;
  bool had_connections;
  {
    absl::ReaderMutexLock lock(&mu_);
    subscribers = subscribers_;
    had_connections = !connections_.empty();
  }
  // The first subscription after start reports a window too; with nobody
  // connected and nobody reading, nothing was lost.
  if (!had_connections && subscribers.empty()) return;
  spdlog::warn("realtime: events may have been lost between {} and {} (Redis subscription down)",
               absl::FormatTime(from), absl::FormatTime(to));
  for (const auto& queue : subscribers) {
    queue->PushGap(GapNotice{GapNotice::Reason::kRedisDisconnected, 0, from, to});
  }
  if (metrics_ != nullptr) metrics_->Gap("redis");
}

void RealtimeHub::OnPresenceLost() {
  // Snapshot and hand-over under one lock: a Register or Unregister cannot
  // slip its presence write in between (the broker applies writes in call
  // order), so the rewrite never drops a newer connection or revives a gone
  // one.
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  std::vector<ConnPresence> snapshot = SnapshotLocked();
  const size_t count = snapshot.size();
  broker_->SyncPresence(std::move(snapshot), [count](absl::Status status) {
    if (status.ok()) {
      if (count > 0) spdlog::info("realtime: presence of {} connections written again", count);
    } else {
      spdlog::warn("realtime: presence not written again: {}", status.ToString());
    }
  });
}

std::vector<ConnPresence> RealtimeHub::SnapshotLocked() const {
  std::vector<ConnPresence> snapshot;
  snapshot.reserve(connections_.size());
  for (const auto& [conn, state] : connections_) {
    snapshot.push_back(
        ConnPresence{conn, state.user, {state.rooms.begin(), state.rooms.end()}});
  }
  return snapshot;
}

}  // namespace stateside::realtime

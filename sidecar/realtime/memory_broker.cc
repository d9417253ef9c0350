#include "sidecar/realtime/memory_broker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace stateside::realtime {
namespace {

constexpr std::string_view kTokenPrefix = "m:";

// What a logged event counts against history_bytes: what the app gave.
size_t LoggedBytes(const Event& event) { return event.name.size() + event.payload.size(); }

std::string MemberKey(const ConnRef& ref) { return absl::StrCat(ref.instance, "/", ref.conn); }

}  // namespace

absl::StatusOr<int> PageSize(int requested, std::string_view field) {
  if (requested == 0) return 100;
  if (requested < 1 || requested > 1000) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": must be 1..1000 (0 = 100)"));
  }
  return requested;
}

MemoryCluster::MemoryCluster(const Clock* clock, MemoryClusterOptions options)
    : clock_(clock), options_(options), dispatcher_([this] { DispatchLoop(); }) {}

MemoryCluster::~MemoryCluster() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  dispatcher_.join();
}

std::unique_ptr<MemoryBroker> MemoryCluster::NewBroker(std::string instance_id) {
  return std::unique_ptr<MemoryBroker>(new MemoryBroker(this, std::move(instance_id)));
}

uint64_t MemoryCluster::dropped() const {
  absl::MutexLock lock(&queue_mu_);
  return dropped_;
}

void MemoryCluster::Enqueue(std::vector<std::pair<std::string, Event>> batch) {
  absl::MutexLock lock(&queue_mu_);
  for (auto& item : batch) {
    if (queue_.size() >= kMaxQueued) {
      ++dropped_;
      continue;
    }
    queue_.push_back(std::move(item));
  }
}

void MemoryCluster::DispatchLoop() {
  for (;;) {
    std::pair<std::string, Event> item;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](MemoryCluster* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping
      item = std::move(queue_.front());
      queue_.pop_front();
      dispatching_ = item.first;
    }
    Broker::Sink* sink = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto it = endpoints_.find(item.first);
      if (it != endpoints_.end()) sink = it->second.sink;
    }
    // A stopping broker waits (in Stop) until `dispatching_` is cleared, so
    // the sink is alive for this call.
    if (sink != nullptr) sink->OnEvent(std::move(item.second));
    absl::MutexLock lock(&queue_mu_);
    dispatching_.clear();
  }
}

PublishResult MemoryCluster::Route(Event event, std::vector<std::pair<std::string, Event>>* out) {
  PublishResult result;
  std::vector<std::string> to;
  // Control events (cluster-wide operations) and transient ones take no
  // place in the stream.
  if (event.control == Control::kNone && !event.transient) {
    StreamLog& log = logs_[StreamKey(StreamOf(event))];
    event.sequence = ++log.sequence;
    log.last_publish = clock_->Now();
    log.bytes += LoggedBytes(event);
    log.events.push_back(event);
    while (log.events.size() > 1 &&
           (log.events.size() > options_.history_size || log.bytes > options_.history_bytes)) {
      log.bytes -= LoggedBytes(log.events.front());
      log.events.pop_front();
    }
    TrimLogsLocked();
    result.sequence = event.sequence;
  }
  switch (event.target) {
    case TargetKind::kRoom:
      for (const auto& [id, endpoint] : endpoints_) {
        if (endpoint.sink != nullptr && endpoint.rooms.contains(event.to)) to.push_back(id);
      }
      break;
    case TargetKind::kUser:
      for (const auto& [id, endpoint] : endpoints_) {
        if (endpoint.sink == nullptr) continue;
        if (std::any_of(endpoint.conns.begin(), endpoint.conns.end(),
                        [&](const auto& conn) { return conn.second.first == event.to; })) {
          to.push_back(id);
        }
      }
      break;
    case TargetKind::kConnection:
      if (auto it = endpoints_.find(event.to_instance);
          it != endpoints_.end() && it->second.sink != nullptr) {
        to.push_back(it->first);
      }
      break;
    case TargetKind::kAll:
      for (const auto& [id, endpoint] : endpoints_) {
        if (endpoint.sink != nullptr && endpoint.broadcast) to.push_back(id);
      }
      break;
  }
  result.instances = static_cast<int64_t>(to.size());
  for (std::string& id : to) out->emplace_back(std::move(id), event);
  return result;
}

void MemoryCluster::TrimLogsLocked() {
  while (logs_.size() > options_.max_logged_rooms) {
    auto oldest = std::min_element(logs_.begin(), logs_.end(), [](const auto& a, const auto& b) {
      return a.second.last_publish < b.second.last_publish;
    });
    logs_.erase(oldest);
  }
}

MemoryBroker::~MemoryBroker() { Stop(); }

void MemoryBroker::Start(Sink* sink) {
  absl::MutexLock lock(&cluster_->mu_);
  cluster_->endpoints_[id_].sink = sink;
}

void MemoryBroker::Stop() {
  {
    absl::MutexLock lock(&cluster_->mu_);
    cluster_->endpoints_.erase(id_);
  }
  // The dispatcher may be inside this broker's sink: wait until it is out.
  absl::MutexLock lock(&cluster_->queue_mu_);
  struct Arg {
    MemoryCluster* cluster;
    const std::string* id;
  } arg{cluster_, &id_};
  cluster_->queue_mu_.Await(absl::Condition(
      +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS { return a->cluster->dispatching_ != *a->id; },
      &arg));
}

void MemoryBroker::WatchRoom(std::string_view room, Done done) {
  {
    absl::MutexLock lock(&cluster_->mu_);
    cluster_->endpoints_[id_].rooms.insert(std::string(room));
  }
  std::move(done)(absl::OkStatus());
}

void MemoryBroker::UnwatchRoom(std::string_view room) {
  absl::MutexLock lock(&cluster_->mu_);
  cluster_->endpoints_[id_].rooms.erase(std::string(room));
}

void MemoryBroker::WatchBroadcast(bool on, Done done) {
  {
    absl::MutexLock lock(&cluster_->mu_);
    cluster_->endpoints_[id_].broadcast = on;
  }
  std::move(done)(absl::OkStatus());
}

void MemoryBroker::AddPresence(const ConnPresence& conn, Done done) {
  {
    absl::MutexLock lock(&cluster_->mu_);
    auto& entry = cluster_->endpoints_[id_].conns[conn.conn];
    entry.first = conn.user;
    entry.second.insert(conn.rooms.begin(), conn.rooms.end());
  }
  std::move(done)(absl::OkStatus());
}

void MemoryBroker::RemovePresence(const ConnPresence& conn, bool all, Done done) {
  {
    absl::MutexLock lock(&cluster_->mu_);
    auto& conns = cluster_->endpoints_[id_].conns;
    if (all) {
      conns.erase(conn.conn);
    } else if (auto it = conns.find(conn.conn); it != conns.end()) {
      for (const std::string& room : conn.rooms) it->second.second.erase(room);
    }
  }
  std::move(done)(absl::OkStatus());
}

void MemoryBroker::SyncPresence(std::vector<ConnPresence> conns, Done done) {
  {
    absl::MutexLock lock(&cluster_->mu_);
    auto& entries = cluster_->endpoints_[id_].conns;
    entries.clear();
    for (ConnPresence& conn : conns) {
      entries[conn.conn] = {conn.user, {conn.rooms.begin(), conn.rooms.end()}};
    }
  }
  std::move(done)(absl::OkStatus());
}

absl::Status MemoryBroker::RemoveInstance() {
  absl::MutexLock lock(&cluster_->mu_);
  if (auto it = cluster_->endpoints_.find(id_); it != cluster_->endpoints_.end()) {
    it->second.conns.clear();
  }
  return absl::OkStatus();
}

void MemoryBroker::Publish(Event event, Reply<PublishResult> done) {
  std::vector<std::pair<std::string, Event>> batch;
  PublishResult result;
  {
    absl::MutexLock lock(&cluster_->mu_);
    result = cluster_->Route(std::move(event), &batch);
    // Enqueued under the routing lock, so the dispatch order is the
    // sequence order.
    cluster_->Enqueue(std::move(batch));
  }
  std::move(done)(result);
}

void MemoryBroker::RoomMembers(std::string_view room, int page_size, std::string_view page_token,
                               Reply<MembersPage> done) {
  absl::StatusOr<int> size = PageSize(page_size, "page_size");
  if (!size.ok()) return std::move(done)(size.status());
  std::string after;
  if (!page_token.empty()) {
    if (!page_token.starts_with(kTokenPrefix) || page_token.size() == kTokenPrefix.size()) {
      return std::move(done)(absl::InvalidArgumentError("page_token: not a token of this API"));
    }
    after = std::string(page_token.substr(kTokenPrefix.size()));
  }
  std::vector<ConnRef> members;
  {
    absl::MutexLock lock(&cluster_->mu_);
    for (const auto& [id, endpoint] : cluster_->endpoints_) {
      if (endpoint.sink == nullptr) continue;
      for (const auto& [conn, entry] : endpoint.conns) {
        if (entry.second.contains(std::string(room))) members.push_back(ConnRef{id, conn});
      }
    }
  }
  std::sort(members.begin(), members.end(), [](const ConnRef& a, const ConnRef& b) {
    return MemberKey(a) < MemberKey(b);
  });
  MembersPage page;
  page.count = static_cast<int64_t>(members.size());
  for (ConnRef& member : members) {
    if (!after.empty() && MemberKey(member) <= after) continue;
    if (static_cast<int>(page.members.size()) == *size) {
      page.next_page_token = std::string(kTokenPrefix) + MemberKey(page.members.back());
      break;
    }
    page.members.push_back(std::move(member));
  }
  std::move(done)(std::move(page));
}

void MemoryBroker::UserConnections(std::string_view user, Reply<std::vector<ConnRef>> done) {
  std::vector<ConnRef> conns;
  {
    absl::MutexLock lock(&cluster_->mu_);
    for (const auto& [id, endpoint] : cluster_->endpoints_) {
      if (endpoint.sink == nullptr) continue;
      for (const auto& [conn, entry] : endpoint.conns) {
        if (entry.first == user) conns.push_back(ConnRef{id, conn});
      }
    }
  }
  std::sort(conns.begin(), conns.end(), [](const ConnRef& a, const ConnRef& b) {
    return MemberKey(a) < MemberKey(b);
  });
  std::move(done)(std::move(conns));
}

void MemoryBroker::StreamHistory(const StreamRef& stream, uint64_t after_sequence, int limit,
                                 Reply<HistoryPage> done) {
  absl::StatusOr<int> size = PageSize(limit, "limit");
  if (!size.ok()) return std::move(done)(size.status());
  HistoryPage page;
  {
    absl::MutexLock lock(&cluster_->mu_);
    auto it = cluster_->logs_.find(StreamKey(stream));
    if (it != cluster_->logs_.end()) {
      const auto& log = it->second;
      page.last_sequence = log.sequence;
      page.first_sequence = log.events.empty() ? 0 : log.events.front().sequence;
      for (const Event& event : log.events) {
        if (event.sequence <= after_sequence) continue;
        if (static_cast<int>(page.events.size()) == *size) {
          page.more = true;
          break;
        }
        page.events.push_back(event);
      }
    }
  }
  page.complete = page.last_sequence <= after_sequence ||
                  (page.first_sequence != 0 && page.first_sequence <= after_sequence + 1);
  std::move(done)(std::move(page));
}

int64_t MemoryBroker::channels_held() const {
  absl::MutexLock lock(&cluster_->mu_);
  auto it = cluster_->endpoints_.find(id_);
  if (it == cluster_->endpoints_.end()) return 0;
  return static_cast<int64_t>(it->second.rooms.size()) + (it->second.broadcast ? 1 : 0);
}

}  // namespace stateside::realtime

// RedisClient on Redis Cluster: the slot map (read from CLUSTER SHARDS, or
// CLUSTER SLOTS where SHARDS is unknown), its refreshes, the node pools that
// follow it, and MOVED/ASK redirects. Everything here runs on the I/O thread.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_client_internal.h"
#include "sidecar/redis/resp.h"

namespace stateside::redis {
namespace {

namespace asio = boost::asio;

// A complete map is read again this often (slot migrations that no command
// of ours ran into, new replicas); an incomplete one (a master unreachable,
// a failover under way) much sooner, so a promoted replica is found within
// about this delay of its promotion.
constexpr absl::Duration kRefreshInterval = absl::Seconds(10);
constexpr absl::Duration kIncompleteRefreshInterval = absl::Milliseconds(250);

}  // namespace

RedisClient::NodePool* RedisClient::PoolFor(const std::string& host, int port) {
  const std::string address = ClusterMap::Node{host, port}.address();
  {
    absl::ReaderMutexLock lock(&map_mu_);
    if (auto it = pools_.find(address); it != pools_.end()) return it->second.get();
  }
  auto made = MakePool(host, port);
  if (!made.ok()) return nullptr;  // TLS files were loaded at start; not expected
  NodePool* pool = made->get();
  {
    absl::MutexLock lock(&map_mu_);
    pools_[address] = *std::move(made);
  }
  for (auto& c : pool->connections) c->Start();
  return pool;
}

void RedisClient::FollowRedirect(NodePool* from, std::unique_ptr<Request> request,
                                 const Redirect& to) {
  const std::string host = to.host.empty() ? from->options.host : to.host;
  if (to.ask) {
    asks_.fetch_add(1, std::memory_order_relaxed);
  } else {
    moved_.fetch_add(1, std::memory_order_relaxed);
  }
  if (RedisMetrics* m = metrics()) m->Redirect(to.ask ? "ask" : "moved");
  const absl::Status why = absl::UnavailableError(absl::StrCat(
      "redis: ", to.ask ? "ASK" : "MOVED", " redirect to ", host, ":", to.port,
      request->sends >= kMaxSends ? " after too many sends" : ""));
  if (request->sends >= kMaxSends || request->pinned != nullptr) {
    return request->callback(why);
  }
  // MOVED answered by MOVED back to the node that sent the first, with no
  // other reply between: the nodes disagree for a moment, e.g. a migration's
  // CLUSTER SETSLOT NODE reached the source (which now points to the
  // destination) before the destination (which, still importing, points
  // back). Resending at once would spend every send of the command within
  // that moment; a backoff (the map is read again meanwhile) outlasts it.
  // Any other MOVED (a stale map, a chain of moves) is followed at once.
  const bool ping_pong =
      !to.ask && request->moved_from == ClusterMap::Node{host, to.port}.address();
  request->moved_from = to.ask ? "" : from->address;
  if (ping_pong) return RetryLater(std::move(request), why);
  NodePool* target = PoolFor(host, to.port);
  if (!to.ask && target != nullptr) {
    // The slot moved for good: route it there now, and read the whole map
    // again (a migration rarely moves one slot alone).
    {
      absl::MutexLock lock(&map_mu_);
      NodePool*& owner = slot_master_[to.slot];
      if (owner != nullptr) --owner->slots;
      if (owner == nullptr) ++slots_covered_;
      owner = target;
      ++target->slots;
      if (std::find(masters_.begin(), masters_.end(), target) == masters_.end()) {
        masters_.push_back(target);
      }
    }
    RequestRefresh();
  }
  // ASK: this command only, after ASKING; the map stays as it is.
  request->asking = to.ask;
  Requests again;
  again.push_back(std::move(request));
  Send(target, std::move(again), why);
}

void RedisClient::RequestRefresh() {
  if (!cluster() || closing_.load()) return;
  asio::post(*io_, [this] {
    if (refresh_in_flight_) {
      refresh_again_ = true;
      return;
    }
    StartRefresh();
  });
}

void RedisClient::ScheduleRefresh(absl::Duration after) {
  if (closing_.load()) return;
  refresh_timer_->expires_after(absl::ToChronoNanoseconds(after));
  refresh_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || closing_.load()) return;
    if (refresh_in_flight_) {
      refresh_again_ = true;
      return;
    }
    StartRefresh();
  });
}

void RedisClient::StartRefresh(bool slots_command) {
  if (closing_.load()) return;
  // Ask a ready master first (it knows the map best), else any ready node.
  NodePool* source = nullptr;
  {
    absl::ReaderMutexLock lock(&map_mu_);
    for (NodePool* p : masters_) {
      if (p->ready.load() > 0) {
        source = p;
        break;
      }
    }
    for (auto it = pools_.begin(); source == nullptr && it != pools_.end(); ++it) {
      if (it->second->ready.load() > 0) source = it->second.get();
    }
  }
  // Nothing reachable: the pools reconnect on their own, and the first that
  // becomes ready asks for a refresh.
  if (source == nullptr) return ScheduleRefresh(kIncompleteRefreshInterval);
  Connection::Batch batch;
  AppendCommand({"CLUSTER", slots_command ? "SLOTS" : "SHARDS"}, &batch.bytes);
  batch.callbacks.push_back([this, slots_command](absl::StatusOr<Reply> raw) {
    OnMapReply(std::move(raw), slots_command);
  });
  for (auto& c : source->connections) {
    if (c->Submit(batch).ok()) {
      refresh_in_flight_ = true;
      refresh_again_ = false;
      return;
    }
  }
  ScheduleRefresh(kIncompleteRefreshInterval);
}

void RedisClient::OnMapReply(absl::StatusOr<Reply> raw, bool slots_command) {
  refresh_in_flight_ = false;
  if (closing_.load()) return;
  absl::StatusOr<ClusterMap> map = absl::UnavailableError("no reply");
  if (!raw.ok()) {
    map = raw.status();
  } else if (raw->is_error()) {
    // A server without CLUSTER SHARDS (before 7.0) still has CLUSTER SLOTS.
    if (!slots_command) return StartRefresh(/*slots_command=*/true);
    map = ErrorReplyToStatus(raw->str);
  } else {
    map = slots_command ? ParseClusterSlots(*raw) : ParseClusterShards(*raw, options_.tls.enabled);
  }
  if (!map.ok()) {
    OnConnectionError(absl::UnavailableError(
        absl::StrCat("redis: cannot read the cluster map: ", map.status().message())));
    return ScheduleRefresh(kIncompleteRefreshInterval);
  }
  refreshes_.fetch_add(1, std::memory_order_relaxed);
  if (RedisMetrics* m = metrics()) m->TopologyRefresh();
  ApplyMap(*map);
  if (refresh_again_) {
    refresh_again_ = false;
    return StartRefresh();
  }
  ScheduleRefresh(connected() ? kRefreshInterval : kIncompleteRefreshInterval);
}

void RedisClient::ApplyMap(const ClusterMap& map) {
  // New masters get a pool (started below, outside the lock: a connection's
  // events take the lock); pools of nodes that left are retired.
  std::vector<NodePool*> start, retire;
  {
    absl::MutexLock lock(&map_mu_);
    std::vector<NodePool*> by_node(map.nodes.size(), nullptr);
    for (size_t i = 0; i < map.nodes.size(); ++i) {
      const ClusterMap::Node& node = map.nodes[i];
      if (!node.master || node.slots == 0) continue;
      auto it = pools_.find(node.address());
      if (it == pools_.end()) {
        auto made = MakePool(node.host, node.port);
        if (!made.ok()) continue;
        start.push_back(made->get());
        it = pools_.emplace(node.address(), *std::move(made)).first;
      }
      by_node[i] = it->second.get();
    }
    for (auto& [address, pool] : pools_) pool->slots = 0;
    slots_covered_ = 0;
    for (int s = 0; s < kClusterSlots; ++s) {
      const int owner = map.slot_owner[s];
      NodePool* pool = owner < 0 ? nullptr : by_node[owner];
      slot_master_[s] = pool;
      if (pool != nullptr) {
        ++pool->slots;
        ++slots_covered_;
      }
    }
    masters_.clear();
    for (NodePool* pool : by_node) {
      if (pool != nullptr && std::find(masters_.begin(), masters_.end(), pool) == masters_.end()) {
        masters_.push_back(pool);
      }
    }
    for (auto it = pools_.begin(); it != pools_.end();) {
      if (it->second->slots == 0 && !it->second->seed) {
        retire.push_back(it->second.get());
        retired_.push_back(std::move(it->second));
        pools_.erase(it++);
      } else {
        ++it;
      }
    }
    map_nodes_.clear();
    for (const ClusterMap::Node& node : map.nodes) {
      RedisNodeInfo info;
      info.address = node.address();
      info.role = node.master ? "master" : "replica";
      info.slots = node.slots;
      map_nodes_.push_back(std::move(info));
    }
  }
  for (NodePool* pool : start) {
    for (auto& c : pool->connections) c->Start();
  }
  for (NodePool* pool : retire) {
    for (auto& c : pool->connections) c->Shutdown();
  }
  UpdateConnected();
}

}  // namespace stateside::redis

// ShardedSubscriber: channels routed by slot to one shard connection each,
// the slot map read while a connection is down, and one loss window for all
// of them. See the header for the contract.
#include "sidecar/redis/shard_subscriber.h"

#include <algorithm>
#include <optional>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/status_join.h"

namespace stateside::redis {
namespace {

namespace asio = boost::asio;

std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

}  // namespace

struct ShardedSubscriber::Timer {
  explicit Timer(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
};

// Lets the client's callbacks reach this subscriber only while it exists
// (the client outlives it and may answer a CLUSTER SHARDS afterwards).
struct ShardedSubscriber::Anchor {
  absl::Mutex mu;
  ShardedSubscriber* self ABSL_GUARDED_BY(mu) = nullptr;
};

ShardedSubscriber::ShardedSubscriber(RedisClient* client, RedisSubscriber::Callbacks callbacks)
    : client_(client),
      callbacks_(std::move(callbacks)),
      io_(std::make_unique<asio::io_context>(1)),
      timer_(std::make_unique<Timer>(*io_)),
      anchor_(std::make_shared<Anchor>()) {
  absl::MutexLock lock(&mu_);
  down_since_ = absl::Now();
}

absl::StatusOr<std::unique_ptr<ShardedSubscriber>> ShardedSubscriber::Create(
    RedisClient* client, RedisSubscriber::Callbacks callbacks) {
  if (client == nullptr || client->options().topology != RedisTopology::kCluster) {
    return absl::InvalidArgumentError("redis shard subscriber: a Cluster client is required");
  }
  std::unique_ptr<ShardedSubscriber> s(new ShardedSubscriber(client, std::move(callbacks)));
  {
    absl::MutexLock lock(&s->anchor_->mu);
    s->anchor_->self = s.get();
  }
  asio::post(*s->io_, [self = s.get()] { self->Tick(); });
  s->thread_ = std::thread([io = s->io_.get()] {
    auto guard = asio::make_work_guard(*io);
    io->run();
  });
  return s;
}

ShardedSubscriber::~ShardedSubscriber() {
  {
    absl::MutexLock lock(&anchor_->mu);
    anchor_->self = nullptr;
  }
  asio::post(*io_, [this] {
    {
      absl::MutexLock lock(&mu_);
      closed_ = true;
    }
    timer_->timer.cancel();
    io_->stop();
  });
  thread_.join();
  // The shard connections post to io_ (stopped, not gone) until closed.
  std::vector<Shard> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [address, shard] : shards_) all.push_back(std::move(shard));
    shards_.clear();
    for (Shard& shard : retired_) all.push_back(std::move(shard));
    retired_.clear();
  }
  all.clear();
  timer_.reset();
  io_.reset();
}

// ---- Calls from any thread ----------------------------------------------------

void ShardedSubscriber::Subscribe(std::vector<std::string> channels,
                                  absl::AnyInvocable<void(absl::Status) &&> done) {
  std::vector<Send> sends;
  absl::Status missing;  // a channel whose shard is not known (yet)
  {
    absl::MutexLock lock(&mu_);
    if (closed_) missing = absl::UnavailableError("redis: subscriber closed");
    absl::flat_hash_map<std::string, std::vector<std::string>> by_shard;
    for (std::string& channel : channels) {
      auto [it, added] = wanted_.try_emplace(channel, "");
      if (added && !slot_owner_.empty()) it->second = slot_owner_[KeySlot(channel)];
      auto shard = shards_.find(it->second);
      if (it->second.empty() || shard == shards_.end()) {
        missing = absl::UnavailableError(
            "redis: shard subscriber: the slot's master is not known yet; the channel is "
            "subscribed when it is");
        continue;
      }
      by_shard[it->second].push_back(std::move(channel));
    }
    for (auto& [address, list] : by_shard) sends.push_back({address, shards_[address], std::move(list)});
    // A connection that lost nothing (it held no channel) reports no loss,
    // nor its recovery: a channel it now carries while it is down is a loss
    // from now on, reported restored once that connection is back.
    if (up_ && !closed_ && (!missing.ok() || std::any_of(sends.begin(), sends.end(), [](const Send& send) {
                  return !send.shard->connected();
                }))) {
      up_ = false;
      down_since_ = absl::Now();
      unreported_down_ = down_since_;
      asio::post(*io_, [this] { Reconcile(std::nullopt); });
    }
  }
  if (sends.empty()) {
    if (done) std::move(done)(missing);
    return;
  }
  // One answer once every shard has answered: the first error, else OK.
  std::function<void(absl::Status)> answer = JoinStatuses(sends.size(), std::move(done), missing);
  for (Send& send : sends) send.shard->Subscribe(send.channels, answer);
  DropMoved(sends);
}

void ShardedSubscriber::Unsubscribe(std::vector<std::string> channels) {
  std::vector<std::pair<Shard, std::vector<std::string>>> sends;
  {
    absl::MutexLock lock(&mu_);
    absl::flat_hash_map<std::string, std::vector<std::string>> by_shard;
    for (std::string& channel : channels) {
      auto it = wanted_.find(channel);
      if (it == wanted_.end()) continue;
      if (shards_.contains(it->second)) by_shard[it->second].push_back(std::move(channel));
      wanted_.erase(it);
    }
    for (auto& [address, list] : by_shard) sends.emplace_back(shards_[address], std::move(list));
  }
  for (auto& [shard, list] : sends) shard->Unsubscribe(std::move(list));
}

bool ShardedSubscriber::connected() const {
  absl::MutexLock lock(&mu_);
  return up_;
}

size_t ShardedSubscriber::wanted_channels() const {
  absl::MutexLock lock(&mu_);
  return wanted_.size();
}

// ---- Own thread -------------------------------------------------------------------

void ShardedSubscriber::Tick() {
  std::vector<Shard> closing;
  bool refresh = false;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    // Closed here, not under the mutex: closing joins the shard's thread,
    // whose callbacks may be waiting for the mutex.
    for (auto it = retired_.begin(); it != retired_.end();) {
      if (it->use_count() > 1) {
        ++it;
        continue;
      }
      closing.push_back(std::move(*it));
      it = retired_.erase(it);
    }
    refresh = !refreshing_ && !HealthyLocked();
  }
  closing.clear();
  if (refresh) RefreshMap();
  Reconcile(std::nullopt);
  timer_->timer.expires_after(ToChrono(kRefreshInterval));
  timer_->timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Tick();
  });
}

void ShardedSubscriber::RefreshMap() {
  const std::vector<std::string> masters = client_->MasterAddresses();
  if (masters.empty()) return;  // the client knows none yet: the next tick asks again
  struct Round {
    absl::Mutex mu;
    size_t pending ABSL_GUARDED_BY(mu) = 0;
    bool applied ABSL_GUARDED_BY(mu) = false;
  };
  auto round = std::make_shared<Round>();
  {
    absl::MutexLock lock(&round->mu);
    round->pending = masters.size();
  }
  {
    absl::MutexLock lock(&mu_);
    refreshing_ = true;
  }
  const bool tls = client_->options().tls.enabled;
  // Every master is asked at once (one may be the dead one); the first
  // readable answer is applied.
  for (const std::string& master : masters) {
    client_->ExecuteBatchOn(
        master, {RedisCommand({"CLUSTER", "SHARDS"})},
        [anchor = anchor_, round, tls](std::vector<absl::StatusOr<Reply>> replies) {
          std::optional<ClusterMap> map;
          if (!replies.empty() && replies[0].ok()) {
            absl::StatusOr<ClusterMap> parsed = ParseClusterShards(*replies[0], tls);
            if (parsed.ok()) map = *std::move(parsed);
          }
          bool apply, last;
          {
            absl::MutexLock lock(&round->mu);
            apply = map.has_value() && !round->applied;
            if (apply) round->applied = true;
            last = --round->pending == 0;
          }
          if (!apply && !last) return;
          absl::MutexLock lock(&anchor->mu);
          ShardedSubscriber* self = anchor->self;
          if (self == nullptr) return;
          // Once a map is in, the next tick may ask again (if it did not
          // heal anything) without waiting for a dead master's timeout.
          asio::post(*self->io_, [self, apply, map = std::move(map)] {
            if (apply) self->ApplyMap(*map);
            absl::MutexLock lock(&self->mu_);
            self->refreshing_ = false;
          });
        });
  }
}

void ShardedSubscriber::ApplyMap(const ClusterMap& map) {
  std::vector<std::pair<Shard, std::vector<std::string>>> unsubscribes;
  std::vector<Send> subscribes;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    slot_owner_.assign(kClusterSlots, std::string());
    absl::flat_hash_set<std::string> owners;
    for (int slot = 0; slot < kClusterSlots && slot < static_cast<int>(map.slot_owner.size());
         ++slot) {
      const int owner = map.slot_owner[slot];
      if (owner < 0 || owner >= static_cast<int>(map.nodes.size())) continue;
      const ClusterMap::Node& node = map.nodes[owner];
      slot_owner_[slot] = node.address();
      if (owners.insert(slot_owner_[slot]).second) ShardLocked(slot_owner_[slot], node);
    }
    absl::flat_hash_map<std::string, std::vector<std::string>> from, to;
    for (auto& [channel, address] : wanted_) {
      const std::string& owner = slot_owner_[KeySlot(channel)];
      if (owner == address && shards_.contains(owner)) continue;
      if (shards_.contains(address)) from[address].push_back(channel);
      if (shards_.contains(owner)) to[owner].push_back(channel);
      address = owner;
    }
    for (auto& [address, list] : from) unsubscribes.emplace_back(shards_[address], std::move(list));
    for (auto& [address, list] : to) subscribes.push_back({address, shards_[address], std::move(list)});
    // A node that owns no slot any more holds no channel now either.
    for (auto it = shards_.begin(); it != shards_.end();) {
      if (owners.contains(it->first)) {
        ++it;
        continue;
      }
      retired_.push_back(std::move(it->second));
      shards_.erase(it++);
    }
  }
  for (auto& [shard, list] : unsubscribes) shard->Unsubscribe(std::move(list));
  for (Send& send : subscribes) send.shard->Subscribe(send.channels, nullptr);
  DropMoved(subscribes);
}

void ShardedSubscriber::DropMoved(const std::vector<Send>& sends) {
  std::vector<std::pair<Shard, std::vector<std::string>>> stale;
  {
    absl::MutexLock lock(&mu_);
    for (const Send& send : sends) {
      std::vector<std::string> list;
      for (const std::string& channel : send.channels) {
        auto it = wanted_.find(channel);
        if (it == wanted_.end() || it->second != send.address) list.push_back(channel);
      }
      if (!list.empty()) stale.emplace_back(send.shard, std::move(list));
    }
  }
  for (auto& [shard, list] : stale) shard->Unsubscribe(std::move(list));
}

void ShardedSubscriber::Reconcile(std::optional<absl::Time> lost_at, const std::string& shard) {
  std::optional<absl::Time> down;
  std::optional<std::pair<absl::Time, absl::Time>> restored;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    // A loss Subscribe found (before the recovery it may come with).
    down = std::exchange(unreported_down_, std::nullopt);
    // A shard holding no channel (every master has one) loses nothing.
    if (lost_at.has_value() &&
        std::none_of(wanted_.begin(), wanted_.end(),
                     [&shard](const auto& entry) { return entry.second == shard; })) {
      lost_at.reset();
    }
    if (lost_at.has_value()) {
      if (up_) {
        up_ = false;
        down_since_ = *lost_at;
        down = down_since_;
      } else {
        down_since_ = std::min(down_since_, *lost_at);
      }
    }
    const bool healthy = HealthyLocked();
    if (up_ && !healthy) {
      up_ = false;
      down_since_ = absl::Now();
      down = down_since_;
    } else if (!up_ && healthy) {
      up_ = true;
      restored.emplace(down_since_, absl::Now());
    }
  }
  if (down && callbacks_.on_down) callbacks_.on_down(*down);
  if (restored && callbacks_.on_restored) callbacks_.on_restored(restored->first, restored->second);
}

// ---- Under the mutex ----------------------------------------------------------------

void ShardedSubscriber::ShardLocked(const std::string& address, const ClusterMap::Node& node) {
  if (shards_.contains(address)) return;
  RedisSubscriber::Callbacks callbacks;
  callbacks.on_message = callbacks_.on_message;
  // Losses and recoveries are judged on this thread, for all shards at once.
  callbacks.on_down = [this, address](absl::Time since) {
    asio::post(*io_, [this, address, since] { Reconcile(since, address); });
  };
  callbacks.on_restored = [this](absl::Time, absl::Time) {
    asio::post(*io_, [this] { Reconcile(std::nullopt); });
  };
  absl::StatusOr<std::unique_ptr<RedisSubscriber>> shard = RedisSubscriber::CreateSharded(
      client_->options(), RedisNode{node.host, node.port}, std::move(callbacks));
  // Only unusable options fail, and the client's own were usable.
  if (shard.ok()) shards_.emplace(address, Shard(*std::move(shard)));
}

bool ShardedSubscriber::HealthyLocked() const {
  if (slot_owner_.empty()) return false;
  absl::flat_hash_set<std::string> checked;
  for (const auto& [channel, address] : wanted_) {
    if (!checked.insert(address).second) continue;
    auto it = shards_.find(address);
    if (it == shards_.end() || !it->second->connected()) return false;
  }
  return true;
}

}  // namespace stateside::redis

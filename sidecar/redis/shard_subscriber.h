// Sharded pub/sub on Redis Cluster: the channels wanted, each held by the
// shard that owns its slot, through one RedisSubscriber::CreateSharded
// connection per master. Follows the slot map: while any connection holding
// channels is down (a killed master, a -MOVED, a `sunsubscribe` Redis sent
// because the slot left), it reads CLUSTER SHARDS from the masters the
// client knows every kRefreshInterval and moves channels whose slot changed
// owner to that owner's connection. Loss windows are reported as one
// subscriber: on_down when the first connection holding channels is lost
// (or a channel is wanted where the connection is down: one that held no
// channel lost nothing until then), on_restored(first loss, now) once every
// wanted channel is confirmed on the master that owns its slot. So an
// UNAVAILABLE answer to Subscribe is always followed by on_restored.
//
// Thread-safety: every public method may be called from any thread (state is
// under one mutex). on_message runs on the shard connections' I/O threads;
// on_down and on_restored on this subscriber's own thread; none with the
// mutex held, so they may call Subscribe/Unsubscribe, but must not block or
// destroy the subscriber.
#ifndef STATESIDE_SIDECAR_REDIS_SHARD_SUBSCRIBER_H_
#define STATESIDE_SIDECAR_REDIS_SHARD_SUBSCRIBER_H_

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/redis/cluster_slots.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_subscriber.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace stateside::redis {

class ShardedSubscriber final : public ChannelSubscriber {
 public:
  // How often the slot map is read while a connection holding channels is
  // down (a failover takes about cluster-node-timeout plus an election).
  static constexpr absl::Duration kRefreshInterval = absl::Milliseconds(250);

  // Starts reading the slot map in the background and returns at once.
  // REQUIRES: client is a Cluster client and outlives the subscriber.
  static absl::StatusOr<std::unique_ptr<ShardedSubscriber>> Create(
      RedisClient* client, RedisSubscriber::Callbacks callbacks);
  // Closes every connection and joins the threads; no callback runs
  // afterwards. REQUIRES: not called from a callback.
  ~ShardedSubscriber() override;
  ShardedSubscriber(const ShardedSubscriber&) = delete;
  ShardedSubscriber& operator=(const ShardedSubscriber&) = delete;

  // As RedisSubscriber's: `done` gets OK once every channel is confirmed by
  // the master of its slot, UNAVAILABLE when one is not connected (or the
  // slot map is not known yet); the channels stay wanted either way.
  void Subscribe(std::vector<std::string> channels,
                 absl::AnyInvocable<void(absl::Status) &&> done) override;
  void Unsubscribe(std::vector<std::string> channels) override;
  // Every wanted channel is confirmed where its slot lives.
  bool connected() const override;
  size_t wanted_channels() const override;

 private:
  using Shard = std::shared_ptr<RedisSubscriber>;
  // Channels sent to one shard connection outside the mutex.
  struct Send {
    std::string address;
    Shard shard;
    std::vector<std::string> channels;
  };

  ShardedSubscriber(RedisClient* client, RedisSubscriber::Callbacks callbacks);
  absl::Status Init();

  // Own thread only.
  void Tick();
  void RefreshMap();
  void ApplyMap(const ClusterMap& map);
  // Reports a loss (`lost_at`: when the connection to `shard` was lost, if
  // it just was) or a recovery.
  void Reconcile(std::optional<absl::Time> lost_at, const std::string& shard = "");

  // Any thread. A SUBSCRIBE sent outside the mutex may cross an Unsubscribe
  // or a move of the channel (ApplyMap): what the connection holds but
  // wanted_ no longer places there is unsubscribed again.
  void DropMoved(const std::vector<Send>& sends);

  // Opens the connection to `node` unless one is open.
  void ShardLocked(const std::string& address, const ClusterMap::Node& node)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The map is known and every wanted channel is confirmed on its owner.
  bool HealthyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  RedisClient* const client_;
  const RedisSubscriber::Callbacks callbacks_;
  std::unique_ptr<boost::asio::io_context> io_;
  struct Timer;
  std::unique_ptr<Timer> timer_;  // the Tick's, own thread only
  struct Anchor;
  std::shared_ptr<Anchor> anchor_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Channel -> address of the shard it is subscribed on ("": slot owner
  // unknown yet).
  absl::flat_hash_map<std::string, std::string> wanted_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Shard> shards_ ABSL_GUARDED_BY(mu_);  // by address
  std::vector<std::string> slot_owner_ ABSL_GUARDED_BY(mu_);  // by slot; "" = unknown
  // Closed on this thread once no call holds them any more.
  std::vector<Shard> retired_ ABSL_GUARDED_BY(mu_);
  bool up_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time down_since_ ABSL_GUARDED_BY(mu_);
  // A loss found by Subscribe (up_ turned false there), for this thread's
  // next Reconcile to report: on_down stays on this thread, ahead of its
  // on_restored.
  std::optional<absl::Time> unreported_down_ ABSL_GUARDED_BY(mu_);
  // A CLUSTER SHARDS round is out and has not brought a map (nor ended).
  bool refreshing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_SHARD_SUBSCRIBER_H_

// One dedicated RESP2 connection in subscribe mode, with its own I/O thread:
// keeps a set of wanted channels subscribed across disconnects (re-SUBSCRIBE
// on every reconnect, with backoff, forever), delivers published messages,
// finds a hung Redis by PINGs, and reports each window in which messages may
// have been lost (on_down / on_restored). With RedisTopology::kSentinel it
// connects only to the master the sentinels name (its own SentinelMonitor,
// ROLE checked in the handshake) and moves when the master does (a loss
// window like any reconnect, opening when a sentinel last named the old
// master: publishers following their own monitor may have moved since).
// With RedisTopology::kCluster it listens on one seed node (the cluster
// broadcasts every PUBLISH to all nodes) and tries the next seed on each
// reconnect attempt. CreateSharded makes one that holds shard channels
// (SSUBSCRIBE) on one given node: ShardedSubscriber (shard_subscriber.h)
// keeps one per master and moves channels when their slot does.
//
// Thread-safety: every public method may be called from any thread (state is
// under one mutex); callbacks run on the I/O thread without that mutex held,
// so they may call Subscribe/Unsubscribe, but must not block or destroy the
// subscriber.
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_SUBSCRIBER_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_SUBSCRIBER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/redis/redis_options.h"
#include "sidecar/redis/reply.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace stateside::redis {

class SentinelMonitor;
class Transport;
class TransportFactory;
class RespParser;

// What the realtime broker needs of a subscription, whichever the topology:
// RedisSubscriber (one connection) or ShardedSubscriber (one per shard).
// Thread-safe; see RedisSubscriber for the contract of each call.
class ChannelSubscriber {
 public:
  virtual ~ChannelSubscriber() = default;
  virtual void Subscribe(std::vector<std::string> channels,
                         absl::AnyInvocable<void(absl::Status) &&> done) = 0;
  virtual void Unsubscribe(std::vector<std::string> channels) = 0;
  virtual bool connected() const = 0;
  virtual size_t wanted_channels() const = 0;
};

// Delivery is at most once: a message published while the connection is down
// (or before its SUBSCRIBE is confirmed) is lost, and the loss windows are
// reported instead. on_down and on_restored alternate; the subscriber starts
// "down since Create()" without an on_down, so the first completed
// subscription reports on_restored(created, now) too.
//
// Liveness: the connection sends a PING whenever it has been silent for
// min(options.idle_ping_interval, 1s) — a lost pub/sub connection silently
// loses messages, so it is checked far more often than a command connection
// — and any PING, SUBSCRIBE or UNSUBSCRIBE unanswered after
// options.command_timeout resets it. A hung Redis is thus found within about
// ping interval + command_timeout.
class RedisSubscriber final : public ChannelSubscriber {
 public:
  struct Callbacks {
    // A message published on a wanted channel (I/O thread; must not block).
    // Messages of a channel are dropped from the moment Unsubscribe is called.
    std::function<void(std::string_view channel, std::string_view payload)> on_message;
    // The connection carrying the subscriptions was lost at `since` (messages
    // published from then on may be lost; on a master move `since` may be
    // earlier than the call). Called once per loss.
    std::function<void(absl::Time since)> on_down;
    // After a loss: every channel wanted when the connection came back is
    // subscribed again and confirmed by Redis. [since, until] is the window
    // in which messages may have been lost.
    std::function<void(absl::Time since, absl::Time until)> on_restored;
    // Client-side caching (near_cache.h): when set, every handshake names the
    // connection (CLIENT SETNAME client_name) and asks its CLIENT ID, which
    // on_client_id hears before the subscriptions are restored.
    std::string client_name;
    std::function<void(int64_t id)> on_client_id;
    // A message on a wanted channel whose payload is not a string: Redis's
    // own __redis__:invalidate carries an array of keys, or nil for a flush
    // of the whole database. Without this callback such a message is a
    // protocol error.
    std::function<void(std::string_view channel, const Reply& payload)> on_structured_message;
  };

  struct Stats {
    uint64_t messages = 0;         // delivered to on_message
    uint64_t connects = 0;         // handshakes completed
    uint64_t disconnects = 0;      // connections lost after their handshake
    uint64_t protocol_errors = 0;  // unparsable stream, unexpected push, error reply
  };

  // Starts connecting in the background and returns at once (a Redis that is
  // down is not an error). INVALID_ARGUMENT for unusable options (bad
  // timeouts or backoff, unreadable TLS files).
  static absl::StatusOr<std::unique_ptr<RedisSubscriber>> Create(RedisOptions options,
                                                                 Callbacks callbacks);
  // Shard channels on Redis Cluster: connects to `node` only (a master or
  // replica of the shards whose channels it is given) and speaks
  // SSUBSCRIBE/SUNSUBSCRIBE, one channel a command (a command's channels
  // must share a slot). A -MOVED answer, or a `sunsubscribe` Redis sends
  // unasked (the channel's slot left the node), resets the connection like
  // any loss: on_down, then on_restored once every channel still wanted is
  // confirmed there again; the owner moves the channels elsewhere meanwhile.
  static absl::StatusOr<std::unique_ptr<RedisSubscriber>> CreateSharded(RedisOptions options,
                                                                        RedisNode node,
                                                                        Callbacks callbacks);

  // Closes the connection and joins the I/O thread; pending `done`s get
  // UNAVAILABLE("redis: subscriber closed"). No callback runs afterwards.
  // REQUIRES: not called from a callback; no other call runs or starts.
  ~RedisSubscriber() override;
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

  // Adds channels to the wanted set (a set: subscribing twice is one
  // subscription). `done` runs once — on the I/O thread, or inline before
  // Subscribe returns — with OK once Redis has confirmed every channel (so a
  // PUBLISH issued after `done` is delivered), or UNAVAILABLE when not
  // connected or the connection was lost first. Either way the channels stay
  // wanted and are subscribed again on every reconnect until Unsubscribe.
  void Subscribe(std::vector<std::string> channels,
                 absl::AnyInvocable<void(absl::Status) &&> done) override;
  // Removes channels from the wanted set and sends UNSUBSCRIBE if connected.
  // Fire and forget: their messages stop being delivered at once.
  void Unsubscribe(std::vector<std::string> channels) override;

  // The subscription connection is up and every channel it came back with is
  // confirmed (false from a loss until then; on_restored runs just after it
  // turns true, on the I/O thread).
  bool connected() const override;
  // Size of the wanted set (the "Redis channels held" gauge).
  size_t wanted_channels() const override;
  Stats stats() const;

 private:
  enum class State { kConnecting, kSubscribing, kUp, kClosed };
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Waiter {
    absl::flat_hash_set<std::string> remaining;  // channels not yet confirmed
    absl::AnyInvocable<void(absl::Status) &&> done;  // a Subscribe's (may be empty)
    bool restore = false;  // the reconnect's resubscription: kUp when complete
  };
  // Callbacks decided under mu_ and run (by Run) after it is released.
  struct Deferred {
    std::optional<absl::Time> down;
    std::vector<std::pair<absl::AnyInvocable<void(absl::Status) &&>, absl::Status>> dones;
    std::optional<std::pair<absl::Time, absl::Time>> restored;
  };

  RedisSubscriber(RedisOptions options, Callbacks callbacks, bool sharded);
  absl::Status Init();

  // I/O thread only.
  void Connect();
  void OnTransportConnected();
  void ReadLoop();
  void DrainReplies();
  absl::Status OnHandshakeReply(const Reply& reply, Deferred* out);
  absl::Status OnPush(Reply reply, Deferred* out);
  void Flush();
  void ArmCommandTimer();
  void ArmPingTimer();
  // `lost_since`: when the messages may have started going missing, if
  // before now (clamped to the time the subscription was last restored).
  void Fail(const absl::Status& error, absl::Time lost_since = absl::InfiniteFuture());
  void Shutdown();
  void OnMaster(const std::optional<RedisNode>& master);
  void Run(Deferred& deferred);

  // Encodes (S)SUBSCRIBE/(S)UNSUBSCRIBE in chunks, each channel expecting a
  // reply.
  void QueueChannelsLocked(bool subscribe, const std::vector<std::string>& channels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueLocked(const std::vector<std::string>& args, size_t replies)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartResubscribeLocked(Deferred* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const RedisOptions options_;
  const Callbacks callbacks_;
  const bool sharded_;  // SSUBSCRIBE on options_.nodes[0] (CreateSharded)
  const std::chrono::milliseconds command_timeout_;
  const std::chrono::milliseconds ping_interval_;
  std::function<double()> jitter_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<TransportFactory> factory_;
  // kSentinel: the subscriber follows the master on its own I/O thread
  // (created in Init, used there only).
  std::unique_ptr<SentinelMonitor> sentinel_;
  std::thread thread_;

  std::atomic<uint64_t> messages_{0};
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> disconnects_{0};
  std::atomic<uint64_t> protocol_errors_{0};

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kConnecting;
  absl::flat_hash_set<std::string> wanted_ ABSL_GUARDED_BY(mu_);
  // Of the current connection: SUBSCRIBEs sent per channel and not yet
  // confirmed, and the wanted channels whose last SUBSCRIBE is confirmed.
  absl::flat_hash_map<std::string, int> unconfirmed_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> confirmed_ ABSL_GUARDED_BY(mu_);
  std::list<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  absl::Time down_since_ ABSL_GUARDED_BY(mu_);  // meaningful unless kUp
  absl::Time up_since_ ABSL_GUARDED_BY(mu_);    // meaningful when kUp
  std::string out_ ABSL_GUARDED_BY(mu_);        // encoded, not yet written
  bool flush_posted_ ABSL_GUARDED_BY(mu_) = false;
  // One deadline per reply owed in subscribe mode (a confirmation per
  // channel, a pong per PING); Redis answers them in order.
  std::deque<SteadyTime> owed_ ABSL_GUARDED_BY(mu_);

  // I/O thread only.
  struct Io;
  std::unique_ptr<Io> io_state_;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_SUBSCRIBER_H_

// The Redis client: per node, a small fixed pool of pipelined connections,
// all driven by one Boost.Asio I/O thread. Commands from any thread are
// written in batches (everything submitted while a write is in flight goes
// out in the next one), replies are matched FIFO. When no connection is ready
// a command fails at once with UNAVAILABLE; nothing queues without bound.
// Scripts are called by EVALSHA and loaded transparently on NOSCRIPT (e.g.
// after a Redis restart), on the node that answered NOSCRIPT.
//
// Standalone: one node. Cluster (options.topology == kCluster): the slot map
// is learned from CLUSTER SHARDS on any reachable seed, refreshed on MOVED,
// when a master's connection is lost and every 10 s; a command goes to the
// master of its key's slot (CommandKey in cluster_slots.h), keyless ones to
// any master. MOVED and ASK are followed (a MOVED answering the send
// that followed a MOVED and pointing back to the node that sent that one,
// two nodes pointing at each other mid-migration, waits a backoff first); a command refused before it was written (its node not connected,
// no master known for its slot) and TRYAGAIN, CLUSTERDOWN and LOADING replies
// are retried with backoff, at most 5 sends within the command timeout. A
// command lost with its connection after it was written is not resent (it
// may have run): UNAVAILABLE.
//
// Sentinel (kSentinel): one pool, as standalone, that follows the master the
// sentinels name (see sentinel_monitor.h): every connection checks ROLE after
// its handshake, and on a master change every connection is reset to the new
// master (commands in flight fail UNAVAILABLE, never reach the old node). A
// node found demoted (ROLE, READONLY) drops the pool's other ready
// connections and makes the monitor ask again. While no master is known,
// connected() is false and commands fail at once naming the master.
//
// Build one from a URL:
//   ASSIGN_OR_RETURN(auto client, RedisClient::FromUrl(url, options));
//   client->connected();   // readiness (see connected())
//
// Thread-safe. Callbacks run on the I/O thread (or inline, before the call
// returns, when a command is refused at once); they must not block, and the
// blocking helpers (Call, CallBatch) must not be used from them.
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_CLIENT_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/redis/cluster_slots.h"
#include "sidecar/redis/redis_options.h"
#include "sidecar/redis/reply.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace stateside::redis {

class Connection;
class SentinelMonitor;
class TransportFactory;
struct ConnectionCounters;
class RedisScript;

// One command. `script` is set by RedisScript::Call so a NOSCRIPT reply can be
// answered by SCRIPT LOAD and one retry.
struct RedisCommand {
  std::vector<std::string> args;
  std::shared_ptr<const RedisScript> script;
  // An acknowledged session write. With options().wait_replicas > 0 the
  // client follows it by WAIT on the same connection, in the same batch, and
  // answers UNAVAILABLE unless that many replicas confirmed it in time.
  bool durable = false;

  RedisCommand() = default;
  RedisCommand(std::vector<std::string> a) : args(std::move(a)) {}  // NOLINT: implicit on purpose
  RedisCommand(std::initializer_list<std::string> a) : args(a) {}
};

// A Lua script, named by its SHA-1. Immutable; share it.
class RedisScript : public std::enable_shared_from_this<RedisScript> {
 public:
  static std::shared_ptr<const RedisScript> Create(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }
  // EVALSHA sha1 numkeys keys... args...
  RedisCommand Call(std::vector<std::string> keys, std::vector<std::string> args) const;

  explicit RedisScript(std::string source);  // use Create()

 private:
  const std::string source_;
  const std::string sha1_;
};

// A Redis error reply as a status: LOADING/BUSY/MASTERDOWN/READONLY/TRYAGAIN/
// CLUSTERDOWN/MOVED/ASK and auth errors -> UNAVAILABLE, OOM ->
// RESOURCE_EXHAUSTED, anything else (ERR, WRONGTYPE, NOSCRIPT...) -> INTERNAL;
// the message is "redis: " + the server's text.
absl::Status ErrorReplyToStatus(std::string_view error);

// What the client knows of the Redis tier, for /info and statesidectl.
struct RedisNodeInfo {
  std::string address;  // host:port (unix path for a unix socket)
  std::string role;     // "master", "replica", "sentinel"; "" = not known
  int slots = 0;        // cluster: the hash slots it serves
  bool connected = false;
  // Round trips of its replies since the client started (a sentinel's are
  // not measured): the mean and the last; empty before the first reply.
  std::optional<absl::Duration> mean_latency;
  std::optional<absl::Duration> last_latency;
};
struct RedisTopologyInfo {
  RedisTopology mode = RedisTopology::kStandalone;
  std::vector<RedisNodeInfo> nodes;
  int slots_covered = 0;  // cluster: slots with a known master (of 16384)
  std::string master;     // sentinel: the master in use ("" = none known)
};

struct RedisClientStats {
  uint64_t batches_written = 0;   // writes; far fewer than commands under load
  uint64_t commands_written = 0;
  uint64_t replies = 0;
  uint64_t connects = 0;
  uint64_t connect_failures = 0;
  uint64_t disconnects = 0;
  uint64_t command_timeouts = 0;
  uint64_t protocol_errors = 0;
  uint64_t script_loads = 0;      // SCRIPT LOADs after NOSCRIPT
  uint64_t rejected = 0;          // commands refused at once (not connected, overloaded)
  uint64_t redirects_moved = 0;   // cluster: MOVED replies followed
  uint64_t redirects_ask = 0;     // cluster: ASK replies followed
  uint64_t topology_refreshes = 0;  // cluster: slot maps read
  uint64_t retries = 0;           // cluster: resends after a refusal or a transient error
  uint64_t wait_failures = 0;     // durable writes WAIT did not confirm
  uint64_t master_changes = 0;    // sentinel: failovers followed
  int ready_connections = 0;      // over every node
};

// Where the client reports for metrics (on its I/O thread: must not block).
class RedisMetrics {
 public:
  virtual ~RedisMetrics() = default;
  // A reply came `rtt` after its command's batch was handed to the socket.
  virtual void CommandDone(absl::Duration rtt) = 0;
  virtual void BatchWritten(size_t commands) = 0;
  // "timeout", "protocol", "connect" (an attempt failed), "disconnect".
  virtual void Error(std::string_view kind) = 0;
  // Cluster: a redirect followed ("moved", "ask"), a slot map read, a
  // command resent (after a refusal or TRYAGAIN/CLUSTERDOWN/LOADING).
  virtual void Redirect(std::string_view kind) {}
  virtual void TopologyRefresh() {}
  virtual void Retry() {}
  // Sentinel: the master moved to another node (a failover was followed).
  virtual void MasterChanged() {}
};

class RedisClient {
 public:
  // Error replies are already statuses here (see ErrorReplyToStatus).
  using Callback = absl::AnyInvocable<void(absl::StatusOr<Reply>)>;
  using BatchCallback = absl::AnyInvocable<void(std::vector<absl::StatusOr<Reply>>)>;
  // Called on the I/O thread whenever connected() changes and whenever a new
  // connection error differs from the previous one. Must not block.
  using StateListener = std::function<void(bool connected, const absl::Status& last_error)>;

  // Starts connecting in the background and returns at once (a Redis that is
  // down at start-up is not an error: connected() stays false until it is
  // up). INVALID_ARGUMENT for bad options or unreadable TLS files.
  static absl::StatusOr<std::unique_ptr<RedisClient>> Create(RedisOptions options);
  static absl::StatusOr<std::unique_ptr<RedisClient>> FromUrl(
      std::string_view url, RedisOptions base = RedisOptions());

  // Fails what is outstanding with UNAVAILABLE and joins the I/O thread.
  // REQUIRES: no call on this client is running or starts meanwhile.
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  void Execute(RedisCommand command, Callback callback);
  // All commands go out back to back on one connection (a pipeline, not a
  // transaction); the callback gets one result per command, in order.
  // Cluster: one such pipeline per node the commands' slots map to, each in
  // the caller's order; commands on different nodes are not ordered.
  void ExecuteBatch(std::vector<RedisCommand> commands, BatchCallback callback);

  // Keyless work that must see every shard (DBSIZE, RANDOMKEY, SCAN): the
  // masters' addresses as they are now (standalone and sentinel: one entry),
  // and a batch sent to one of them. A master that is gone by then answers
  // UNAVAILABLE for each command.
  std::vector<std::string> MasterAddresses() const;
  void ExecuteBatchOn(const std::string& master, std::vector<RedisCommand> commands,
                      BatchCallback callback);

  // Blocking conveniences. REQUIRES: not on the I/O thread (then they return
  // FAILED_PRECONDITION).
  absl::StatusOr<Reply> Call(RedisCommand command);
  std::vector<absl::StatusOr<Reply>> CallBatch(std::vector<RedisCommand> commands);
  std::vector<absl::StatusOr<Reply>> CallBatchOn(const std::string& master,
                                                 std::vector<RedisCommand> commands);

  // Readiness. Standalone and sentinel: at least one connection has
  // completed its handshake (sentinel: to the master) and not failed since.
  // Cluster: every slot has a known master
  // with such a connection.
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  // Waits until connected() or the timeout; returns connected().
  bool WaitConnected(absl::Duration timeout) const;
  // The most recent connection error (OK if none yet).
  absl::Status last_error() const;
  void SetStateListener(StateListener listener);
  // REQUIRES: `metrics` (or null: none) outlives the client or is replaced
  // by null first.
  void SetMetrics(RedisMetrics* metrics) { metrics_.store(metrics, std::memory_order_release); }

  // The I/O thread's io_context, for a server that runs on that thread (the
  // frame socket with a Redis session store: a call read there reaches a
  // connection's write buffer, and its reply comes back, on one thread).
  // What runs there must not block. REQUIRES: a server running on it is
  // shut down (no handler of it left on the io_context) before the client
  // is destroyed.
  boost::asio::io_context& io_context() const { return *io_; }
  // Whether the caller is on the I/O thread (for tests and checks).
  bool OnIoThread() const { return std::this_thread::get_id() == io_thread_id_; }

  RedisClientStats stats() const;
  RedisTopologyInfo topology() const;
  const RedisOptions& options() const { return options_; }

 private:
  struct NodePool;
  class PoolObserver;
  // `pool`'s round trips into `node` (topology()).
  static void SetLatency(const NodePool& pool, RedisNodeInfo* node);
  struct Request;
  struct WaitState;
  using Requests = std::vector<std::unique_ptr<Request>>;

  explicit RedisClient(RedisOptions options);
  absl::Status Init();
  bool cluster() const { return options_.topology == RedisTopology::kCluster; }
  bool sentinel() const { return options_.topology == RedisTopology::kSentinel; }
  // A pool for one node (connections not started yet).
  absl::StatusOr<std::unique_ptr<NodePool>> MakePool(std::string host, int port);

  // Routing and sending (any thread unless noted).
  void Dispatch(std::vector<RedisCommand> commands, std::vector<Callback> callbacks,
                NodePool* pinned);
  NodePool* RouteLocked(const RedisCommand& command) ABSL_SHARED_LOCKS_REQUIRED(map_mu_);
  // One batch on one of `pool`'s connections (null: no node to send to).
  void Send(NodePool* pool, Requests requests, const absl::Status& no_pool);
  void OnReply(NodePool* pool, std::unique_ptr<Request> request, absl::StatusOr<Reply> raw,
               bool refused, std::shared_ptr<WaitState> wait);
  void OnWaitReply(WaitState& wait, absl::StatusOr<Reply> raw);
  void Finish(std::unique_ptr<Request> request, absl::StatusOr<Reply> result,
              WaitState* wait);
  // Cluster: resends after a backoff, or finishes with `why`.
  void RetryLater(std::unique_ptr<Request> request, absl::Status why);
  absl::Status RefusalStatus(const absl::Status& last_refusal) const;
  // Runs `submit` (which hands its callback to ExecuteBatch*) and waits.
  std::vector<absl::StatusOr<Reply>> AwaitBatch(size_t n,
                                                absl::FunctionRef<void(BatchCallback)> submit);

  // Cluster topology (I/O thread).
  void FollowRedirect(NodePool* from, std::unique_ptr<Request> request, const Redirect& to);
  NodePool* PoolFor(const std::string& host, int port);
  void RequestRefresh();
  void StartRefresh(bool slots_command = false);
  void OnMapReply(absl::StatusOr<Reply> raw, bool slots_command);
  void ApplyMap(const ClusterMap& map);
  void ScheduleRefresh(absl::Duration after);

  // Connection events (I/O thread).
  void OnPoolReady(NodePool* pool, bool ready);
  void OnConnectionError(const absl::Status& error);
  // Sentinel: the monitor's news, and a node of `pool` found not the master.
  void OnMaster(const std::optional<RedisNode>& master, const absl::Status& error);
  void OnNotMaster(NodePool* pool);
  void UpdateConnected();
  void Notify(bool connected, const absl::Status& error);
  RedisMetrics* metrics() const { return metrics_.load(std::memory_order_acquire); }

  // Constant after construction.
  const RedisOptions options_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<ConnectionCounters> counters_;
  std::unique_ptr<SentinelMonitor> sentinel_;  // kSentinel only
  std::thread thread_;
  std::thread::id io_thread_id_;

  std::atomic<bool> connected_{false};
  std::atomic<bool> closing_{false};
  std::atomic<int> ready_connections_{0};
  std::atomic<uint64_t> next_master_{0};
  std::atomic<uint64_t> script_loads_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> moved_{0};
  std::atomic<uint64_t> asks_{0};
  std::atomic<uint64_t> refreshes_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> wait_failures_{0};
  std::atomic<uint64_t> master_changes_{0};
  std::atomic<RedisMetrics*> metrics_{nullptr};

  // The nodes and, for Cluster, the slot map. Pools are created and retired
  // on the I/O thread; a retired pool (its node left the map) is shut down
  // but kept until the client is destroyed, so a NodePool* taken under the
  // lock stays valid for the client's life.
  mutable absl::Mutex map_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<NodePool>> pools_ ABSL_GUARDED_BY(map_mu_);
  std::vector<std::unique_ptr<NodePool>> retired_ ABSL_GUARDED_BY(map_mu_);
  std::vector<NodePool*> masters_ ABSL_GUARDED_BY(map_mu_);      // serving >= 1 slot
  std::vector<NodePool*> slot_master_ ABSL_GUARDED_BY(map_mu_);  // by slot; null = unknown
  int slots_covered_ ABSL_GUARDED_BY(map_mu_) = 0;
  std::vector<RedisNodeInfo> map_nodes_ ABSL_GUARDED_BY(map_mu_);  // the last map, for topology()

  // I/O thread only.
  std::unique_ptr<boost::asio::steady_timer> refresh_timer_;
  bool refresh_in_flight_ = false;
  bool refresh_again_ = false;
  absl::flat_hash_set<boost::asio::steady_timer*> retry_timers_;
  std::optional<RedisNode> current_master_;  // sentinel: where the pool points

  mutable absl::Mutex mu_;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  StateListener listener_ ABSL_GUARDED_BY(mu_);
  bool notified_connected_ ABSL_GUARDED_BY(mu_) = false;  // mirror for WaitConnected
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_CLIENT_H_

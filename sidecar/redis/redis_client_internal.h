// RedisClient's private pieces shared by redis_client.cc and
// redis_client_cluster.cc: a node's connection pool, one command on its way
// (with its retry budget), and the hand-off of a durable write to its WAIT.
// Not a public header: only those two files include it.
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_CLIENT_INTERNAL_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_CLIENT_INTERNAL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sidecar/redis/connection.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/transport.h"

namespace stateside::redis {

// At most this many sends of one command (redirects and retries included).
inline constexpr int kMaxSends = 5;

// Forwards one pool's connection events to the client.
class RedisClient::PoolObserver final : public Connection::Observer {
 public:
  PoolObserver(RedisClient* client, NodePool* pool) : client_(client), pool_(pool) {}
  void OnReadyChanged(bool ready) override { client_->OnPoolReady(pool_, ready); }
  void OnConnectionError(const absl::Status& error) override {
    client_->OnConnectionError(error);
  }
  // That node may be hung: probe its other connections now.
  void OnCommandTimeout() override;
  void OnBatchWritten(size_t commands) override {
    if (RedisMetrics* m = client_->metrics()) m->BatchWritten(commands);
  }
  void OnReply(std::chrono::nanoseconds rtt) override;
  void OnError(std::string_view kind) override {
    if (RedisMetrics* m = client_->metrics()) m->Error(kind);
  }
  // Sentinel: this node is not the master (ROLE, READONLY).
  void OnNotMaster() override { client_->OnNotMaster(pool_); }

 private:
  RedisClient* const client_;
  NodePool* const pool_;
};

// The connections to one node. Fields are constant after MakePool except the
// atomics and `slots` (map_mu_).
struct RedisClient::NodePool {
  // host:port, or the unix path (standalone); sentinel: the first
  // sentinel's, a name only (MasterAddresses names the master in use)
  std::string address;
  bool seed = false;    // cluster: from REDIS_URL; kept to read the map from
  RedisOptions options;  // this node's endpoint; outlives its connections
  std::unique_ptr<TransportFactory> factory;
  std::unique_ptr<PoolObserver> observer;
  std::vector<std::unique_ptr<Connection>> connections;
  std::atomic<int> ready{0};  // connections ready
  std::atomic<uint64_t> next{0};  // round-robin start
  // Round trips of this node's replies (the status page's per-node latency):
  // how many, their sum, and the last one (-1: none yet).
  std::atomic<uint64_t> replies{0};
  std::atomic<int64_t> rtt_sum_ns{0};
  std::atomic<int64_t> last_rtt_ns{-1};
  int slots = 0;  // cluster: slots this node serves in the map (map_mu_)
};

inline void RedisClient::PoolObserver::OnReply(std::chrono::nanoseconds rtt) {
  pool_->replies.fetch_add(1, std::memory_order_relaxed);
  pool_->rtt_sum_ns.fetch_add(rtt.count(), std::memory_order_relaxed);
  pool_->last_rtt_ns.store(rtt.count(), std::memory_order_relaxed);
  if (RedisMetrics* m = client_->metrics()) m->CommandDone(absl::FromChrono(rtt));
}

// One command from the caller until its callback runs.
struct RedisClient::Request {
  RedisCommand command;
  Callback callback;
  NodePool* pinned = nullptr;  // ExecuteBatchOn: this node only, never rerouted
  int sends = 0;
  absl::Time deadline;  // no retry starts after this (first send + command timeout)
  bool asking = false;  // ASK: the next send goes after ASKING (one-shot)
  // The node that answered the last send MOVED; "" when the last reply was
  // anything else (or a backoff came since). A MOVED pointing back to it is
  // the mid-migration ping-pong (FollowRedirect).
  std::string moved_from;
  std::shared_ptr<const RedisScript> load_first;  // NOSCRIPT: SCRIPT LOAD before the retry
};

// A durable write's result, parked until its WAIT answers.
struct RedisClient::WaitState {
  Callback callback;  // empty: nothing parked (failed or resent)
  absl::StatusOr<Reply> result;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_CLIENT_INTERNAL_H_

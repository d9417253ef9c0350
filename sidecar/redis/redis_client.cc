// RedisClient: node pools, routing, dispatch, NOSCRIPT reload, WAIT, blocking
// helpers, and the Sentinel pool that follows the master. The Cluster slot
// map lives in redis_client_cluster.cc.
#include "sidecar/redis/redis_client.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/redis/connection.h"
#include "sidecar/redis/redis_client_internal.h"
#include "sidecar/redis/resp.h"
#include "sidecar/redis/sentinel_monitor.h"
#include "sidecar/crypto/digest.h"
#include "sidecar/redis/transport.h"

namespace stateside::redis {
namespace {

namespace asio = boost::asio;

bool HasPrefixWord(absl::string_view error, absl::string_view word) {
  return absl::StartsWith(error, word) &&
         (error.size() == word.size() || error[word.size()] == ' ');
}

absl::StatusOr<Reply> ToResult(absl::StatusOr<Reply> raw) {
  if (raw.ok() && raw->is_error()) return ErrorReplyToStatus(raw->str);
  return raw;
}

}  // namespace

// ---- RedisScript ----------------------------------------------------------

RedisScript::RedisScript(std::string source)
    : source_(std::move(source)), sha1_(crypto::Sha1Hex(source_)) {}

std::shared_ptr<const RedisScript> RedisScript::Create(std::string source) {
  return std::make_shared<const RedisScript>(std::move(source));
}

RedisCommand RedisScript::Call(std::vector<std::string> keys, std::vector<std::string> args) const {
  RedisCommand command;
  command.args.reserve(3 + keys.size() + args.size());
  command.args.push_back("EVALSHA");
  command.args.push_back(sha1_);
  command.args.push_back(std::to_string(keys.size()));
  for (std::string& k : keys) command.args.push_back(std::move(k));
  for (std::string& a : args) command.args.push_back(std::move(a));
  command.script = shared_from_this();
  return command;
}

absl::Status ErrorReplyToStatus(std::string_view error_in) {
  const absl::string_view error(error_in.data(), error_in.size());
  const std::string message = absl::StrCat("redis: ", error);
  for (absl::string_view word : {"LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN",
                                "CLUSTERDOWN", "MOVED", "ASK", "NOAUTH", "WRONGPASS",
                                "NOREPLICAS"}) {
    if (HasPrefixWord(error, word)) return absl::UnavailableError(message);
  }
  if (HasPrefixWord(error, "OOM")) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

// ---- Pools ------------------------------------------------------------------

void RedisClient::PoolObserver::OnCommandTimeout() {
  // On the I/O thread, so probing is direct. The connection that timed out
  // is busy failing; Probe skips it (it is no longer ready).
  for (auto& c : pool_->connections) c->Probe();
}

absl::StatusOr<std::unique_ptr<RedisClient::NodePool>> RedisClient::MakePool(std::string host,
                                                                             int port) {
  auto pool = std::make_unique<NodePool>();
  pool->options = options_;
  if (cluster()) {
    // Each node is a standalone endpoint to its connections; credentials and
    // TLS settings are the cluster's.
    pool->options.host = std::move(host);
    pool->options.port = port;
    pool->options.nodes.clear();
    pool->options.topology = RedisTopology::kStandalone;
  }
  const RedisOptions& o = pool->options;
  pool->address = o.unix_path.empty() ? ClusterMap::Node{o.host, o.port}.address() : o.unix_path;
  auto factory = TransportFactory::Create(io_.get(), pool->options);
  if (!factory.ok()) return factory.status();
  pool->factory = *std::move(factory);
  pool->observer = std::make_unique<PoolObserver>(this, pool.get());
  for (int i = 0; i < options_.connections; ++i) {
    pool->connections.push_back(std::make_unique<Connection>(
        i, io_.get(), pool->factory.get(), &pool->options, counters_.get(), pool->observer.get()));
  }
  return pool;
}

// ---- RedisClient ------------------------------------------------------------

RedisClient::RedisClient(RedisOptions options)
    : options_(std::move(options)),
      io_(std::make_unique<asio::io_context>(1)),
      counters_(std::make_unique<ConnectionCounters>()),
      refresh_timer_(std::make_unique<asio::steady_timer>(*io_)) {}

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::FromUrl(std::string_view url,
                                                                  RedisOptions base) {
  auto options = ParseRedisUrl(url, std::move(base));
  if (!options.ok()) return options.status();
  return Create(*std::move(options));
}

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Create(RedisOptions options) {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("redis options: ", what));
  };
  if (options.connections < 1 || options.connections > 64) return bad("connections must be 1-64");
  if (options.max_pending_commands < 1 || options.max_pending_bytes < 1) {
    return bad("pending bounds must be positive");
  }
  if (absl::Status s = ValidateConnectionOptions(options, "redis"); !s.ok()) return s;
  if (options.topology == RedisTopology::kSentinel &&
      (options.nodes.empty() || options.sentinel_master.empty() || !options.unix_path.empty())) {
    return bad("sentinel needs the sentinels' host:port list and a master name");
  }
  if (options.topology == RedisTopology::kCluster) {
    if (!options.unix_path.empty()) return bad("cluster nodes are reached over TCP");
    if (options.db != 0) return bad("Redis Cluster has only database 0");
    if (options.nodes.empty()) options.nodes.push_back({options.host, options.port});
  }
  if (options.wait_replicas < 0 || options.wait_timeout <= absl::ZeroDuration()) {
    return bad("wait_replicas must be >= 0 and wait_timeout positive");
  }
  std::unique_ptr<RedisClient> client(new RedisClient(std::move(options)));
  if (absl::Status s = client->Init(); !s.ok()) return s;
  return client;
}

absl::Status RedisClient::Init() {
  std::vector<NodePool*> start;
  {
    absl::MutexLock lock(&map_mu_);
    if (!cluster()) {
      auto pool = MakePool(options_.host, options_.port);
      if (!pool.ok()) return pool.status();
      masters_.push_back(pool->get());
      start.push_back(pool->get());
      if (sentinel()) {
        // No master yet: the connections wait for the monitor's first answer.
        NodePool* p = pool->get();
        for (auto& c : p->connections) c->SetMaster(std::nullopt);
        sentinel_ = std::make_unique<SentinelMonitor>(
            io_.get(), p->factory.get(), options_,
            [this](const std::optional<RedisNode>& master, const absl::Status& error) {
              OnMaster(master, error);
            });
      }
      pools_[(*pool)->address] = *std::move(pool);
    } else {
      slot_master_.assign(kClusterSlots, nullptr);
      for (const RedisNode& seed : options_.nodes) {
        auto pool = MakePool(seed.host, seed.port);
        if (!pool.ok()) return pool.status();
        if (pools_.contains((*pool)->address)) continue;
        (*pool)->seed = true;
        start.push_back(pool->get());
        pools_[(*pool)->address] = *std::move(pool);
      }
    }
  }
  for (NodePool* pool : start) {
    for (auto& c : pool->connections) {
      Connection* conn = c.get();
      asio::post(*io_, [conn] { conn->Start(); });
    }
  }
  if (cluster()) asio::post(*io_, [this] { ScheduleRefresh(absl::Seconds(1)); });
  if (sentinel_ != nullptr) asio::post(*io_, [this] { sentinel_->Start(); });
  thread_ = std::thread([io = io_.get()] {
    // Runs until the destructor's shutdown task stops the context; the guard
    // keeps run() from returning while every connection waits on a timer.
    auto guard = asio::make_work_guard(*io);
    io->run();
  });
  io_thread_id_ = thread_.get_id();
  return absl::OkStatus();
}

RedisClient::~RedisClient() {
  if (!thread_.joinable()) return;
  // Shutdown answers everything outstanding: the connections' commands, and
  // the commands waiting to be resent (their timers' cancelled handlers run
  // before the stop task, which is queued after them).
  asio::post(*io_, [this] {
    closing_.store(true);
    refresh_timer_->cancel();
    for (asio::steady_timer* t : retry_timers_) t->cancel();
    if (sentinel_ != nullptr) sentinel_->Shutdown();
    std::vector<NodePool*> all;
    {
      absl::MutexLock lock(&map_mu_);
      for (auto& [address, pool] : pools_) all.push_back(pool.get());
      for (auto& pool : retired_) all.push_back(pool.get());
    }
    for (NodePool* pool : all) {
      for (auto& c : pool->connections) c->Shutdown();
    }
    asio::post(*io_, [this] { io_->stop(); });
  });
  thread_.join();
}

void RedisClient::Execute(RedisCommand command, Callback callback) {
  std::vector<RedisCommand> commands;
  commands.push_back(std::move(command));
  std::vector<Callback> callbacks;
  callbacks.push_back(std::move(callback));
  Dispatch(std::move(commands), std::move(callbacks), nullptr);
}

namespace {

// Callbacks for a batch whose results are gathered in the caller's order.
// Results arrive on the I/O thread (or inline on refusal) but from several
// nodes, possibly on both at once for a batch split across a refusal and the
// I/O thread: the count is atomic and each slot written once.
std::vector<RedisClient::Callback> GatherCallbacks(size_t n, RedisClient::BatchCallback done) {
  struct Gather {
    std::vector<absl::StatusOr<Reply>> results;
    std::atomic<size_t> remaining;
    RedisClient::BatchCallback done;
  };
  auto gather = std::make_shared<Gather>();
  gather->results.resize(n, absl::UnknownError("no reply"));
  gather->remaining = n;
  gather->done = std::move(done);
  std::vector<RedisClient::Callback> callbacks;
  callbacks.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    callbacks.push_back([gather, i](absl::StatusOr<Reply> r) {
      gather->results[i] = std::move(r);
      if (gather->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        gather->done(std::move(gather->results));
      }
    });
  }
  return callbacks;
}

}  // namespace

void RedisClient::ExecuteBatch(std::vector<RedisCommand> commands, BatchCallback callback) {
  if (commands.empty()) {
    callback({});
    return;
  }
  std::vector<Callback> callbacks = GatherCallbacks(commands.size(), std::move(callback));
  Dispatch(std::move(commands), std::move(callbacks), nullptr);
}

RedisClient::NodePool* RedisClient::RouteLocked(const RedisCommand& command) {
  if (!cluster()) return masters_.empty() ? nullptr : masters_.front();
  if (std::optional<std::string_view> key = CommandKey(command.args)) {
    return slot_master_[KeySlot(*key)];
  }
  // Keyless: any master, a ready one first.
  const size_t n = masters_.size();
  if (n == 0) return nullptr;
  const uint64_t start = next_master_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    NodePool* pool = masters_[(start + i) % n];
    if (pool->ready.load(std::memory_order_acquire) > 0) return pool;
  }
  return masters_[start % n];
}

void RedisClient::Dispatch(std::vector<RedisCommand> commands, std::vector<Callback> callbacks,
                           NodePool* pinned) {
  // Split by node, keeping the caller's order within each node.
  std::vector<std::pair<NodePool*, Requests>> groups;
  const absl::Time deadline = absl::Now() + options_.command_timeout;
  {
    absl::ReaderMutexLock lock(&map_mu_);
    for (size_t i = 0; i < commands.size(); ++i) {
      auto request = std::make_unique<Request>();
      request->command = std::move(commands[i]);
      request->callback = std::move(callbacks[i]);
      request->pinned = pinned;
      request->deadline = deadline;
      NodePool* pool = pinned != nullptr ? pinned : RouteLocked(request->command);
      auto group = std::find_if(groups.begin(), groups.end(),
                                [pool](const auto& g) { return g.first == pool; });
      if (group == groups.end()) group = groups.insert(groups.end(), {pool, Requests()});
      group->second.push_back(std::move(request));
    }
  }
  // Made once: a Status with a message allocates, and almost every send has
  // a node and never reads it.
  static const absl::Status* const kNoMaster =
      new absl::Status(absl::UnavailableError("redis: no master known for the command's slot"));
  for (auto& [pool, requests] : groups) Send(pool, std::move(requests), *kNoMaster);
}

void RedisClient::Send(NodePool* pool, Requests requests, const absl::Status& no_pool) {
  // Set before the callbacks run on refusal: those commands were never
  // written, so resending them cannot run them twice.
  auto refused = std::make_shared<bool>(false);
  Connection::Batch batch;
  // A function pointer rather than an empty lambda: GCC 12 warns about the
  // uninitialised byte of an empty lambda copied into an AnyInvocable.
  void (*ignore)(absl::StatusOr<Reply>) = [](absl::StatusOr<Reply>) {};
  for (std::unique_ptr<Request>& request : requests) {
    ++request->sends;
    if (request->load_first != nullptr) {
      AppendCommand({"SCRIPT", "LOAD", request->load_first->source()}, &batch.bytes);
      batch.callbacks.push_back(ignore);  // the retry's reply tells
      request->load_first = nullptr;
    }
    if (request->asking) {
      AppendCommand({"ASKING"}, &batch.bytes);
      batch.callbacks.push_back(ignore);
      request->asking = false;
    }
    AppendCommand(request->command.args, &batch.bytes);
    std::shared_ptr<WaitState> wait;
    if (request->command.durable && options_.wait_replicas > 0) {
      wait = std::make_shared<WaitState>();
    }
    batch.callbacks.push_back([this, pool, refused, wait,
                               request = std::move(request)](absl::StatusOr<Reply> raw) mutable {
      OnReply(pool, std::move(request), std::move(raw), *refused, wait);
    });
    if (wait != nullptr) {
      // Right after the write on the same connection: it counts the replicas
      // that acknowledged everything this connection wrote so far.
      AppendCommand({"WAIT", std::to_string(options_.wait_replicas),
                     std::to_string(absl::ToInt64Milliseconds(options_.wait_timeout))},
                    &batch.bytes);
      batch.callbacks.push_back(
          [this, wait](absl::StatusOr<Reply> raw) { OnWaitReply(*wait, std::move(raw)); });
    }
  }
  absl::Status refusal = no_pool;
  if (pool != nullptr) {
    const size_t n = pool->connections.size();
    const uint64_t start = pool->next.fetch_add(1, std::memory_order_relaxed);
    for (size_t i = 0; i < n; ++i) {
      refusal = pool->connections[(start + i) % n]->Submit(batch);
      if (refusal.ok()) return;
    }
    refusal = RefusalStatus(refusal);
  } else if (const absl::Status last = last_error(); !last.ok() && !refusal.ok()) {
    // No node to send to (Cluster: no master known for the slot): say why
    // none is, e.g. every seed refusing AUTH or the TLS handshake.
    refusal = absl::UnavailableError(absl::StrCat(refusal.message(), " (", last.message(), ")"));
  }
  rejected_.fetch_add(requests.size(), std::memory_order_relaxed);
  *refused = true;
  for (auto& cb : batch.callbacks) cb(refusal);
}

void RedisClient::OnReply(NodePool* pool, std::unique_ptr<Request> request,
                          absl::StatusOr<Reply> raw, bool refused,
                          std::shared_ptr<WaitState> wait) {
  // Only a MOVED right after a MOVED can be the ping-pong FollowRedirect
  // waits out: any other answer (TRYAGAIN, a refusal, NOSCRIPT, ASK...)
  // ends the pair.
  std::optional<Redirect> to;
  if (cluster() && raw.ok() && raw->is_error()) to = ParseRedirect(raw->str);
  if (!to.has_value() || to->ask) request->moved_from.clear();
  if (!raw.ok()) {
    if (refused && cluster() && !absl::StrContains(raw.status().message(), "overloaded")) {
      return RetryLater(std::move(request), raw.status());
    }
    return Finish(std::move(request), std::move(raw), wait.get());
  }
  if (raw->is_error()) {
    if (cluster()) {
      if (to.has_value()) return FollowRedirect(pool, std::move(request), *to);
      if (HasPrefixWord(raw->str, "TRYAGAIN") || HasPrefixWord(raw->str, "CLUSTERDOWN") ||
          HasPrefixWord(raw->str, "LOADING")) {
        return RetryLater(std::move(request), ErrorReplyToStatus(raw->str));
      }
    }
    if (request->command.script != nullptr && HasPrefixWord(raw->str, "NOSCRIPT")) {
      // Load it where it was missing, and retry there once.
      script_loads_.fetch_add(1, std::memory_order_relaxed);
      request->load_first = std::move(request->command.script);
      Requests again;
      again.push_back(std::move(request));
      return Send(pool, std::move(again), absl::OkStatus());
    }
  }
  Finish(std::move(request), ToResult(std::move(raw)), wait.get());
}

void RedisClient::Finish(std::unique_ptr<Request> request, absl::StatusOr<Reply> result,
                         WaitState* wait) {
  if (wait != nullptr && result.ok()) {
    // The write went through: its WAIT, next on the same connection, decides.
    wait->callback = std::move(request->callback);
    wait->result = std::move(result);
    return;
  }
  request->callback(std::move(result));
}

void RedisClient::OnWaitReply(WaitState& wait, absl::StatusOr<Reply> raw) {
  if (!wait.callback) return;  // the write failed or was resent: its own answer stands
  Callback callback = std::move(wait.callback);
  if (raw.ok() && raw->is_integer() && raw->integer >= options_.wait_replicas) {
    return callback(std::move(wait.result));
  }
  wait_failures_.fetch_add(1, std::memory_order_relaxed);
  std::string why;
  if (!raw.ok()) {
    why = std::string(raw.status().message());
  } else if (raw->is_integer()) {
    why = absl::StrCat(raw->integer, " did");
  } else {
    why = raw->is_error() ? raw->str : "unexpected WAIT reply";
  }
  callback(absl::UnavailableError(absl::StrCat(
      "redis: write not confirmed by ", options_.wait_replicas, " replicas within ",
      absl::FormatDuration(options_.wait_timeout), " (", why, ")")));
}

void RedisClient::RetryLater(std::unique_ptr<Request> request, absl::Status why) {
  request->moved_from.clear();  // the backoff ends any MOVED run (FollowRedirect)
  const absl::Duration delay =
      std::min(options_.backoff_max, options_.backoff_initial * (1 << std::min(request->sends, 6)));
  if (request->sends >= kMaxSends || absl::Now() + delay >= request->deadline ||
      closing_.load()) {
    return request->callback(std::move(why));
  }
  retries_.fetch_add(1, std::memory_order_relaxed);
  if (RedisMetrics* m = metrics()) m->Retry();
  RequestRefresh();
  asio::post(*io_, [this, delay, request = std::move(request)]() mutable {
    auto timer = std::make_shared<asio::steady_timer>(*io_);
    retry_timers_.insert(timer.get());
    timer->expires_after(absl::ToChronoNanoseconds(delay));
    timer->async_wait([this, timer, request = std::move(request)](
                          const boost::system::error_code&) mutable {
      retry_timers_.erase(timer.get());
      if (closing_.load()) {
        return request->callback(absl::UnavailableError("redis: client closed"));
      }
      NodePool* pool = request->pinned;
      if (pool == nullptr) {
        absl::ReaderMutexLock lock(&map_mu_);
        pool = RouteLocked(request->command);
      }
      Requests again;
      again.push_back(std::move(request));
      Send(pool, std::move(again),
           absl::UnavailableError("redis: no master known for the command's slot"));
    });
  });
}

absl::Status RedisClient::RefusalStatus(const absl::Status& last_refusal) const {
  if (absl::StrContains(last_refusal.message(), "overloaded")) return last_refusal;
  absl::Status last = last_error();
  if (sentinel_ != nullptr) {
    const std::optional<RedisNode> master = sentinel_->master();
    return absl::UnavailableError(absl::StrCat(
        "redis: no connection to the master \"", options_.sentinel_master, "\" (",
        master.has_value() ? absl::StrCat("at ", NodeName(*master)) : "none known",
        last.ok() ? std::string(", connecting") : absl::StrCat(": ", last.message()), ")"));
  }
  return absl::UnavailableError(absl::StrCat(
      "redis: not connected to ", options_.Describe(),
      last.ok() ? std::string(" (connecting)") : absl::StrCat(" (", last.message(), ")")));
}

std::vector<std::string> RedisClient::MasterAddresses() const {
  if (sentinel_ != nullptr) {
    const std::optional<RedisNode> master = sentinel_->master();
    if (!master.has_value()) return {};
    return {NodeName(*master)};
  }
  absl::ReaderMutexLock lock(&map_mu_);
  std::vector<std::string> out;
  for (NodePool* pool : masters_) out.push_back(pool->address);
  return out;
}

void RedisClient::ExecuteBatchOn(const std::string& master, std::vector<RedisCommand> commands,
                                 BatchCallback callback) {
  NodePool* pool = nullptr;
  if (sentinel_ != nullptr) {
    // The one pool, while it points at that master.
    const std::vector<std::string> now = MasterAddresses();
    if (!now.empty() && now.front() == master) {
      absl::ReaderMutexLock lock(&map_mu_);
      pool = masters_.front();
    }
  } else {
    absl::ReaderMutexLock lock(&map_mu_);
    for (NodePool* p : masters_) {
      if (p->address == master) pool = p;
    }
  }
  if (pool == nullptr) {
    callback(std::vector<absl::StatusOr<Reply>>(
        commands.size(), absl::UnavailableError(absl::StrCat("redis: no master ", master))));
    return;
  }
  if (commands.empty()) {
    callback({});
    return;
  }
  std::vector<Callback> callbacks = GatherCallbacks(commands.size(), std::move(callback));
  Dispatch(std::move(commands), std::move(callbacks), pool);
}

void RedisClient::SetLatency(const NodePool& pool, RedisNodeInfo* node) {
  const uint64_t replies = pool.replies.load(std::memory_order_relaxed);
  const int64_t last = pool.last_rtt_ns.load(std::memory_order_relaxed);
  if (replies == 0 || last < 0) return;
  node->mean_latency =
      absl::Nanoseconds(pool.rtt_sum_ns.load(std::memory_order_relaxed)) / replies;
  node->last_latency = absl::Nanoseconds(last);
}

RedisTopologyInfo RedisClient::topology() const {
  RedisTopologyInfo info;
  info.mode = options_.topology;
  if (sentinel_ != nullptr) {
    const std::string subscribed = sentinel_->subscribed_to();
    for (const RedisNode& s : options_.nodes) {
      RedisNodeInfo node;
      node.address = NodeName(s);
      node.role = "sentinel";
      node.connected = node.address == subscribed;  // the +switch-master link
      info.nodes.push_back(std::move(node));
    }
    if (const std::optional<RedisNode> master = sentinel_->master(); master.has_value()) {
      info.master = NodeName(*master);
      RedisNodeInfo node;
      node.address = info.master;
      node.role = "master";
      node.connected = connected();
      {
        absl::ReaderMutexLock lock(&map_mu_);
        SetLatency(*masters_.front(), &node);  // the one pool, re-pointed on a failover
      }
      info.nodes.push_back(std::move(node));
    }
    return info;
  }
  absl::ReaderMutexLock lock(&map_mu_);
  if (!cluster()) {
    RedisNodeInfo node;
    node.address = masters_.front()->address;
    node.connected = connected();
    SetLatency(*masters_.front(), &node);
    info.nodes.push_back(std::move(node));
    return info;
  }
  info.nodes = map_nodes_;
  for (RedisNodeInfo& node : info.nodes) {
    auto pool = pools_.find(node.address);
    node.connected = pool != pools_.end() && pool->second->ready.load() > 0;
    if (pool != pools_.end()) SetLatency(*pool->second, &node);
  }
  info.slots_covered = slots_covered_;
  return info;
}

absl::StatusOr<Reply> RedisClient::Call(RedisCommand command) {
  std::vector<RedisCommand> commands;
  commands.push_back(std::move(command));
  std::vector<absl::StatusOr<Reply>> results = CallBatch(std::move(commands));
  return std::move(results.front());
}

std::vector<absl::StatusOr<Reply>> RedisClient::CallBatch(std::vector<RedisCommand> commands) {
  const size_t n = commands.size();
  return AwaitBatch(n, [&](BatchCallback done) {
    ExecuteBatch(std::move(commands), std::move(done));
  });
}

std::vector<absl::StatusOr<Reply>> RedisClient::CallBatchOn(const std::string& master,
                                                            std::vector<RedisCommand> commands) {
  const size_t n = commands.size();
  return AwaitBatch(n, [&](BatchCallback done) {
    ExecuteBatchOn(master, std::move(commands), std::move(done));
  });
}

std::vector<absl::StatusOr<Reply>> RedisClient::AwaitBatch(
    size_t n, absl::FunctionRef<void(BatchCallback)> submit) {
  if (std::this_thread::get_id() == io_thread_id_) {
    return std::vector<absl::StatusOr<Reply>>(
        n, absl::FailedPreconditionError("redis: blocking call on the I/O thread"));
  }
  struct Sync {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    std::vector<absl::StatusOr<Reply>> results ABSL_GUARDED_BY(mu);
  };
  auto sync = std::make_shared<Sync>();
  submit([sync](std::vector<absl::StatusOr<Reply>> results) {
    absl::MutexLock lock(&sync->mu);
    sync->results = std::move(results);
    sync->done = true;
  });
  // Every command completes by its timeout (or the connection's reset); the
  // bound below is a safety net, never the normal path. A NOSCRIPT reload or
  // a redirect adds a command time; retries start within the first one.
  const absl::Duration bound = 3 * options_.command_timeout + absl::Seconds(5);
  absl::MutexLock lock(&sync->mu);
  if (!sync->mu.AwaitWithTimeout(absl::Condition(&sync->done), bound)) {
    return std::vector<absl::StatusOr<Reply>>(
        n, absl::UnavailableError("redis: no completion within the safety bound"));
  }
  return std::move(sync->results);
}

bool RedisClient::WaitConnected(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&notified_connected_), timeout);
  return notified_connected_;
}

absl::Status RedisClient::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

void RedisClient::SetStateListener(StateListener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

void RedisClient::OnPoolReady(NodePool* pool, bool ready) {
  pool->ready.fetch_add(ready ? 1 : -1, std::memory_order_acq_rel);
  ready_connections_.fetch_add(ready ? 1 : -1, std::memory_order_acq_rel);
  UpdateConnected();
  // A node came up (the map may be unknown yet) or a connection was lost
  // (its node may have failed over): read the map again now.
  if (cluster() && !closing_.load() && (!ready || !connected())) RequestRefresh();
}

void RedisClient::UpdateConnected() {
  bool now;
  if (!cluster()) {
    now = ready_connections_.load(std::memory_order_acquire) > 0;
  } else {
    absl::ReaderMutexLock lock(&map_mu_);
    now = slots_covered_ == kClusterSlots &&
          std::all_of(masters_.begin(), masters_.end(),
                      [](NodePool* p) { return p->ready.load(std::memory_order_acquire) > 0; });
  }
  const bool before = connected_.exchange(now, std::memory_order_acq_rel);
  absl::Status error;
  {
    absl::MutexLock lock(&mu_);
    notified_connected_ = now;
    error = last_error_;
  }
  if (before != now) Notify(now, error);
}

void RedisClient::OnConnectionError(const absl::Status& error) {
  bool changed;
  {
    absl::MutexLock lock(&mu_);
    changed = error.message() != last_error_.message();
    last_error_ = error;
  }
  if (changed) Notify(connected(), error);
}

void RedisClient::OnMaster(const std::optional<RedisNode>& master, const absl::Status& error) {
  // On the I/O thread (the monitor's listener). Every connection moves, live
  // or not: what is in flight on the old master fails UNAVAILABLE.
  if (master != current_master_) {
    const std::string from = current_master_.has_value() ? NodeName(*current_master_) : "none";
    const std::string to = master.has_value() ? NodeName(*master) : "none";
    const bool moved = current_master_.has_value() && master.has_value();
    current_master_ = master;
    const absl::Status why = absl::UnavailableError(absl::StrCat(
        "redis: the master \"", options_.sentinel_master, "\" moved from ", from, " to ", to,
        "; connection reset"));
    NodePool* pool;
    {
      absl::ReaderMutexLock lock(&map_mu_);
      pool = masters_.front();
    }
    for (auto& c : pool->connections) {
      c->SetMaster(master);
      c->Reset(why);
    }
    if (moved) {
      master_changes_.fetch_add(1, std::memory_order_relaxed);
      if (RedisMetrics* m = metrics()) m->MasterChanged();
    }
  }
  if (!error.ok()) OnConnectionError(error);
}

void RedisClient::OnNotMaster(NodePool* pool) {
  // On the I/O thread. The pool's other connections trust the same node from
  // an earlier handshake: drop the ready ones (the rest are already
  // retrying, with their backoff, and check ROLE when they connect).
  if (sentinel_ == nullptr) return;
  const absl::Status why = absl::UnavailableError(absl::StrCat(
      "redis: the node in use is no longer the master \"", options_.sentinel_master,
      "\"; connection reset"));
  for (auto& c : pool->connections) {
    if (c->ready()) c->Reset(why);
  }
  sentinel_->Refresh();
}

void RedisClient::Notify(bool connected, const absl::Status& error) {
  StateListener listener;
  {
    absl::MutexLock lock(&mu_);
    listener = listener_;
  }
  if (listener) listener(connected, error);
}

RedisClientStats RedisClient::stats() const {
  RedisClientStats s;
  s.batches_written = counters_->batches_written.load();
  s.commands_written = counters_->commands_written.load();
  s.replies = counters_->replies.load();
  s.connects = counters_->connects.load();
  s.connect_failures = counters_->connect_failures.load();
  s.disconnects = counters_->disconnects.load();
  s.command_timeouts = counters_->command_timeouts.load();
  s.protocol_errors = counters_->protocol_errors.load();
  s.script_loads = script_loads_.load();
  s.rejected = rejected_.load();
  s.redirects_moved = moved_.load();
  s.redirects_ask = asks_.load();
  s.topology_refreshes = refreshes_.load();
  s.retries = retries_.load();
  s.wait_failures = wait_failures_.load();
  s.master_changes = master_changes_.load();
  s.ready_connections = ready_connections_.load();
  return s;
}

}  // namespace stateside::redis

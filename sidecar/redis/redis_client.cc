// RedisClient: connection pool, dispatch, NOSCRIPT reload, blocking helpers.
#include "sidecar/redis/redis_client.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/redis/connection.h"
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

// ---- Observer ---------------------------------------------------------------

class RedisClient::ObserverImpl final : public Connection::Observer {
 public:
  explicit ObserverImpl(RedisClient* client) : client_(client) {}
  void OnReadyChanged(bool ready) override { client_->OnReadyChanged(ready); }
  void OnConnectionError(const absl::Status& error) override {
    client_->OnConnectionError(error);
  }
  void OnCommandTimeout() override { client_->OnCommandTimeout(); }
  void OnNotMaster() override { client_->OnNotMaster(); }
  void OnBatchWritten(size_t commands) override {
    if (RedisMetrics* m = client_->metrics_.load(std::memory_order_acquire)) {
      m->BatchWritten(commands);
    }
  }
  void OnReply(std::chrono::nanoseconds rtt) override {
    if (RedisMetrics* m = client_->metrics_.load(std::memory_order_acquire)) {
      m->CommandDone(absl::FromChrono(rtt));
    }
  }
  void OnError(std::string_view kind) override {
    if (RedisMetrics* m = client_->metrics_.load(std::memory_order_acquire)) {
      m->Error(kind);
    }
  }

 private:
  RedisClient* const client_;
};

// ---- RedisClient ------------------------------------------------------------

RedisClient::RedisClient(RedisOptions options)
    : options_(std::move(options)),
      io_(std::make_unique<asio::io_context>(1)),
      counters_(std::make_unique<ConnectionCounters>()),
      observer_(std::make_unique<ObserverImpl>(this)) {}

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
    return bad(absl::StrCat("the ", TopologyName(options.topology),
                            " topology is not supported by this build"));
  }
  if (options.wait_replicas < 0 || options.wait_timeout <= absl::ZeroDuration()) {
    return bad("wait_replicas must be >= 0 and wait_timeout positive");
  }
  std::unique_ptr<RedisClient> client(new RedisClient(std::move(options)));
  if (absl::Status s = client->Init(); !s.ok()) return s;
  return client;
}

absl::Status RedisClient::Init() {
  auto factory = TransportFactory::Create(io_.get(), options_);
  if (!factory.ok()) return factory.status();
  factory_ = *std::move(factory);
  for (int i = 0; i < options_.connections; ++i) {
    connections_.push_back(std::make_unique<Connection>(i, io_.get(), factory_.get(), &options_,
                                                        counters_.get(), observer_.get()));
  }
  if (options_.topology == RedisTopology::kSentinel) {
    // No master yet: the connections wait for the monitor's first answer.
    for (auto& c : connections_) c->SetMaster(std::nullopt);
    sentinel_ = std::make_unique<SentinelMonitor>(
        io_.get(), factory_.get(), options_,
        [this](const std::optional<RedisNode>& master, const absl::Status& error) {
          OnMaster(master, error);
        });
    asio::post(*io_, [this] { sentinel_->Start(); });
  }
  for (auto& c : connections_) {
    Connection* conn = c.get();
    asio::post(*io_, [conn] { conn->Start(); });
  }
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
  // Shutdown answers everything outstanding; handlers still queued after
  // stop() only hold stale generations and are destroyed with the context.
  asio::post(*io_, [this] {
    if (sentinel_ != nullptr) sentinel_->Shutdown();
    for (auto& c : connections_) c->Shutdown();
    io_->stop();
  });
  thread_.join();
}

void RedisClient::Execute(RedisCommand command, Callback callback) {
  std::vector<RedisCommand> commands;
  commands.push_back(std::move(command));
  std::vector<Callback> callbacks;
  callbacks.push_back(std::move(callback));
  Dispatch(std::move(commands), std::move(callbacks));
}

void RedisClient::ExecuteBatch(std::vector<RedisCommand> commands, BatchCallback callback) {
  if (commands.empty()) {
    callback({});
    return;
  }
  // Results gather on the I/O thread (or all inline on refusal), so the
  // shared state needs no lock.
  struct Gather {
    std::vector<absl::StatusOr<Reply>> results;
    size_t remaining;
    BatchCallback done;
  };
  auto gather = std::make_shared<Gather>();
  gather->results.resize(commands.size(), absl::UnknownError("no reply"));
  gather->remaining = commands.size();
  gather->done = std::move(callback);
  std::vector<Callback> callbacks;
  callbacks.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    callbacks.push_back([gather, i](absl::StatusOr<Reply> r) {
      gather->results[i] = std::move(r);
      if (--gather->remaining == 0) gather->done(std::move(gather->results));
    });
  }
  Dispatch(std::move(commands), std::move(callbacks));
}

void RedisClient::Dispatch(std::vector<RedisCommand> commands, std::vector<Callback> callbacks) {
  Connection::Batch batch;
  batch.callbacks.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    RedisCommand& command = commands[i];
    AppendCommand(command.args, &batch.bytes);
    if (command.script == nullptr) {
      batch.callbacks.push_back([cb = std::move(callbacks[i])](absl::StatusOr<Reply> raw) mutable {
        cb(ToResult(std::move(raw)));
      });
      continue;
    }
    // Keep the arguments only for scripts: a NOSCRIPT answer re-sends them.
    batch.callbacks.push_back([this, script = std::move(command.script),
                               args = std::move(command.args),
                               cb = std::move(callbacks[i])](absl::StatusOr<Reply> raw) mutable {
      if (raw.ok() && raw->is_error() && HasPrefixWord(raw->str, "NOSCRIPT")) {
        return Reload(std::move(script), std::move(args), std::move(cb));
      }
      cb(ToResult(std::move(raw)));
    });
  }
  const size_t n = connections_.size();
  const uint64_t start = next_connection_.fetch_add(1, std::memory_order_relaxed);
  absl::Status refusal;
  for (size_t i = 0; i < n; ++i) {
    refusal = connections_[(start + i) % n]->Submit(batch);
    if (refusal.ok()) return;
  }
  rejected_.fetch_add(batch.callbacks.size(), std::memory_order_relaxed);
  const absl::Status error = RefusalStatus(refusal);
  for (auto& cb : batch.callbacks) cb(error);
}

absl::Status RedisClient::RefusalStatus(const absl::Status& last_refusal) const {
  if (connected() && absl::StrContains(last_refusal.message(), "overloaded")) {
    return last_refusal;
  }
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

void RedisClient::Reload(std::shared_ptr<const RedisScript> script, std::vector<std::string> args,
                         Callback callback) {
  script_loads_.fetch_add(1, std::memory_order_relaxed);
  std::vector<RedisCommand> commands;
  commands.push_back(RedisCommand({"SCRIPT", "LOAD", script->source()}));
  commands.push_back(RedisCommand(std::move(args)));  // no script: one retry only
  std::vector<Callback> callbacks;
  callbacks.push_back([](absl::StatusOr<Reply>) {});  // the retry's reply tells
  callbacks.push_back(std::move(callback));
  Dispatch(std::move(commands), std::move(callbacks));
}

namespace {
std::string NodeAddress(const RedisOptions& options) {
  return options.unix_path.empty() ? absl::StrCat(options.host, ":", options.port)
                                   : options.unix_path;
}
}  // namespace

std::vector<std::string> RedisClient::MasterAddresses() const {
  if (sentinel_ != nullptr) {
    const std::optional<RedisNode> master = sentinel_->master();
    if (!master.has_value()) return {};
    return {NodeName(*master)};
  }
  return {NodeAddress(options_)};
}

void RedisClient::ExecuteBatchOn(const std::string& master, std::vector<RedisCommand> commands,
                                 BatchCallback callback) {
  const std::vector<std::string> masters = MasterAddresses();
  if (masters.empty() || master != masters.front()) {
    callback(std::vector<absl::StatusOr<Reply>>(
        commands.size(), absl::UnavailableError(absl::StrCat("redis: no master ", master))));
    return;
  }
  ExecuteBatch(std::move(commands), std::move(callback));
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
      info.nodes.push_back(std::move(node));
    }
    return info;
  }
  RedisNodeInfo node;
  node.address = NodeAddress(options_);
  node.connected = connected();
  info.nodes.push_back(std::move(node));
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
  ExecuteBatch(std::move(commands), [sync](std::vector<absl::StatusOr<Reply>> results) {
    absl::MutexLock lock(&sync->mu);
    sync->results = std::move(results);
    sync->done = true;
  });
  // Every command completes by its timeout (or the connection's reset); the
  // bound below is a safety net, never the normal path. A NOSCRIPT reload
  // adds a second command time.
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
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return notified_ready_ > 0; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  return notified_ready_ > 0;
}

absl::Status RedisClient::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

void RedisClient::SetStateListener(StateListener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

void RedisClient::OnReadyChanged(bool ready) {
  const int before = ready_connections_.fetch_add(ready ? 1 : -1, std::memory_order_acq_rel);
  const int after = before + (ready ? 1 : -1);
  absl::Status error;
  {
    absl::MutexLock lock(&mu_);
    notified_ready_ = after;
    error = last_error_;
  }
  if ((before == 0) != (after == 0)) Notify(after > 0, error);
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

void RedisClient::OnCommandTimeout() {
  // On the I/O thread, so probing is direct. The connection that timed out
  // is busy failing; Probe skips it (it is no longer ready).
  for (auto& c : connections_) c->Probe();
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
    for (auto& c : connections_) {
      c->SetMaster(master);
      c->Reset(why);
    }
    if (moved) {
      master_changes_.fetch_add(1, std::memory_order_relaxed);
      if (RedisMetrics* m = metrics_.load(std::memory_order_acquire)) m->MasterChanged();
    }
  }
  if (!error.ok()) OnConnectionError(error);
}

void RedisClient::OnNotMaster() {
  // On the I/O thread. The other connections trust the same node from an
  // earlier handshake: drop the ready ones (the rest are already retrying,
  // with their backoff, and check ROLE when they connect).
  if (sentinel_ == nullptr) return;
  const absl::Status why = absl::UnavailableError(absl::StrCat(
      "redis: the node in use is no longer the master \"", options_.sentinel_master,
      "\"; connection reset"));
  for (auto& c : connections_) {
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
  s.master_changes = master_changes_.load();
  s.ready_connections = ready_connections_.load();
  return s;
}

}  // namespace stateside::redis

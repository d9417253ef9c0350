// Server: building the parts, starting and stopping them.
#include "sidecar/server/server.h"

#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/redis/key_check.h"
#include "sidecar/redis/redis_broker.h"
#include "sidecar/redis/redis_instance_registry.h"
#include "sidecar/redis/rewrap_sweep.h"
#include "sidecar/rpc/grpc_server.h"
#include "sidecar/server/signals.h"
#include "spdlog/spdlog.h"

namespace stateside {
namespace {

// What GetInstance reports: the configured deployment (a memory fallback in
// force shows in the instance's backend instead).
rpc::StoreTopology StoreTopologyOf(const RedisConfig& redis) {
  if (redis.url.empty()) return rpc::StoreTopology::kMemory;
  switch (redis.topology) {
    case redis::RedisTopology::kStandalone: return rpc::StoreTopology::kStandalone;
    case redis::RedisTopology::kSentinel: return rpc::StoreTopology::kSentinel;
    case redis::RedisTopology::kCluster: return rpc::StoreTopology::kCluster;
  }
  return rpc::StoreTopology::kStandalone;
}

// gRPC's own framing and the proto's field tags on top of the largest
// session a client may send.
constexpr size_t kMessageOverheadBytes = 64 * 1024;
// The largest valid Publish: the payload plus 1024 `except` entries of a
// 128-byte instance id and a 128-byte connection id with their framing.
constexpr size_t kMaxPublishBytes =
    realtime::kMaxPayloadBytes + realtime::kMaxExcept * (2 * 128 + 8);
constexpr size_t kEphemeralSecretBytes = 32;
constexpr size_t kAes256KeyBytes = 32;
// A registry record lives this many heartbeat intervals: one or two lost
// heartbeats (a Redis blip) do not drop a live instance.
constexpr int kHeartbeatsPerTtl = 3;
// How often stateside_sessions_live is refreshed (one count, or 65 pipelined
// sampling commands on Redis).
constexpr absl::Duration kLiveSessionsInterval = absl::Seconds(15);

absl::StatusOr<std::vector<crypto::KeySpec>> EphemeralKey(
    RandomSource& random) {
  ASSIGN_OR_RETURN(std::string bytes,
                   RandomBytes(random, kAes256KeyBytes));
  std::vector<crypto::KeySpec> keys;
  keys.push_back({"ephemeral", std::move(bytes)});
  return keys;
}

// The Redis client's reports, as metrics.
class RedisMetricsSink final : public redis::RedisMetrics {
 public:
  explicit RedisMetricsSink(admin::Metrics* metrics) : metrics_(metrics) {}
  void CommandDone(absl::Duration rtt) override {
    metrics_->RedisCommand(absl::ToDoubleSeconds(rtt));
  }
  void BatchWritten(size_t commands) override { metrics_->PipelineBatch(commands); }
  void Error(std::string_view kind) override { metrics_->RedisError(kind); }
  void MasterChanged() override { metrics_->RedisMasterChanged(); }
  void Redirect(std::string_view kind) override { metrics_->RedisRedirect(kind); }
  void TopologyRefresh() override { metrics_->RedisTopologyRefresh(); }
  void Retry() override { metrics_->RedisRetry(); }

 private:
  admin::Metrics* const metrics_;
};

SessionPolicy PolicyOf(const Config& config) {
  SessionPolicy policy;
  policy.idle_ttl = config.idle_ttl;
  policy.absolute_ttl = config.absolute_ttl;
  policy.limits.max_attributes = config.max_attributes;
  policy.limits.max_attribute_bytes = config.max_attribute_bytes;
  policy.limits.max_total_bytes = config.max_session_bytes;
  policy.limits.max_sessions_per_user = config.max_sessions_per_user;
  policy.limits.session_limit_policy = config.session_limit_end_oldest
                                           ? SessionLimitPolicy::kEndOldest
                                           : SessionLimitPolicy::kRefuse;
  return policy;
}

}  // namespace

Server::Server(Config config, ServerOptions options)
    : config_(std::move(config)),
      sweep_interval_(options.sweep_interval),
      clock_(options.clock != nullptr ? options.clock : &system_clock_),
      random_(options.random != nullptr ? std::move(options.random)
                                        : crypto::NewSecureRandom()),
      redis_up_(config_.redis.readiness_debounce),
      realtime_up_(config_.redis.readiness_debounce) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(
    Config config, lifecycle::InstanceIdentity identity, ServerOptions options) {
  std::unique_ptr<Server> server(new Server(std::move(config), std::move(options)));
  absl::Status status = server->Build(std::move(identity));
  WipeSecrets(server->config_);
  if (!status.ok()) return status;
  return server;
}

absl::Status Server::Build(lifecycle::InstanceIdentity identity) {
  spdlog::info("configuration: {}",
               config_.overrides.empty()
                   ? std::string("all defaults")
                   : absl::StrCat(absl::StrJoin(config_.overrides, ", "),
                                  "; the rest default"));
  for (const std::string& line : config_.summary) spdlog::debug("setting {}", line);
  for (const std::string& warning : config_.warnings) spdlog::warn("{}", warning);

  std::vector<crypto::KeySpec> keys = std::move(config_.encryption_keys);
  if (keys.empty()) {
    ASSIGN_OR_RETURN(keys, EphemeralKey(*random_));
    spdlog::warn(
        "no SESSION_ENCRYPTION_KEY: using an ephemeral key, sessions die with "
        "this process");
  }
  auto keyring = crypto::Keyring::Create(std::move(keys));
  if (!keyring.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SESSION_ENCRYPTION_KEY: ", keyring.status().message()));
  }
  keyring_ = *std::move(keyring);
  sealer_ = std::make_unique<crypto::Sealer>(keyring_.get(), random_.get(),
                                             &key_mismatches_);

  std::vector<std::string> secrets = std::move(config_.session_secrets);
  if (secrets.empty()) {
    ASSIGN_OR_RETURN(std::string secret,
                     RandomBytes(*random_, kEphemeralSecretBytes));
    secrets.push_back(std::move(secret));
    spdlog::warn(
        "no SESSION_SECRET: using an ephemeral cookie secret, cookies die "
        "with this process");
  }
  auto signer = crypto::CookieSigner::Create(std::move(secrets));
  if (!signer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SESSION_SECRET: ", signer.status().message()));
  }
  signer_ = *std::move(signer);

  if (!config_.admin_token.empty()) {
    auto verifier = crypto::SecretVerifier::Create(config_.admin_token, *random_);
    if (!verifier.ok()) return verifier.status();
    admin_token_ = *std::move(verifier);
  }

  admin::MetricsOptions metrics_options;
  metrics_options.instance_id = identity.id;
  metrics_options.version = identity.version;
  metrics_options.clock = clock_;
  metrics_ = std::make_unique<admin::Metrics>(std::move(metrics_options));
  session_events_ = std::make_unique<admin::MetricsSessionEvents>(metrics_.get());

  ASSIGN_OR_RETURN(backend_, MakeBackend(config_));
  session_manager_ = std::make_unique<SessionManager>(
      backend_.sessions.get(), sealer_.get(), signer_.get(), random_.get(),
      clock_, PolicyOf(config_), session_events_.get());
  opt_out_manager_ = std::make_unique<OptOutManager>(
      backend_.opt_outs.get(), keyring_.get(), clock_, config_.opt_out_ttl,
      sealer_.get(),
      [metrics = metrics_.get()](std::string_view key_id) { metrics->OptOutKeyRead(key_id); });

  instance_ = std::make_unique<lifecycle::Instance>(std::move(identity), clock_);
  instance_->set_backend(backend_.name);
  if (backend_.redis != nullptr) {
    redis_metrics_ = std::make_unique<RedisMetricsSink>(metrics_.get());
    backend_.redis->SetMetrics(redis_metrics_.get());
    registry_ = std::make_unique<redis::RedisInstanceRegistry>(
        backend_.redis.get(), config_.key_prefix,
        kHeartbeatsPerTtl * config_.heartbeat_interval);
    redis::RewrapOptions rewrap_options;
    rewrap_options.prefix = config_.key_prefix;
    rewrap_options.owner = instance_->id();
    rewrap_ = std::make_unique<redis::RewrapSweep>(backend_.redis.get(), sealer_.get(), clock_,
                                                   std::move(rewrap_options));
  }

  if (backend_.redis != nullptr) {
    redis::RedisBrokerOptions broker_options;
    broker_options.prefix = config_.key_prefix;
    broker_options.instance_id = instance_->id();
    broker_options.sealer = sealer_.get();
    broker_options.keyring = keyring_.get();
    // Presence dies with the instance record: both are refreshed by the
    // heartbeat and live for the same number of heartbeats.
    broker_options.presence_ttl = kHeartbeatsPerTtl * config_.heartbeat_interval;
    broker_options.history_bytes = config_.room_history_bytes;
    ASSIGN_OR_RETURN(std::unique_ptr<redis::RedisBroker> broker,
                     redis::RedisBroker::Create(backend_.redis.get(), broker_options));
    redis_broker_ = broker.get();
    broker_ = std::move(broker);
  } else {
    realtime::MemoryClusterOptions cluster_options;
    cluster_options.history_bytes = config_.room_history_bytes;
    realtime_cluster_ = std::make_unique<realtime::MemoryCluster>(clock_, cluster_options);
    broker_ = realtime_cluster_->NewBroker(instance_->id());
  }
  realtime_events_ = std::make_unique<MetricsRealtimeEvents>(metrics_.get());
  realtime::HubOptions hub_options;
  hub_options.instance_id = instance_->id();
  hub_options.max_rooms_per_connection = config_.max_rooms_per_connection;
  hub_options.publish_rate_per_user = static_cast<double>(config_.publish_rate_per_user);
  hub_options.publish_burst_per_user = static_cast<double>(config_.publish_burst_per_user);
  hub_ = std::make_unique<realtime::RealtimeHub>(hub_options, broker_.get(), clock_,
                                                 realtime_events_.get());

  DrainOptions drain_options;
  drain_options.prestop_delay = config_.prestop_delay;
  drain_options.drain_timeout = config_.drain_timeout;
  drain_options.shutdown_timeout = config_.shutdown_timeout;
  actions_ = NewDrainActions();
  drain_ = std::make_unique<DrainController>(clock_, drain_options, actions_.get());
  ticker_ = std::make_unique<DrainTicker>(drain_.get(), clock_);
  if (backend_.redis != nullptr && backend_.redis->connected()) {
    // Last, so that a refusal leaves a whole Server to destroy. At start a
    // mismatch is fatal (exit 2): the configuration is wrong, and
    // serving would only fail every session the other instances wrote. A
    // check that cannot run is repeated when the connection comes back.
    absl::StatusOr<std::vector<std::string>> mismatched =
        redis::CheckKeys(backend_.redis.get(), config_.key_prefix, *keyring_);
    OnKeyCheck(mismatched);
    keys_checked_at_build_ = mismatched.ok();
    if (mismatched.ok() && !mismatched->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "SESSION_ENCRYPTION_KEYS: key id ", absl::StrJoin(*mismatched, ", "),
          " names other key bytes than on the sidecars that wrote its key "
          "check value to Redis (", redis::KeyCheckKey(config_.key_prefix, "<id>"),
          "): give every instance the same key under an id"));
    }
  }
  return absl::OkStatus();
}

Server::~Server() {
  // First nothing new: no shutdown work starts from here on, and Stop ends
  // gRPC and the admin listener (whose requests poke the ticker). Then wait
  // for shutdown work already running, then stop ticking.
  {
    absl::MutexLock lock(&mu_);
    destroying_ = true;
  }
  Stop(absl::ZeroDuration());
  std::thread shutdown;
  {
    absl::MutexLock lock(&mu_);
    shutdown = std::move(shutdown_thread_);
  }
  if (shutdown.joinable()) shutdown.join();
  ticker_.reset();
  // The hub stops its broker; the broker uses the Redis client.
  hub_.reset();
  broker_.reset();
  realtime_cluster_.reset();
  // The rewrap sweep's thread calls the Redis client: ended before it.
  rewrap_.reset();
  // The Redis client's I/O thread may call back into this object (the state
  // listener): end it while everything it touches is still alive.
  backend_ = Backend();
}

absl::Status Server::Start() {
  RETURN_IF_ERROR(PrepareSocketPath(config_.socket_path));
  rpc::GrpcServerOptions options;
  options.socket_path = config_.socket_path;
  options.max_receive_message_bytes =
      std::max(config_.max_session_bytes, kMaxPublishBytes) + kMessageOverheadBytes;
  rpc::GrpcServices services;
  services.sessions = session_manager_.get();
  services.opt_outs = opt_out_manager_.get();
  services.instance = instance_.get();
  services.drain = drain_.get();
  services.poke = [ticker = ticker_.get()] { ticker->Poke(); };
  services.metrics = metrics_.get();
  services.registry = registry_.get();
  services.realtime_hub = hub_.get();
  services.realtime_broker = broker_.get();
  services.topology = StoreTopologyOf(config_.redis);
  hub_->Start();
  // The socket is born 0660 (no window in which others could connect);
  // chmod below makes sure whatever the library did. umask is per process,
  // and at this point of the start no other thread creates files.
  options.external_listener = !config_.allowed_uids.empty();
  options.refused_message =
      "permission denied: this process's uid is not in the sidecar's STATESIDE_ALLOWED_UIDS";
  const mode_t old_umask = umask(0117);
  std::unique_ptr<PeerGate> gate;
  if (options.external_listener) {
    auto listening = PeerGate::Listen(config_.socket_path, config_.allowed_uids);
    if (!listening.ok()) {
      umask(old_umask);
      return listening.status();
    }
    gate = *std::move(listening);
  }
  auto grpc = rpc::GrpcServer::Start(options, services);
  umask(old_umask);
  if (!grpc.ok()) return grpc.status();
  auto socket_file = RestrictSocketFile(config_.socket_path);
  if (!socket_file.ok()) {
    (*grpc)->Shutdown(absl::Now());
    return socket_file.status();
  }
  socket_file_ = *socket_file;
  std::shared_ptr<rpc::GrpcServer> server = *std::move(grpc);
  if (gate != nullptr) {
    // The handoff keeps the gRPC server alive; Stop ends the gate first.
    gate->Start([server](int fd, bool allowed) {
      if (allowed) {
        server->AdoptConnection(fd);
      } else {
        server->RefuseConnection(fd);
      }
    });
    gate_ = std::move(gate);
  }
  {
    absl::MutexLock lock(&mu_);
    grpc_ = std::move(server);
  }
  if (absl::Status admin = StartAdmin(); !admin.ok()) {
    Stop(absl::ZeroDuration());
    return admin;
  }
  if (backend_.sweep) {
    sweeper_ = std::make_unique<PeriodicTask>(
        sweep_interval_, [sweep = backend_.sweep, clock = clock_] {
          const size_t dropped = sweep(clock->Now());
          if (dropped > 0) spdlog::debug("sweep dropped {} expired entries", dropped);
        });
  }
  if (backend_.live_sessions) {
    UpdateLiveSessions();
    live_sessions_ = std::make_unique<PeriodicTask>(kLiveSessionsInterval,
                                                    [this] { UpdateLiveSessions(); });
  }
  if (backend_.redis != nullptr) {
    // Readiness follows Redis: not ready while no connection is usable
    // (fail closed); the client reconnects by itself.
    backend_.redis->SetStateListener(
        [this](bool connected, const absl::Status& error) {
          OnRedisState(connected, error);
        });
    metrics_->SetRedisConnected(backend_.redis->connected());
    if (!keys_checked_at_build_ && backend_.redis->connected()) {
      // Connected after Build without the listener seeing it.
      StartKeyCheck();
    }
  }
  if (redis_broker_ != nullptr) {
    // Readiness also waits for the realtime subscription: until it is up,
    // connections cannot be registered.
    redis_broker_->SetStateListener([this](bool subscribed) { OnRealtimeState(subscribed); });
  }
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    redis_up_.Report(backend_.redis == nullptr || backend_.redis->connected(), now);
    realtime_up_.Report(redis_broker_ == nullptr || redis_broker_->subscribed(), now);
  }
  if (backend_.redis != nullptr && config_.redis.readiness_debounce > absl::ZeroDuration()) {
    // A lost connection is reported at once, its expiry by nobody: look
    // again often enough that "not ready" lands within a tick of the debounce.
    readiness_recheck_ = std::make_unique<PeriodicTask>(
        std::clamp(config_.redis.readiness_debounce / 10, absl::Milliseconds(20),
                   absl::Milliseconds(200)),
        [this] { RecheckReadiness(); });
  }
  SetReady(true);
  if (registry_ != nullptr) {
    bool register_now = false;
    {
      absl::MutexLock lock(&mu_);
      // A drain may already have deregistered this instance: stay out.
      register_now = registered_ = !deregistered_;
    }
    if (register_now) Heartbeat();  // listed at once, not one interval later
    absl::MutexLock lock(&mu_);
    if (!deregistered_) {
      heartbeat_ = std::make_unique<PeriodicTask>(config_.heartbeat_interval,
                                                  [this] { Heartbeat(); });
    }
  }
  spdlog::info("stateside {} serving on unix:{} (backend {}, pid {})",
               instance_->identity().version, config_.socket_path,
               backend_.name, instance_->identity().pid);
  return absl::OkStatus();
}

absl::Status Server::Run() {
  RETURN_IF_ERROR(Start());
  // The controller decides what each signal means (drain, fast shutdown,
  // forced exit); this thread only reports them.
  auto watcher = SignalWatcher::Start([this](int signo) {
    const std::string name = absl::StrCat("SIG", sigabbrev_np(signo));
    spdlog::info("received {}", name);
    drain_->OnSignal(name);
    ticker_->Poke();
  });
  if (!watcher.ok()) {
    Stop(absl::ZeroDuration());
    return watcher.status();
  }
  WaitForStopped();
  Stop(absl::ZeroDuration());  // gRPC is already shut down by the drain
  return absl::OkStatus();
}

void Server::RequestShutdown() {
  drain_->StartDrain("shutdown requested");
  ticker_->Poke();
}

bool Server::WaitForShutdownRequest(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](bool* requested) { return *requested; }, &shutdown_requested_),
      timeout);
}

bool Server::WaitForStopped(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(+[](bool* stopped) { return *stopped; }, &stopped_),
      timeout);
}

void Server::SetReady(bool ready) {
  absl::MutexLock lock(&mu_);
  backend_ok_ = ready;
  ApplyReadyLocked();
}

bool Server::ReadyLocked() const {
  const absl::Time now = clock_->Now();
  return backend_ok_ && redis_up_.Up(now) && realtime_up_.Up(now) && keys_ok_ && !draining_;
}

void Server::ApplyReadyLocked() {
  const bool ready = ReadyLocked();
  instance_->set_ready(ready);
  if (grpc_ != nullptr) grpc_->SetServing(ready);
}

void Server::RecheckReadiness() {
  absl::MutexLock lock(&mu_);
  const bool ready = ReadyLocked();
  if (ready == instance_->ready()) return;
  if (!ready && !draining_ && backend_ok_) {
    const absl::Time now = clock_->Now();
    spdlog::warn(
        "redis unreachable for {} (STATESIDE_REDIS_READINESS_DEBOUNCE {}): not "
        "ready until it is back",
        absl::FormatDuration(std::max(redis_up_.DownFor(now), realtime_up_.DownFor(now))),
        absl::FormatDuration(config_.redis.readiness_debounce));
  }
  ApplyReadyLocked();
}

void Server::OnRedisState(bool connected, const absl::Status& error) {
  if (connected) {
    spdlog::info("redis connected");
  } else {
    spdlog::warn("redis unavailable: {}", std::string(error.message()));
  }
  metrics_->SetRedisConnected(connected);
  {
    absl::MutexLock lock(&mu_);
    if (connected && redis_was_down_) metrics_->RedisReconnected();
    redis_was_down_ = !connected;
    redis_up_.Report(connected, clock_->Now());
    ApplyReadyLocked();
  }
  if (connected) StartKeyCheck();
}

void Server::StartKeyCheck() {
  // Asynchronous: the caller may be the client's I/O thread.
  redis::CheckKeysAsync(backend_.redis.get(), config_.key_prefix, *keyring_,
                        [this](absl::StatusOr<std::vector<std::string>> mismatched) {
                          OnKeyCheck(mismatched);
                        });
}

void Server::OnKeyCheck(const absl::StatusOr<std::vector<std::string>>& mismatched) {
  if (!mismatched.ok()) {
    spdlog::warn("key check not done ({}): repeated when Redis reconnects",
                 std::string(mismatched.status().message()));
    return;
  }
  for (const std::string& id : *mismatched) {
    // The id only: never the key or its whole check value.
    spdlog::error(
        "key id {} names other key bytes on another instance (its key check "
        "value in Redis differs): envelopes under it will not open across "
        "instances; not ready until every instance holds the same key under "
        "{}",
        id, id);
  }
  key_mismatches_.Set(*mismatched);
  metrics_->SetKeyMismatches(mismatched->size());
  absl::MutexLock lock(&mu_);
  keys_ok_ = mismatched->empty();
  ApplyReadyLocked();
}

void Server::OnRealtimeState(bool subscribed) {
  if (subscribed) {
    spdlog::info("realtime subscription up");
  } else {
    spdlog::warn(
        "realtime subscription lost: not ready unless it is back within "
        "STATESIDE_REDIS_READINESS_DEBOUNCE ({})",
        absl::FormatDuration(config_.redis.readiness_debounce));
  }
  absl::MutexLock lock(&mu_);
  realtime_up_.Report(subscribed, clock_->Now());
  ApplyReadyLocked();
}

void Server::UpdateLiveSessions() {
  absl::StatusOr<int64_t> live = backend_.live_sessions();
  if (live.ok()) {
    metrics_->SetSessionsLive(*live);
    live_estimate_failing_.store(false);
  } else if (!live_estimate_failing_.exchange(true)) {
    spdlog::warn("stateside_sessions_live not updated: {} (keeps its last value)",
                 std::string(live.status().message()));
  }
}

void Server::Heartbeat() {
  // Realtime presence lives as long as the instance record does.
  const absl::Status refreshed = hub_->Refresh();
  if (refresh_failing_.exchange(!refreshed.ok()) != !refreshed.ok()) {
    if (!refreshed.ok()) {
      spdlog::warn("realtime presence refresh failed: {}", std::string(refreshed.message()));
    } else {
      spdlog::info("realtime presence refresh restored");
    }
  }
  const absl::Status status = registry_->Heartbeat(lifecycle::RecordOf(*instance_));
  const bool failing = !status.ok();
  if (heartbeat_failing_.exchange(failing) == failing) return;
  if (failing) {
    spdlog::warn("cluster registry heartbeat failed: {} (retrying every {})",
                 std::string(status.message()),
                 absl::FormatDuration(config_.heartbeat_interval));
  } else {
    spdlog::info("cluster registry heartbeat restored");
  }
}

void Server::Deregister() {
  std::unique_ptr<PeriodicTask> heartbeat;
  {
    absl::MutexLock lock(&mu_);
    const bool was_listed = registered_ && !deregistered_;
    deregistered_ = true;
    if (!was_listed) return;
    heartbeat = std::move(heartbeat_);
  }
  heartbeat.reset();  // waits for a heartbeat in progress
  if (absl::Status s = registry_->Remove(instance_->id()); !s.ok()) {
    spdlog::warn("could not remove this instance from the cluster registry "
                 "(it expires within {}): {}",
                 absl::FormatDuration(kHeartbeatsPerTtl * config_.heartbeat_interval),
                 std::string(s.message()));
  } else {
    spdlog::info("removed from the cluster registry");
  }
}

void Server::ShutdownRealtime() {
  // No hub: Build failed before it (the destructor of a refused Server).
  if (hub_ == nullptr || realtime_shut_down_.exchange(true)) return;
  if (absl::Status s = hub_->Shutdown(); !s.ok()) {
    spdlog::warn("could not remove this instance's realtime presence (other instances "
                 "drop it within {}): {}",
                 absl::FormatDuration(kHeartbeatsPerTtl * config_.heartbeat_interval),
                 std::string(s.message()));
  } else {
    spdlog::info("realtime connections removed from the cluster");
  }
}

void Server::Stop(absl::Duration grace) {
  Deregister();
  ShutdownRealtime();
  if (gate_ != nullptr) {
    gate_->Stop();  // no new connections; those handed off end with gRPC
    gate_.reset();
  }
  std::shared_ptr<rpc::GrpcServer> grpc;
  {
    absl::MutexLock lock(&mu_);
    grpc = std::move(grpc_);
  }
  if (grpc == nullptr) return;
  if (backend_.redis != nullptr) backend_.redis->SetStateListener(nullptr);
  if (redis_broker_ != nullptr) redis_broker_->SetStateListener(nullptr);
  readiness_recheck_.reset();  // would set the instance ready again
  instance_->set_ready(false);
  grpc->Shutdown(absl::Now() + grace);
  grpc.reset();
  // Liveness answers until here: the process is about to end.
  if (admin_ != nullptr) {
    admin_->Stop();
    admin_.reset();
  }
  // No route can start it again now; its saved state lets the next start
  // (or another pod) resume it.
  if (rewrap_ != nullptr) rewrap_->Stop();
  sweeper_.reset();
  live_sessions_.reset();
  if (socket_file_.has_value()) {
    RemoveSocketFile(config_.socket_path, *socket_file_);
    socket_file_.reset();
  }
  spdlog::info("stopped; socket {} removed", config_.socket_path);
}

}  // namespace stateside

// Server: Create (the parts, the drain controller, the key check), Start,
// readiness, heartbeats and Stop. The drain is server_drain.cc.
#include "sidecar/server/server.h"

#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/redis/key_check.h"
#include "sidecar/redis/redis_broker.h"
#include "sidecar/redis/rewrap_sweep.h"
#include "proto/frames.h"
#include "sidecar/rpc/grpc_server.h"
#include "sidecar/rpc/operations.h"
#include "sidecar/server/frame_server.h"
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

// The Offload pool on Redis (see Start).
constexpr size_t kOffloadThreads = 4;
constexpr size_t kOffloadQueue = 1024;

// gRPC's own framing and the proto's field tags on top of the largest
// session a client may send.
constexpr size_t kMessageOverheadBytes = 64 * 1024;
// The largest valid Publish: the payload plus 1024 `except` entries of a
// 128-byte instance id and a 128-byte connection id with their framing.
constexpr size_t kMaxPublishBytes =
    realtime::kMaxPayloadBytes + realtime::kMaxExcept * (2 * 128 + 8);
// How often stateside_sessions_live is refreshed (one count, or 65 pipelined
// sampling commands on Redis).
constexpr absl::Duration kLiveSessionsInterval = absl::Seconds(15);

}  // namespace

Server::Server(Config config, std::unique_ptr<ServerParts> parts,
               absl::Duration sweep_interval)
    : config_(std::move(config)),
      sweep_interval_(sweep_interval),
      parts_(std::move(parts)),
      redis_up_(config_.redis.readiness_debounce),
      realtime_up_(config_.redis.readiness_debounce) {
  DrainOptions drain_options;
  drain_options.prestop_delay = config_.prestop_delay;
  drain_options.drain_timeout = config_.drain_timeout;
  drain_options.shutdown_timeout = config_.shutdown_timeout;
  actions_ = NewDrainActions();
  drain_ = std::make_unique<DrainController>(parts_->clock, drain_options, actions_.get());
  ticker_ = std::make_unique<DrainTicker>(drain_.get(), parts_->clock);
}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(
    Config config, lifecycle::InstanceIdentity identity, ServerOptions options) {
  const absl::Duration sweep_interval = options.sweep_interval;
  absl::StatusOr<std::unique_ptr<ServerParts>> parts =
      BuildParts(config, std::move(identity), std::move(options));
  WipeSecrets(config);
  if (!parts.ok()) return parts.status();
  std::unique_ptr<Server> server(
      new Server(std::move(config), *std::move(parts), sweep_interval));
  RETURN_IF_ERROR(server->CheckKeysAtStart());
  return server;
}

absl::Status Server::CheckKeysAtStart() {
  if (parts_->backend.redis != nullptr && parts_->backend.redis->connected()) {
    // Once the Server is whole, so that a refusal leaves it to destroy. A
    // mismatch is fatal (exit 2): the configuration is wrong, and
    // serving would only fail every session the other instances wrote. A
    // check that cannot run is repeated when the connection comes back.
    absl::StatusOr<std::vector<std::string>> mismatched =
        redis::CheckKeys(parts_->backend.redis.get(), config_.key_prefix, *parts_->keyring);
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
  // The Redis client's I/O thread may call back into this object (the state
  // listener, a key check, through parts_): its threads end while parts_
  // and everything they touch are still alive, then the parts go.
  parts_->StopThreads();
  parts_.reset();
}

absl::Status Server::Start() {
  RETURN_IF_ERROR(PrepareSocketPath(config_.socket_path));
  rpc::GrpcServerOptions options;
  options.socket_path = config_.socket_path;
  options.max_receive_message_bytes =
      std::max(config_.max_session_bytes, kMaxPublishBytes) + kMessageOverheadBytes;
  if (!config_.redis.url.empty()) {
    // The calls that still wait on Redis (offload.h) run on these, not on
    // gRPC's few callback threads. A handful: each waits a round trip or a
    // few, so 4 keep 4 such calls in flight; the queue bounds the rest.
    options.offload_threads = kOffloadThreads;
    options.offload_queue = kOffloadQueue;
  }
  rpc::GrpcServices services;
  services.sessions = parts_->session_manager.get();
  services.opt_outs = parts_->opt_out_manager.get();
  services.requests = parts_->request_ledger.get();
  services.instance = parts_->instance.get();
  services.drain = drain_.get();
  services.poke = [ticker = ticker_.get()] { ticker->Poke(); };
  services.metrics = parts_->metrics.get();
  services.registry = parts_->registry.get();
  services.realtime_hub = parts_->hub.get();
  services.realtime_broker = parts_->broker.get();
  services.session_changes = parts_->session_changes.get();
  services.topology = StoreTopologyOf(config_.redis);
  parts_->hub->Start();
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
  if (absl::Status frames = StartFrames(options.max_receive_message_bytes); !frames.ok()) {
    Stop(absl::ZeroDuration());
    return frames;
  }
  if (absl::Status admin = StartAdmin(); !admin.ok()) {
    Stop(absl::ZeroDuration());
    return admin;
  }
  if (parts_->backend.sweep) {
    sweeper_ = std::make_unique<PeriodicTask>(
        sweep_interval_, [sweep = parts_->backend.sweep, clock = parts_->clock] {
          const size_t dropped = sweep(clock->Now());
          if (dropped > 0) spdlog::debug("sweep dropped {} expired entries", dropped);
        });
  }
  if (parts_->backend.live_sessions) {
    UpdateLiveSessions();
    live_sessions_ = std::make_unique<PeriodicTask>(kLiveSessionsInterval,
                                                    [this] { UpdateLiveSessions(); });
  }
  if (parts_->backend.redis != nullptr) {
    // Readiness follows Redis: not ready while no connection is usable
    // (fail closed); the client reconnects by itself.
    parts_->backend.redis->SetStateListener(
        [this](bool connected, const absl::Status& error) {
          OnRedisState(connected, error);
        });
    parts_->metrics->SetRedisConnected(parts_->backend.redis->connected());
    if (!keys_checked_at_build_ && parts_->backend.redis->connected()) {
      // Connected after Build without the listener seeing it.
      StartKeyCheck();
    }
  }
  if (parts_->redis_broker != nullptr) {
    // Readiness also waits for the realtime subscription: until it is up,
    // connections cannot be registered.
    parts_->redis_broker->SetStateListener([this](bool subscribed) { OnRealtimeState(subscribed); });
  }
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = parts_->clock->Now();
    redis_up_.Report(parts_->backend.redis == nullptr || parts_->backend.redis->connected(), now);
    realtime_up_.Report(parts_->redis_broker == nullptr || parts_->redis_broker->subscribed(), now);
  }
  if (parts_->backend.redis != nullptr && config_.redis.readiness_debounce > absl::ZeroDuration()) {
    // A lost connection is reported at once, its expiry by nobody: look
    // again often enough that "not ready" lands within a tick of the debounce.
    readiness_recheck_ = std::make_unique<PeriodicTask>(
        std::clamp(config_.redis.readiness_debounce / 10, absl::Milliseconds(20),
                   absl::Milliseconds(200)),
        [this] { RecheckReadiness(); });
  }
  SetReady(true);
  if (parts_->registry != nullptr) {
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
               parts_->instance->identity().version, config_.socket_path,
               parts_->backend.name, parts_->instance->identity().pid);
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

void Server::SetReady(bool ready) {
  absl::MutexLock lock(&mu_);
  backend_ok_ = ready;
  ApplyReadyLocked();
}

bool Server::ReadyLocked() const {
  const absl::Time now = parts_->clock->Now();
  return backend_ok_ && redis_up_.Up(now) && realtime_up_.Up(now) && keys_ok_ && !draining_;
}

void Server::ApplyReadyLocked() {
  const bool ready = ReadyLocked();
  parts_->instance->set_ready(ready);
  if (grpc_ != nullptr) grpc_->SetServing(ready);
}

void Server::RecheckReadiness() {
  absl::MutexLock lock(&mu_);
  const bool ready = ReadyLocked();
  if (ready == parts_->instance->ready()) return;
  if (!ready && !draining_ && backend_ok_) {
    const absl::Time now = parts_->clock->Now();
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
  parts_->metrics->SetRedisConnected(connected);
  {
    absl::MutexLock lock(&mu_);
    if (connected && redis_was_down_) parts_->metrics->RedisReconnected();
    redis_was_down_ = !connected;
    redis_up_.Report(connected, parts_->clock->Now());
    ApplyReadyLocked();
  }
  if (connected) StartKeyCheck();
}

void Server::StartKeyCheck() {
  // Asynchronous: the caller may be the client's I/O thread.
  redis::CheckKeysAsync(parts_->backend.redis.get(), config_.key_prefix, *parts_->keyring,
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
  parts_->key_mismatches.Set(*mismatched);
  parts_->metrics->SetKeyMismatches(mismatched->size());
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
  realtime_up_.Report(subscribed, parts_->clock->Now());
  ApplyReadyLocked();
}

void Server::UpdateLiveSessions() {
  absl::StatusOr<int64_t> live = parts_->backend.live_sessions();
  if (live.ok()) {
    parts_->metrics->SetSessionsLive(*live);
    live_estimate_failing_.store(false);
  } else if (!live_estimate_failing_.exchange(true)) {
    spdlog::warn("stateside_sessions_live not updated: {} (keeps its last value)",
                 std::string(live.status().message()));
  }
}

void Server::Heartbeat() {
  // Realtime presence lives as long as the instance record does.
  const absl::Status refreshed = parts_->hub->Refresh();
  if (refresh_failing_.exchange(!refreshed.ok()) != !refreshed.ok()) {
    if (!refreshed.ok()) {
      spdlog::warn("realtime presence refresh failed: {}", std::string(refreshed.message()));
    } else {
      spdlog::info("realtime presence refresh restored");
    }
  }
  const absl::Status status = parts_->registry->Heartbeat(lifecycle::RecordOf(*parts_->instance));
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

// sun_path is 108 bytes with the NUL (as STATESIDE_SOCKET's limit).
constexpr size_t kMaxFrameSocketPathBytes = 107;

absl::Status Server::StartFrames(size_t max_frame_bytes) {
  if (!config_.frames) return absl::OkStatus();
  const std::string path = config_.socket_path + std::string(rpc::kFrameSocketSuffix);
  if (path.size() > kMaxFrameSocketPathBytes) {
    spdlog::warn("STATESIDE_FRAMES: {} is longer than a Unix socket path can be ({} bytes); "
                 "not serving the frame socket (clients use gRPC)",
                 path, kMaxFrameSocketPathBytes);
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(PrepareSocketPath(path));
  frame_ops_ = std::make_unique<rpc::Operations>(parts_->session_manager.get(), nullptr);
  // On Redis the frame socket is served on the Redis client's I/O thread,
  // where its calls' commands are written and their replies read: no thread
  // hop per batch of frames (frame_server.h). Stop shuts it down before the
  // client goes. The memory store's frame server runs its own thread.
  boost::asio::io_context* loop =
      parts_->backend.redis != nullptr ? &parts_->backend.redis->io_context() : nullptr;
  // Born 0660 like the gRPC socket (see Start).
  const mode_t old_umask = umask(0117);
  auto started = FrameServer::Start(path, config_.allowed_uids, frame_ops_.get(),
                                    parts_->metrics.get(), max_frame_bytes, loop);
  umask(old_umask);
  if (!started.ok()) return started.status();
  std::shared_ptr<FrameServer> frames = *std::move(started);
  auto file = RestrictSocketFile(path);
  if (!file.ok()) {
    frames->Shutdown(absl::Now());
    return file.status();
  }
  frames_path_ = path;
  frames_file_ = *file;
  absl::MutexLock lock(&mu_);
  frames_ = std::move(frames);
  return absl::OkStatus();
}

void Server::StopFrames(absl::Time deadline) {
  std::shared_ptr<FrameServer> frames;
  {
    absl::MutexLock lock(&mu_);
    frames = frames_;  // alive until this is done, whatever Stop does meanwhile
  }
  if (frames == nullptr) return;
  frames->Shutdown(deadline);
  // Gone with the listener: a client that looks now falls back to gRPC.
  RemoveSocketFile(frames_path_, *frames_file_);
}

void Server::Stop(absl::Duration grace) {
  Deregister();
  ShutdownRealtime();
  if (gate_ != nullptr) {
    gate_->Stop();  // no new connections; those handed off end with gRPC
    gate_.reset();
  }
  StopFrames(absl::Now() + grace);
  {
    absl::MutexLock lock(&mu_);
    frames_.reset();
  }
  std::shared_ptr<rpc::GrpcServer> grpc;
  {
    absl::MutexLock lock(&mu_);
    grpc = std::move(grpc_);
  }
  if (grpc == nullptr) return;
  if (parts_->backend.redis != nullptr) parts_->backend.redis->SetStateListener(nullptr);
  if (parts_->redis_broker != nullptr) parts_->redis_broker->SetStateListener(nullptr);
  readiness_recheck_.reset();  // would set the instance ready again
  parts_->instance->set_ready(false);
  grpc->Shutdown(absl::Now() + grace);
  grpc.reset();
  // Liveness answers until here: the process is about to end.
  if (admin_ != nullptr) {
    admin_->Stop();
    admin_.reset();
  }
  // No route can start it again now; its saved state lets the next start
  // (or another pod) resume it.
  if (parts_->rewrap != nullptr) parts_->rewrap->Stop();
  sweeper_.reset();
  live_sessions_.reset();
  if (socket_file_.has_value()) {
    RemoveSocketFile(config_.socket_path, *socket_file_);
    socket_file_.reset();
  }
  spdlog::info("stopped; socket {} removed", config_.socket_path);
}

}  // namespace stateside

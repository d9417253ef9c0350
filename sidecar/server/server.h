// The sidecar, run: a Server takes the parts BuildParts made from a
// validated Config (server_parts.h) and runs them; nothing else constructs
// these parts, nothing here is global. Its files follow its life:
// server.cc (Create, Start, readiness, Stop), server_drain.cc (the whole
// drain sequence, from the first signal to STOPPED), server_admin.cc (the
// admin routes), server_status.cc (GET /info and the status page).
//
// Life: Create (builds; nothing listens) → Start (socket, gRPC, admin HTTP,
// sweeper, ready) → the drain (DrainController: SIGTERM/SIGINT, Drain RPC,
// POST /drain, RequestShutdown) → Stop (in-flight calls finish up to a
// deadline, socket removed). Run() = Start, wait until the drain stopped
// the server, Stop. Readiness = not draining and the backend usable.
//
// Thread-safety: RequestShutdown, SetReady and the accessors may be called
// from any thread; Start, Run and Stop from the owning thread only.
#ifndef STATESIDE_SIDECAR_SERVER_SERVER_H_
#define STATESIDE_SIDECAR_SERVER_SERVER_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json_fwd.hpp"
#include "sidecar/admin/access.h"
#include "sidecar/admin/http_server.h"
#include "sidecar/lifecycle/drain_controller.h"
#include "sidecar/server/config.h"
#include "sidecar/server/drain_ticker.h"
#include "sidecar/server/periodic.h"
#include "sidecar/server/peer_gate.h"
#include "sidecar/server/readiness_debounce.h"
#include "sidecar/server/server_parts.h"
#include "sidecar/server/unix_socket.h"

namespace stateside {

namespace rpc {
class GrpcServer;
class Operations;
}  // namespace rpc

class FrameServer;

class Server {
 public:
  // Builds every part (BuildParts), the drain controller, and checks the
  // keys against Redis. The keys and secrets (and the admin token) move out
  // of `config` (which the server keeps without them). Errors:
  // FAILED_PRECONDITION / INVALID_ARGUMENT naming the setting (exit status
  // 2), others are internal (exit 1).
  static absl::StatusOr<std::unique_ptr<Server>> Create(
      Config config, lifecycle::InstanceIdentity identity,
      ServerOptions options = {});

  // Stop()s with an immediate deadline if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Prepares the socket path (see unix_socket.h), starts gRPC on it (mode
  // 0660), the admin HTTP listener (logs "admin listening on HOST:PORT"),
  // the sweeper, and marks the instance ready (health SERVING).
  // FAILED_PRECONDITION "STATESIDE_SOCKET: …" if the path is taken,
  // "STATESIDE_ADMIN_ADDR: …" if the admin address cannot be bound.
  absl::Status Start();

  // Start(), then hand SIGTERM/SIGINT (via SignalWatcher: REQUIRES
  // BlockShutdownSignals() at the top of main) to the drain controller and
  // wait until the drain is STOPPED (its shutdown work done, and a hold
  // ended by SIGTERM), then Stop(). The drain itself (second signal, hard
  // timeout with exit 1) is the controller's.
  absl::Status Run();

  // Starts the drain, as the Drain RPC does (Run() returns once it ends).
  // Thread-safe, idempotent.
  void RequestShutdown();
  // Blocks until a drain started or `timeout` passed; true if it started.
  bool WaitForShutdownRequest(absl::Duration timeout = absl::InfiniteDuration());
  // Blocks until the drain is STOPPED or `timeout` passed.
  bool WaitForStopped(absl::Duration timeout = absl::InfiniteDuration());

  // Not ready, no new calls, in-flight calls may finish until now + grace
  // (then are cancelled), sweeper stopped, socket removed. Idempotent.
  void Stop(absl::Duration grace);

  // Whether the backend can serve; readiness (Instance::ready() and gRPC
  // health) is this and not draining: a draining sidecar never turns ready.
  void SetReady(bool ready);

  // The configuration in force (keys and secrets wiped).
  const Config& config() const { return config_; }
  lifecycle::Instance& instance() { return *parts_->instance; }
  session::SessionManager& sessions() { return *parts_->session_manager; }
  OptOutManager& opt_outs() { return *parts_->opt_out_manager; }
  const crypto::Keyring& keyring() const { return *parts_->keyring; }
  const Clock& clock() const { return *parts_->clock; }
  const std::string& socket_path() const { return config_.socket_path; }
  DrainController& drain() { return *drain_; }
  admin::Metrics& metrics() { return *parts_->metrics; }
  // The admin listener's bound port (0 before Start).
  int admin_port() const { return admin_ != nullptr ? admin_->port() : 0; }

 private:
  class Actions;  // DrainActions, in server_drain.cc

  Server(Config config, std::unique_ptr<ServerParts> parts, absl::Duration sweep_interval);

  // Readiness and Redis's reports (server.cc).
  void OnRedisState(bool connected, const absl::Status& error);
  void OnRealtimeState(bool subscribed);
  // Applies a key check's answer (redis/key_check.h): mismatching ids are
  // logged, counted, reported by the sealer as "key_mismatch", and keep the
  // sidecar not ready. Any thread.
  void OnKeyCheck(const absl::StatusOr<std::vector<std::string>>& mismatched);
  // The key check at Create, blocking (Redis backend, connected only): a
  // mismatch is FAILED_PRECONDITION.
  absl::Status CheckKeysAtStart();
  // The key check without blocking (Redis backend only); OnKeyCheck answers.
  void StartKeyCheck();
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyReadyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // readiness_recheck_'s task: applies an outage whose debounce has run out.
  void RecheckReadiness();
  void UpdateLiveSessions();
  // One heartbeat of this instance's record into the registry.
  void Heartbeat();

  // The drain sequence (server_drain.cc; see drain_controller.h).
  std::unique_ptr<DrainActions> NewDrainActions();
  void OnDrainStarted();
  // The controller reached STOPPED: Run() may return (exit 0).
  void OnDrainStopped();
  void BeginShutdown(bool fast);
  void ShutdownWork(bool fast);
  // Stops the heartbeats and removes the record (the drain, Stop).
  void Deregister();
  // Ends the Subscribe streams and removes this instance's realtime
  // presence from the cluster (the drain, Stop). Idempotent.
  void ShutdownRealtime();

  // The admin listener (server_admin.cc, server_status.cc).
  absl::Status StartAdmin();
  // STATESIDE_FRAMES: listens on the frame socket (frame_server.h).
  absl::Status StartFrames(size_t max_frame_bytes);
  // Stops the frame socket (its calls in flight answer until `deadline`)
  // and removes its file. Any thread; a no-op without one.
  void StopFrames(absl::Time deadline);
  std::vector<admin::AdminRoute> AdminRoutes();
  void AddRewrapRoutes(const admin::AdminAccess& access,
                       std::vector<admin::AdminRoute>& routes);
  // Realtime gauges and the broker's drop counts, before a scrape.
  void UpdateRealtimeMetrics();
  // GET /info's document and the status page's data (server_status.cc):
  // this instance, its readiness and why, the drain timeline, the backend,
  // the cluster's instances, sessions, realtime and key ids. Admin thread.
  nlohmann::json StatusJson();
  // Why the instance is not ready (empty when it is).
  std::vector<std::string> NotReadyReasonsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Refreshes status_->instances from the registry, without blocking.
  void RefreshInstanceList();

  // Constant after Create.
  Config config_;
  const absl::Duration sweep_interval_;
  // Reset in ~Server before the members below are destroyed: the Redis
  // client's I/O thread may call back into this object until then.
  std::unique_ptr<ServerParts> parts_;
  std::unique_ptr<DrainActions> actions_;
  std::unique_ptr<DrainController> drain_;
  std::unique_ptr<DrainTicker> ticker_;
  // The broker's drop counts already added to the metrics (scrapes run one
  // at a time on the admin thread).
  uint64_t seen_undecryptable_ = 0;
  uint64_t seen_malformed_ = 0;
  std::atomic<bool> realtime_shut_down_{false};
  std::atomic<bool> heartbeat_failing_{false};  // log state changes only
  std::atomic<bool> refresh_failing_{false};
  std::atomic<bool> live_estimate_failing_{false};
  bool keys_checked_at_build_ = false;  // the key check ran in Create

  // Set by Start, cleared by Stop (owning thread only).
  std::unique_ptr<admin::AdminHttpServer> admin_;
  std::unique_ptr<PeriodicTask> sweeper_;
  std::unique_ptr<PeriodicTask> live_sessions_;  // stateside_sessions_live
  std::optional<SocketFileId> socket_file_;
  // With STATESIDE_ALLOWED_UIDS: our own accept loop in front of gRPC.
  std::unique_ptr<PeerGate> gate_;
  // STATESIDE_FRAMES: the frame socket's path, its file (set by Start, then
  // only read), and the operations it runs.
  std::string frames_path_;
  std::optional<SocketFileId> frames_file_;
  std::unique_ptr<rpc::Operations> frame_ops_;

  absl::Mutex mu_;
  // Set by Start, moved out by Stop; SetReady reads it from any thread.
  // Shared with the drain's shutdown work, which may still be shutting it
  // down while Stop (or the destructor) lets go of it.
  std::shared_ptr<rpc::GrpcServer> grpc_ ABSL_GUARDED_BY(mu_);
  // The frame socket's server, as grpc_ (null without STATESIDE_FRAMES).
  std::shared_ptr<FrameServer> frames_ ABSL_GUARDED_BY(mu_);
  bool destroying_ ABSL_GUARDED_BY(mu_) = false;    // no new shutdown work
  bool registered_ ABSL_GUARDED_BY(mu_) = false;    // a heartbeat was sent
  bool deregistered_ ABSL_GUARDED_BY(mu_) = false;  // no more heartbeats
  // Set by Start; taken out by the drain's shutdown work or by Stop.
  std::unique_ptr<PeriodicTask> heartbeat_ ABSL_GUARDED_BY(mu_);
  bool shutdown_requested_ ABSL_GUARDED_BY(mu_) = false;  // drain started
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool backend_ok_ ABSL_GUARDED_BY(mu_) = false;
  // The Redis connection and the realtime subscription (both up without
  // Redis), debounced by STATESIDE_REDIS_READINESS_DEBOUNCE: a blip shorter
  // than that keeps the sidecar ready. readiness_recheck_ applies an outage
  // once it has lasted the debounce.
  ReadinessDebounce redis_up_ ABSL_GUARDED_BY(mu_);
  ReadinessDebounce realtime_up_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<PeriodicTask> readiness_recheck_;  // Start/Stop, Redis only
  bool redis_was_down_ ABSL_GUARDED_BY(mu_) = false;  // for reconnect counts
  // No key id mismatches another instance's key (redis/key_check.h): the
  // last check's answer; a check that could not run changes nothing.
  bool keys_ok_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time drain_started_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // real
  // The drain's steps as they happened (real time, what): the status page's
  // timeline.
  std::vector<std::pair<absl::Time, std::string>> drain_timeline_ ABSL_GUARDED_BY(mu_);
  // What the status page remembers between views (server_status.cc); shared
  // with the registry's List callback, which may outlive a view.
  struct StatusMemory {
    absl::Mutex mu;
    // The registry's last answer (a view starts the next one).
    std::vector<lifecycle::InstanceRecord> instances ABSL_GUARDED_BY(mu);
    absl::Time listed_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();
    std::string list_error ABSL_GUARDED_BY(mu);  // "" after a good answer
    bool listing ABSL_GUARDED_BY(mu) = false;    // a List in flight
    // Two samples of the counters for the rates: `base` is 15..30 s old once
    // the page has been watched that long, `next` becomes the base later.
    std::map<std::string, double> base ABSL_GUARDED_BY(mu);
    absl::Time base_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();
    std::map<std::string, double> next ABSL_GUARDED_BY(mu);
    absl::Time next_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  };
  const std::shared_ptr<StatusMemory> status_ = std::make_shared<StatusMemory>();
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // the drain is STOPPED
  std::thread shutdown_thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_SERVER_H_

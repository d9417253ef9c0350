// The sidecar, wired: one Server builds every part from a validated Config
// and hands dependencies in through constructors (random source, clock,
// keyring, sealer, cookie signer, backend stores, session and opt-out
// managers, the instance, the gRPC server, the expiry sweeper). Nothing else
// constructs these parts; nothing here is global.
//
// Life: Create (builds; nothing listens) → Start (socket, gRPC, sweeper,
// ready) → Stop (not ready, in-flight calls finish up to a deadline, socket
// removed). Run() = Start, wait for SIGTERM/SIGINT or RequestShutdown, Stop.
//
// Thread-safety: RequestShutdown, SetReady and the accessors may be called
// from any thread; Start, Run and Stop from the owning thread only.
#ifndef STATESIDE_SIDECAR_SERVER_SERVER_H_
#define STATESIDE_SIDECAR_SERVER_SERVER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/lifecycle/instance.h"
#include "sidecar/server/backend.h"
#include "sidecar/server/config.h"
#include "sidecar/server/periodic.h"
#include "sidecar/server/unix_socket.h"
#include "sidecar/session/session_manager.h"

namespace stateside {

namespace rpc {
class GrpcServer;
}  // namespace rpc

// Seams for tests; production passes the defaults.
struct ServerOptions {
  const Clock* clock = nullptr;  // null: the system clock. Must outlive.
  std::unique_ptr<crypto::RandomSource> random;  // null: NewSecureRandom()
  absl::Duration sweep_interval = absl::Seconds(30);
};

class Server {
 public:
  // Builds every part. The keys and secrets move out of `config` (which the
  // server keeps without them). With no key or secret configured (memory
  // mode only; Config refuses it with Redis) an ephemeral one is generated
  // and a warning logged. Errors: FAILED_PRECONDITION / INVALID_ARGUMENT
  // naming the setting (exit status 2), others are internal (exit 1).
  static absl::StatusOr<std::unique_ptr<Server>> Create(
      Config config, lifecycle::InstanceIdentity identity,
      ServerOptions options = {});

  // Stop()s with an immediate deadline if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Prepares the socket path (see unix_socket.h), starts gRPC on it (mode
  // 0660), starts the sweeper and marks the instance ready (health SERVING).
  // FAILED_PRECONDITION "STATESIDE_SOCKET: …" if the path is taken.
  absl::Status Start();

  // Start(), then wait for SIGTERM/SIGINT (via SignalWatcher: REQUIRES
  // BlockShutdownSignals() at the top of main) or RequestShutdown(), then
  // Stop() with STATESIDE_SHUTDOWN_TIMEOUT as the deadline for calls in
  // flight. A second signal while stopping exits at once (status 1).
  absl::Status Run();

  // Makes Run() return (stopping the server). Thread-safe, idempotent.
  void RequestShutdown();
  // Blocks until RequestShutdown() was called or `timeout` passed; true if
  // it was called.
  bool WaitForShutdownRequest(absl::Duration timeout = absl::InfiniteDuration());

  // Not ready, no new calls, in-flight calls may finish until now + grace
  // (then are cancelled), sweeper stopped, socket removed. Idempotent.
  void Stop(absl::Duration grace);

  // Readiness, in one place: Instance::ready() and gRPC health.
  void SetReady(bool ready);

  // The configuration in force (keys and secrets wiped).
  const Config& config() const { return config_; }
  lifecycle::Instance& instance() { return *instance_; }
  SessionManager& sessions() { return *session_manager_; }
  OptOutManager& opt_outs() { return *opt_out_manager_; }
  const crypto::Keyring& keyring() const { return *keyring_; }
  const Clock& clock() const { return *clock_; }
  const std::string& socket_path() const { return config_.socket_path; }

 private:
  Server(Config config, ServerOptions options);
  absl::Status Build(lifecycle::InstanceIdentity identity);

  // Constant after Create.
  Config config_;
  const absl::Duration sweep_interval_;
  SystemClock system_clock_;
  const Clock* clock_;
  std::unique_ptr<crypto::RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<crypto::CookieSigner> signer_;
  Backend backend_;
  std::unique_ptr<SessionManager> session_manager_;
  std::unique_ptr<OptOutManager> opt_out_manager_;
  std::unique_ptr<lifecycle::Instance> instance_;

  // Set by Start, cleared by Stop (owning thread only).
  std::unique_ptr<PeriodicTask> sweeper_;
  std::optional<SocketFileId> socket_file_;

  absl::Mutex mu_;
  // Set by Start, moved out by Stop; SetReady reads it from any thread.
  std::unique_ptr<rpc::GrpcServer> grpc_ ABSL_GUARDED_BY(mu_);
  bool shutdown_requested_ ABSL_GUARDED_BY(mu_) = false;
  int signals_received_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_SERVER_H_

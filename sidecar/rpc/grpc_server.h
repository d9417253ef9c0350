// The sidecar's gRPC server on its Unix socket: SessionService,
// AnalyticsService, LifecycleService, RealtimeService and the standard grpc.health.v1 service
// (grpc++'s default implementation), all on the callback API. A request
// larger than max_receive_message_bytes is refused by gRPC itself with
// RESOURCE_EXHAUSTED before any handler sees it. Nothing outside sidecar/rpc
// sees a generated type: this header hides them.
//
// Thread-safe: SetServing and Shutdown may be called from any thread.
#ifndef STATESIDE_SIDECAR_RPC_GRPC_SERVER_H_
#define STATESIDE_SIDECAR_RPC_GRPC_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/session/request_ledger.h"
#include "sidecar/lifecycle/drain_controller.h"
#include "sidecar/lifecycle/instance.h"
#include "sidecar/lifecycle/registry.h"
#include "sidecar/realtime/broker.h"
#include "sidecar/realtime/hub.h"
#include "sidecar/rpc/api_capabilities.h"
#include "sidecar/session/change_feed.h"
#include "sidecar/session/session_manager.h"

namespace grpc {
class CallbackGenericService;
class Server;
}  // namespace grpc

namespace stateside::rpc {

class Offload;
class SessionService;
class AnalyticsService;
class LifecycleService;
class RealtimeService;

struct GrpcServerOptions {
  std::string socket_path;  // listened on as "unix:<path>"
  // True: gRPC does not listen; the owner accepts on the socket itself and
  // hands each connection to AdoptConnection or RefuseConnection (the peer
  // check of STATESIDE_ALLOWED_UIDS, which gRPC cannot make).
  bool external_listener = false;
  // What every call on a refused connection answers (PERMISSION_DENIED).
  std::string refused_message = "permission denied";
  size_t max_receive_message_bytes = 4 << 20;
  // The Offload pool (offload.h) of the operations that wait on their store:
  // its threads and how many calls may wait for one. 0 threads: no pool,
  // they run on the gRPC thread (a store that never waits: memory).
  size_t offload_threads = 0;
  size_t offload_queue = 1024;
};

// What the services run on. Every pointer must outlive the GrpcServer.
struct GrpcServices {
  session::SessionManager* sessions = nullptr;
  OptOutManager* opt_outs = nullptr;
  // Optional: without it a request_id is ignored (every call applies).
  const session::RequestLedger* requests = nullptr;
  const lifecycle::Instance* instance = nullptr;
  // Optional: the drain RPCs answer UNIMPLEMENTED without a controller;
  // `poke` runs after each drain event the RPCs cause (wakes the ticker).
  DrainController* drain = nullptr;
  std::function<void()> poke;
  // Optional: per-RPC counts, latency and in-flight.
  admin::Metrics* metrics = nullptr;
  // Optional: the cluster registry; without it ListInstances lists only this
  // instance (the embedded memory store).
  lifecycle::InstanceRegistry* registry = nullptr;
  // Optional: RealtimeService (UNIMPLEMENTED without them).
  realtime::RealtimeHub* realtime_hub = nullptr;
  realtime::Broker* realtime_broker = nullptr;
  // Optional: WatchSessionEvents (UNIMPLEMENTED without it; GetInstance's
  // session_events capability says whether it is set).
  session::ChangeFeed* session_changes = nullptr;
  // What GetInstance reports of the store.
  StoreTopology topology = StoreTopology::kMemory;
};

class GrpcServer {
 public:
  // Binds the socket and starts serving; grpc.health.v1 answers NOT_SERVING
  // until SetServing(true). UNAVAILABLE if the socket cannot be bound.
  // REQUIRES: the socket path is free (see server/unix_socket.h): gRPC
  // unlinks whatever socket file it finds there.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options, const GrpcServices& services);

  // Shuts down at once if Shutdown was not called.
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // With external_listener: serve the connected socket `fd` (ownership
  // passes to gRPC), or answer every call on it PERMISSION_DENIED with
  // refused_message, from a second server that has no service at all (not
  // even health). Any thread; not after Shutdown.
  void AdoptConnection(int fd);
  void RefuseConnection(int fd);

  // Health of the server ("") and of each stateside service name.
  void SetServing(bool serving);

  // Health NOT_SERVING for good, no new calls; calls in flight may finish
  // until `deadline`, then are cancelled, and the calls still waiting for
  // the offload pool are answered UNAVAILABLE without running. Blocks until
  // all are done. Idempotent.
  void Shutdown(absl::Time deadline);

  // The offload pool (null without offload_threads), so a test can hold its
  // threads.
  Offload* offload() const { return offload_.get(); }

 private:
  GrpcServer();

  // Before the services (which run on it), so it is destroyed after them;
  // Shutdown stops it once no call is left. Null without offload_threads.
  std::unique_ptr<Offload> offload_;
  std::unique_ptr<SessionService> session_service_;
  std::unique_ptr<AnalyticsService> analytics_service_;
  std::unique_ptr<LifecycleService> lifecycle_service_;
  std::unique_ptr<RealtimeService> realtime_service_;
  std::unique_ptr<grpc::Server> server_;
  // With external_listener only: the refusing server and its one service.
  std::unique_ptr<grpc::CallbackGenericService> deny_service_;
  std::unique_ptr<grpc::Server> deny_server_;

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_GRPC_SERVER_H_

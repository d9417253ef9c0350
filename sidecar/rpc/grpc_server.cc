// Building, health and shutdown of the gRPC server.
#include "sidecar/rpc/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_posix.h>

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "sidecar/rpc/analytics_service.h"
#include "sidecar/rpc/lifecycle_service.h"
#include "sidecar/rpc/realtime_service.h"
#include "sidecar/rpc/session_service.h"

namespace stateside::rpc {
namespace {

// Health answers for "" (the whole server) and for each of these, so a
// client may check a single service by name.
constexpr std::string_view kServiceNames[] = {
    "stateside.v1.SessionService",
    "stateside.v1.AnalyticsService",
    "stateside.v1.LifecycleService",
    "stateside.v1.RealtimeService",
};

// Answers every method PERMISSION_DENIED without reading the request.
class DenyAllService : public grpc::CallbackGenericService {
 public:
  explicit DenyAllService(std::string message) : message_(std::move(message)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(const std::string& message) {
        Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, message));
      }
      void OnDone() override { delete this; }
    };
    return new Reactor(message_);
  }

 private:
  const std::string message_;
};

// gRPC server reflection (grpc.reflection.v1alpha) on the server it is given
// to, or on none: once linked, the library's plugin adds itself to every
// ServerBuilder, and the refusing server must describe nothing.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enable) : enable_(enable) {}

  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    const std::string name = grpc::reflection::ProtoServerReflectionPlugin().name();
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [&](const auto& p) { return p->name() == name; }),
                   plugins->end());
    if (enable_) plugins->push_back(std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
  }

 private:
  const bool enable_;
};

}  // namespace

GrpcServer::GrpcServer() = default;

GrpcServer::~GrpcServer() { Shutdown(absl::Now()); }

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerOptions& options, const GrpcServices& services) {
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  // As SetMaxReceiveMessageSize below clamps it: what Pipe announces.
  const size_t max_message_bytes = std::min<size_t>(options.max_receive_message_bytes, INT_MAX);
  if (options.offload_threads > 0) {
    server->offload_ = std::make_unique<Offload>(
        options.offload_threads, std::max<size_t>(options.offload_queue, 1), services.metrics);
  }
  server->session_service_ = std::make_unique<SessionService>(
      services.sessions, services.opt_outs, services.metrics, max_message_bytes,
      services.requests, services.session_changes, services.realtime_hub, server->offload_.get());
  server->analytics_service_ = std::make_unique<AnalyticsService>(
      services.opt_outs, services.metrics, server->offload_.get());
  server->lifecycle_service_ = std::make_unique<LifecycleService>(
      services.instance, services.drain, services.poke, services.metrics,
      services.registry,
      ApiCapabilities{.pipe = true,
                      .session_events = services.session_changes != nullptr &&
                                        services.realtime_hub != nullptr,
                      .reflection = true,
                      .request_ids = services.requests != nullptr,
                      .realtime_resume = services.realtime_hub != nullptr &&
                                         services.realtime_broker != nullptr,
                      .topology = services.topology});

  if (services.realtime_hub != nullptr && services.realtime_broker != nullptr) {
    server->realtime_service_ = std::make_unique<RealtimeService>(
        services.realtime_hub, services.realtime_broker, services.metrics, services.requests,
        server->offload_.get());
  }

  // A process-wide switch that applies to servers built afterwards.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  if (!options.external_listener) {
    builder.AddListeningPort(absl::StrCat("unix:", options.socket_path),
                             grpc::InsecureServerCredentials());
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  builder.SetOption(std::make_unique<ReflectionOption>(true));
  builder.RegisterService(server->session_service_.get());
  builder.RegisterService(server->analytics_service_.get());
  builder.RegisterService(server->lifecycle_service_.get());
  if (server->realtime_service_ != nullptr) {
    builder.RegisterService(server->realtime_service_.get());
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "STATESIDE_SOCKET: cannot listen on ", options.socket_path,
        " (see the gRPC error above)"));
  }
  if (options.external_listener) {
    server->deny_service_ = std::make_unique<DenyAllService>(options.refused_message);
    // No health service either: a refused peer learns nothing.
    grpc::EnableDefaultHealthCheckService(false);
    grpc::ServerBuilder deny;
    deny.SetOption(std::make_unique<ReflectionOption>(false));
    deny.RegisterCallbackGenericService(server->deny_service_.get());
    server->deny_server_ = deny.BuildAndStart();
    grpc::EnableDefaultHealthCheckService(true);
    if (server->deny_server_ == nullptr) {
      return absl::UnavailableError("STATESIDE_ALLOWED_UIDS: cannot start the refusing server");
    }
  }
  server->SetServing(false);
  return server;
}

void GrpcServer::AdoptConnection(int fd) {
  absl::MutexLock lock(&mu_);  // Shutdown waits: no connection joins after it
  if (shut_down_) {
    close(fd);
    return;
  }
  grpc::AddInsecureChannelFromFd(server_.get(), fd);
}

void GrpcServer::RefuseConnection(int fd) {
  absl::MutexLock lock(&mu_);
  if (shut_down_ || deny_server_ == nullptr) {
    close(fd);
    return;
  }
  grpc::AddInsecureChannelFromFd(deny_server_.get(), fd);
}

void GrpcServer::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  for (std::string_view name : kServiceNames) {
    health->SetServingStatus(std::string(name), serving);
  }
}

void GrpcServer::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_ || server_ == nullptr) return;
    shut_down_ = true;
    if (auto* health = server_->GetHealthCheckService(); health != nullptr) {
      health->Shutdown();
    }
  }
  // gRPC cancels the calls at `deadline` but waits for every reactor to
  // finish, and calls queued for the pool would each still take a thread:
  // at the deadline what still waits is answered UNAVAILABLE unrun, so the
  // drain ends with the running calls, within the shutdown timeout.
  absl::Notification drained;
  std::thread fail_queued;
  if (offload_ != nullptr) {
    fail_queued = std::thread([this, deadline, &drained] {
      if (!drained.WaitForNotificationWithDeadline(deadline)) {
        offload_->FailQueued(
            absl::UnavailableError("the sidecar is shutting down; the call did not run"));
      }
    });
  }
  // Outside the lock: Shutdown waits for handlers, which never take mu_,
  // but a concurrent SetServing should not wait that long either.
  server_->Shutdown(absl::ToChronoTime(deadline));
  drained.Notify();
  if (fail_queued.joinable()) fail_queued.join();
  if (deny_server_ != nullptr) deny_server_->Shutdown(absl::ToChronoTime(absl::Now()));
  // Every call has finished, so nothing is queued for the pool any more.
  if (offload_ != nullptr) offload_->Shutdown();
}

}  // namespace stateside::rpc

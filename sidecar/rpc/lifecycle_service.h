// stateside.v1.LifecycleService. GetInstance answers from the Instance (the
// identity plus the live status). WatchDrain, ReportDrained and Drain go to
// the DrainController (without one they answer UNIMPLEMENTED); after each
// drain event `poke` wakes the thread that ticks the controller.
// ListInstances answers from the cluster registry (this instance's own record
// always from the live Instance), or with this instance alone if there is no
// registry. Thread-safe (Instance, controller and registry are).
#ifndef STATESIDE_SIDECAR_RPC_LIFECYCLE_SERVICE_H_
#define STATESIDE_SIDECAR_RPC_LIFECYCLE_SERVICE_H_

#include <functional>
#include <string_view>
#include <utility>

#include "sidecar/admin/metrics.h"
#include "sidecar/lifecycle/drain_controller.h"
#include "sidecar/lifecycle/instance.h"
#include "sidecar/lifecycle/registry.h"
#include "sidecar/rpc/api_capabilities.h"
#include "stateside/v1/lifecycle.grpc.pb.h"

namespace stateside::rpc {

namespace internal {
// GetInstance over raw bytes (unary_call.h); the rest typed callbacks.
using LifecycleServiceBase = v1::LifecycleService::WithRawCallbackMethod_GetInstance<
    v1::LifecycleService::CallbackService>;
}  // namespace internal

class LifecycleService final : public internal::LifecycleServiceBase {
 public:
  // REQUIRES: `instance`, and `drain`/`metrics`/`registry` if not null,
  // outlive the service.
  explicit LifecycleService(const lifecycle::Instance* instance,
                            DrainController* drain = nullptr,
                            std::function<void()> poke = nullptr,
                            admin::Metrics* metrics = nullptr,
                            lifecycle::InstanceRegistry* registry = nullptr,
                            ApiCapabilities capabilities = {})
      : instance_(instance), drain_(drain), poke_(std::move(poke)),
        metrics_(metrics), registry_(registry), capabilities_(capabilities) {}

  grpc::ServerUnaryReactor* GetInstance(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListInstances(grpc::CallbackServerContext* context,
                                          const v1::ListInstancesRequest* request,
                                          v1::ListInstancesResponse* response) override;
  grpc::ServerWriteReactor<v1::DrainEvent>* WatchDrain(
      grpc::CallbackServerContext* context,
      const v1::WatchDrainRequest* request) override;
  grpc::ServerUnaryReactor* ReportDrained(
      grpc::CallbackServerContext* context,
      const v1::ReportDrainedRequest* request,
      v1::ReportDrainedResponse* response) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context,
                                  const v1::DrainRequest* request,
                                  v1::DrainResponse* response) override;

 private:
  void Poke() const {
    if (poke_) poke_();
  }
  // Finishes a typed unary call at once, counted like the raw ones.
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                   std::string_view method,
                                   const grpc::Status& status) const;

  const lifecycle::Instance* const instance_;
  DrainController* const drain_;
  const std::function<void()> poke_;
  admin::Metrics* const metrics_;
  lifecycle::InstanceRegistry* const registry_;
  const ApiCapabilities capabilities_;
};

// The proto form of the instance, and of a registry record (uptime from `now`).
void ToProto(const lifecycle::Instance& instance, v1::Instance* out);
void ToProto(const lifecycle::InstanceRecord& record, absl::Time now,
             v1::Instance* out);

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_LIFECYCLE_SERVICE_H_

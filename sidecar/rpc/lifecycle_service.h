// stateside.v1.LifecycleService. GetInstance answers from the Instance (the
// identity plus the live status). WatchDrain, ReportDrained and Drain go to
// the DrainController (without one they answer UNIMPLEMENTED); after each
// drain event `poke` wakes the thread that ticks the controller.
// ListInstances (the cluster registry) is not overridden yet: the generated
// base answers UNIMPLEMENTED. Thread-safe (Instance and controller are).
#ifndef STATESIDE_SIDECAR_RPC_LIFECYCLE_SERVICE_H_
#define STATESIDE_SIDECAR_RPC_LIFECYCLE_SERVICE_H_

#include <functional>
#include <string_view>
#include <utility>

#include "sidecar/admin/metrics.h"
#include "sidecar/lifecycle/drain_controller.h"
#include "sidecar/lifecycle/instance.h"
#include "stateside/v1/lifecycle.grpc.pb.h"

namespace stateside::rpc {

namespace internal {
// GetInstance over raw bytes (unary_call.h); the rest typed callbacks.
using LifecycleServiceBase = v1::LifecycleService::WithRawCallbackMethod_GetInstance<
    v1::LifecycleService::CallbackService>;
}  // namespace internal

class LifecycleService final : public internal::LifecycleServiceBase {
 public:
  // REQUIRES: `instance`, and `drain`/`metrics` if not null, outlive the
  // service.
  explicit LifecycleService(const lifecycle::Instance* instance,
                            DrainController* drain = nullptr,
                            std::function<void()> poke = nullptr,
                            admin::Metrics* metrics = nullptr)
      : instance_(instance), drain_(drain), poke_(std::move(poke)),
        metrics_(metrics) {}

  grpc::ServerUnaryReactor* GetInstance(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
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
};

// The proto form of the instance (also for ListInstances later).
void ToProto(const lifecycle::Instance& instance, v1::Instance* out);

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_LIFECYCLE_SERVICE_H_

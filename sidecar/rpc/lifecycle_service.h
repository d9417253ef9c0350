// stateside.v1.LifecycleService. GetInstance answers from the Instance (the
// identity plus the live status). ListInstances, WatchDrain, ReportDrained
// and Drain belong to issue 4 (the drain state machine, the cluster
// registry): until then they are not overridden and the generated callback
// base answers UNIMPLEMENTED. Thread-safe (Instance is).
#ifndef STATESIDE_SIDECAR_RPC_LIFECYCLE_SERVICE_H_
#define STATESIDE_SIDECAR_RPC_LIFECYCLE_SERVICE_H_

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
  // REQUIRES: `instance` outlives the service.
  explicit LifecycleService(const lifecycle::Instance* instance)
      : instance_(instance) {}

  grpc::ServerUnaryReactor* GetInstance(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;

 private:
  const lifecycle::Instance* const instance_;
};

// The proto form of the instance (also for ListInstances later).
void ToProto(const lifecycle::Instance& instance, v1::Instance* out);

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_LIFECYCLE_SERVICE_H_

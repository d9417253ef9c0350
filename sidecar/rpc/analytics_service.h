// stateside.v1.AnalyticsService over an OptOutManager (which validates the
// subject and the ttl). Thin callback handlers over raw bytes (see
// unary_call.h); thread-safe (no state).
#ifndef STATESIDE_SIDECAR_RPC_ANALYTICS_SERVICE_H_
#define STATESIDE_SIDECAR_RPC_ANALYTICS_SERVICE_H_

#include <string_view>

#include "sidecar/admin/metrics.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/rpc/operations.h"
#include "sidecar/rpc/unary_call.h"
#include "stateside/v1/analytics.grpc.pb.h"

namespace stateside::rpc {

namespace internal {
using AnalyticsServiceBase = v1::AnalyticsService::WithRawCallbackMethod_SetOptOut<
    v1::AnalyticsService::WithRawCallbackMethod_GetOptOut<
        v1::AnalyticsService::CallbackService>>;
}  // namespace internal

class AnalyticsService final : public internal::AnalyticsServiceBase {
 public:
  // REQUIRES: `opt_outs` (and `offload`, if not null: see Operations)
  // outlives the service.
  explicit AnalyticsService(OptOutManager* opt_outs,
                            admin::Metrics* metrics = nullptr, Offload* offload = nullptr)
      : ops_(nullptr, opt_outs, nullptr, nullptr, offload), metrics_(metrics) {}

  grpc::ServerUnaryReactor* SetOptOut(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetOptOut(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;

 private:
  RpcMeter Meter(std::string_view method) const { return {metrics_, method}; }

  const Operations ops_;
  admin::Metrics* const metrics_;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_ANALYTICS_SERVICE_H_

// AnalyticsService handlers: the shared operations (operations.h).
#include "sidecar/rpc/analytics_service.h"

#include "sidecar/rpc/unary_call.h"

namespace stateside::rpc {
namespace {

using SetCall = UnaryCall<v1::SetOptOutRequest, v1::SetOptOutResponse>;
using GetCall = UnaryCall<v1::GetOptOutRequest, v1::GetOptOutResponse>;

}  // namespace

grpc::ServerUnaryReactor* AnalyticsService::SetOptOut(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return RunOperation<SetCall>(context, request, response,
                               Meter("AnalyticsService/SetOptOut"), ops_,
                               &Operations::SetOptOut);
}

grpc::ServerUnaryReactor* AnalyticsService::GetOptOut(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return RunOperation<GetCall>(context, request, response,
                               Meter("AnalyticsService/GetOptOut"), ops_,
                               &Operations::GetOptOut);
}

}  // namespace stateside::rpc

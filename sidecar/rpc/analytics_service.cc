// AnalyticsService handlers.
#include "sidecar/rpc/analytics_service.h"

#include <optional>

#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/unary_call.h"

namespace stateside::rpc {
namespace {

using SetCall = UnaryCall<v1::SetOptOutRequest, v1::SetOptOutResponse>;
using GetCall = UnaryCall<v1::GetOptOutRequest, v1::GetOptOutResponse>;

}  // namespace

grpc::ServerUnaryReactor* AnalyticsService::SetOptOut(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return SetCall::Start(context, request, response, Meter("AnalyticsService/SetOptOut"), [this](SetCall* call) {
    const v1::SetOptOutRequest& r = call->request();
    std::optional<absl::Duration> ttl;
    if (r.has_ttl()) {
      auto parsed = PositiveDurationFromProto(r.ttl(), "ttl");
      if (!parsed.ok()) return call->Finish(parsed.status());
      ttl = *parsed;
    }
    call->Finish(opt_outs_->Set(r.subject(), r.opted_out(), ttl));
  });
}

grpc::ServerUnaryReactor* AnalyticsService::GetOptOut(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return GetCall::Start(context, request, response, Meter("AnalyticsService/GetOptOut"), [this](GetCall* call) {
    call->Finish(opt_outs_->Get(call->request().subject()),
                 [](bool opted_out, v1::GetOptOutResponse* out) {
                   out->set_opted_out(opted_out);
                 });
  });
}

}  // namespace stateside::rpc

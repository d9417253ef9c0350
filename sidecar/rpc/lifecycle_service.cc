// LifecycleService.GetInstance.
#include "sidecar/rpc/lifecycle_service.h"

#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/unary_call.h"

namespace stateside::rpc {
namespace {

v1::DrainState ToProto(lifecycle::DrainState state) {
  switch (state) {
    case lifecycle::DrainState::kServing:
      return v1::SERVING;
    case lifecycle::DrainState::kDraining:
      return v1::DRAINING;
    case lifecycle::DrainState::kDrained:
      return v1::DRAINED;
  }
  return v1::DRAIN_STATE_UNSPECIFIED;
}

}  // namespace

void ToProto(const lifecycle::Instance& instance, v1::Instance* out) {
  const lifecycle::InstanceIdentity& identity = instance.identity();
  out->set_id(identity.id);
  out->set_hostname(identity.hostname);
  out->set_pid(identity.pid);
  ToProto(identity.start_time, out->mutable_start_time());
  ToProto(instance.Uptime(), out->mutable_uptime());
  out->set_version(identity.version);
  out->set_drain_state(ToProto(instance.drain_state()));
  out->set_backend(instance.backend());
  out->set_admin_address(instance.admin_address());
  out->set_ready(instance.ready());
}

grpc::ServerUnaryReactor* LifecycleService::GetInstance(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  using GetInstanceCall = UnaryCall<v1::GetInstanceRequest, v1::GetInstanceResponse>;
  return GetInstanceCall::Start(
      context, request, response, [this](GetInstanceCall* call) {
        ToProto(*instance_, call->response()->mutable_instance());
        call->Finish(absl::OkStatus());
      });
}

}  // namespace stateside::rpc

// LifecycleService: GetInstance and the drain RPCs.
#include "sidecar/rpc/lifecycle_service.h"

#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/unary_call.h"
#include "sidecar/rpc/watch_drain.h"

namespace stateside::rpc {
namespace {

v1::DrainState ToProto(DrainState state) {
  switch (state) {
    case DrainState::kServing:
      return v1::SERVING;
    case DrainState::kDraining:
      return v1::DRAINING;
    case DrainState::kDrained:
    case DrainState::kStopped:  // not in the proto: still "drained"
      return v1::DRAINED;
  }
  return v1::DRAIN_STATE_UNSPECIFIED;
}

const grpc::Status kNoDrain(grpc::StatusCode::UNIMPLEMENTED,
                            "this server has no drain controller");

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
      context, request, response, {metrics_, "LifecycleService/GetInstance"},
      [this](GetInstanceCall* call) {
        ToProto(*instance_, call->response()->mutable_instance());
        call->Finish(absl::OkStatus());
      });
}

grpc::ServerUnaryReactor* LifecycleService::Answer(
    grpc::CallbackServerContext* context, std::string_view method,
    const grpc::Status& status) const {
  if (metrics_ != nullptr) {
    metrics_->RecordRpc(
        method, CodeName(static_cast<absl::StatusCode>(status.error_code())), 0);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::ServerWriteReactor<v1::DrainEvent>* LifecycleService::WatchDrain(
    grpc::CallbackServerContext* context, const v1::WatchDrainRequest* request) {
  if (drain_ == nullptr) {
    // A reactor that finishes at once (the stream needs one to end).
    class Refuse final : public grpc::ServerWriteReactor<v1::DrainEvent> {
     public:
      Refuse() { Finish(kNoDrain); }
      void OnDone() override { delete this; }
    };
    return new Refuse();
  }
  if (metrics_ != nullptr) {
    metrics_->RecordRpc("LifecycleService/WatchDrain", "OK", 0);
  }
  return WatchDrainReactor::Start(drain_);
}

grpc::ServerUnaryReactor* LifecycleService::ReportDrained(
    grpc::CallbackServerContext* context, const v1::ReportDrainedRequest* request,
    v1::ReportDrainedResponse* response) {
  if (drain_ == nullptr) {
    return Answer(context, "LifecycleService/ReportDrained", kNoDrain);
  }
  drain_->ReportDrained();
  Poke();
  return Answer(context, "LifecycleService/ReportDrained", grpc::Status::OK);
}

grpc::ServerUnaryReactor* LifecycleService::Drain(
    grpc::CallbackServerContext* context, const v1::DrainRequest* request,
    v1::DrainResponse* response) {
  if (drain_ == nullptr) return Answer(context, "LifecycleService/Drain", kNoDrain);
  drain_->StartDrain("LifecycleService.Drain");
  Poke();
  return Answer(context, "LifecycleService/Drain", grpc::Status::OK);
}

}  // namespace stateside::rpc

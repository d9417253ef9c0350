// LifecycleService: GetInstance and the drain RPCs.
#include "sidecar/rpc/lifecycle_service.h"

#include <algorithm>
#include <vector>

#include "absl/time/clock.h"
#include "sidecar/rpc/status.h"
#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/unary_call.h"
#include "sidecar/rpc/watch_drain.h"
#include "spdlog/spdlog.h"

namespace stateside::rpc {
namespace {

v1::DrainState ToProto(DrainState state) {
  switch (state) {
    case DrainState::kServing:
      return v1::DRAIN_STATE_SERVING;
    case DrainState::kDraining:
      return v1::DRAIN_STATE_DRAINING;
    case DrainState::kDrained:
    case DrainState::kHolding:  // not in the proto: still "drained"
    case DrainState::kStopped:
      return v1::DRAIN_STATE_DRAINED;
  }
  return v1::DRAIN_STATE_UNSPECIFIED;
}

v1::Topology ToProto(StoreTopology topology) {
  switch (topology) {
    case StoreTopology::kMemory: return v1::TOPOLOGY_MEMORY;
    case StoreTopology::kStandalone: return v1::TOPOLOGY_STANDALONE;
    case StoreTopology::kSentinel: return v1::TOPOLOGY_SENTINEL;
    case StoreTopology::kCluster: return v1::TOPOLOGY_CLUSTER;
  }
  return v1::TOPOLOGY_UNSPECIFIED;
}

const grpc::Status kNoDrain(grpc::StatusCode::UNIMPLEMENTED,
                            "this server has no drain controller");

}  // namespace

void ToProto(const lifecycle::InstanceRecord& record, absl::Time now,
             v1::Instance* out) {
  out->set_id(record.id);
  out->set_hostname(record.hostname);
  out->set_pid(record.pid);
  ToProto(record.start_time, out->mutable_start_time());
  ToProto(std::max(absl::ZeroDuration(), now - record.start_time),
          out->mutable_uptime());
  out->set_version(record.version);
  out->set_drain_state(ToProto(record.drain_state));
  out->set_backend(record.backend);
  out->set_admin_address(record.admin_address);
  out->set_ready(record.ready);
}

void ToProto(const lifecycle::Instance& instance, v1::Instance* out) {
  ToProto(lifecycle::RecordOf(instance), absl::Now(), out);
  ToProto(instance.Uptime(), out->mutable_uptime());  // on the injected clock
}

grpc::ServerUnaryReactor* LifecycleService::ListInstances(
    grpc::CallbackServerContext* context, const v1::ListInstancesRequest* request,
    v1::ListInstancesResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Time started = absl::Now();
  // This instance's record comes from the live Instance, not from its last
  // heartbeat (nor missing because Redis lost it).
  auto finish = [this, reactor, response, started,
                 self = lifecycle::RecordOf(*instance_)](
                    absl::StatusOr<std::vector<lifecycle::InstanceRecord>> records) mutable {
    grpc::Status status = grpc::Status::OK;
    if (records.ok()) {
      std::vector<lifecycle::InstanceRecord>& all = *records;
      all.erase(std::remove_if(all.begin(), all.end(),
                               [&](const auto& r) { return r.id == self.id; }),
                all.end());
      all.push_back(std::move(self));
      std::sort(all.begin(), all.end(),
                [](const auto& a, const auto& b) { return a.id < b.id; });
      const absl::Time now = absl::Now();
      for (const lifecycle::InstanceRecord& r : all) {
        ToProto(r, now, response->add_instances());
      }
    } else {
      status = ToGrpcStatus(records.status());
    }
    if (metrics_ != nullptr) {
      metrics_->RecordRpc("LifecycleService/ListInstances",
                          CodeName(static_cast<absl::StatusCode>(status.error_code())),
                          absl::ToDoubleSeconds(absl::Now() - started));
    }
    reactor->Finish(status);
  };
  if (registry_ == nullptr) {
    finish(std::vector<lifecycle::InstanceRecord>());
  } else {
    registry_->List(std::move(finish));
  }
  return reactor;
}

grpc::ServerUnaryReactor* LifecycleService::GetInstance(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  using GetInstanceCall = UnaryCall<v1::GetInstanceRequest, v1::GetInstanceResponse>;
  return GetInstanceCall::Start(
      context, request, response, {metrics_, "LifecycleService/GetInstance"},
      [this](GetInstanceCall* call) {
        v1::Instance* out = call->response()->mutable_instance();
        ToProto(*instance_, out);
        if (drain_ != nullptr) {
          ToProto(drain_->options().prestop_delay, out->mutable_prestop_delay());
        }
        call->response()->set_api_revision(kApiRevision);
        v1::Capabilities* capabilities = call->response()->mutable_capabilities();
        capabilities->set_pipe(capabilities_.pipe);
        capabilities->set_session_events(capabilities_.session_events);
        capabilities->set_reflection(capabilities_.reflection);
        capabilities->set_request_ids(capabilities_.request_ids);
        capabilities->set_realtime_resume(capabilities_.realtime_resume);
        capabilities->set_topology(ToProto(capabilities_.topology));
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
  return WatchDrainReactor::Start(drain_, request->observer());
}

grpc::ServerUnaryReactor* LifecycleService::ReportDrained(
    grpc::CallbackServerContext* context, const v1::ReportDrainedRequest* request,
    v1::ReportDrainedResponse* response) {
  if (drain_ == nullptr) {
    return Answer(context, "LifecycleService/ReportDrained", kNoDrain);
  }
  const absl::Status reported = drain_->ReportDrained(request->drain_token());
  if (reported.ok()) Poke();
  return Answer(context, "LifecycleService/ReportDrained", ToGrpcStatus(reported));
}

grpc::ServerUnaryReactor* LifecycleService::Drain(
    grpc::CallbackServerContext* context, const v1::DrainRequest* request,
    v1::DrainResponse* response) {
  if (drain_ == nullptr) return Answer(context, "LifecycleService/Drain", kNoDrain);
  const bool hold = request->hold_until_signal();
  if (!drain_->draining()) {
    spdlog::info("drain requested by LifecycleService.Drain{}",
                 hold ? " (hold until SIGTERM afterwards)" : "");
  }
  drain_->StartDrain("LifecycleService.Drain",
                     hold ? AfterDrain::kHoldUntilSignal : AfterDrain::kExit);
  Poke();
  return Answer(context, "LifecycleService/Drain", grpc::Status::OK);
}

}  // namespace stateside::rpc

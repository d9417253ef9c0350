// Starting and finishing one PipeCall (see pipe_call.h).
#include "sidecar/rpc/pipe_call.h"

#include <string>
#include <utility>

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_cat.h"
#include "sidecar/common/error_reason.h"
#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/pipe_wire.h"
#include "sidecar/rpc/status.h"

namespace stateside::rpc {
namespace {

// The labels of one transport, by operation (literals: metrics keep views).
struct MethodNames {
  std::string_view none, create, get, update, touch, destroy, regenerate, list_user_sessions,
      destroy_user_sessions, set_opt_out, get_opt_out;
};

constexpr MethodNames kPipeNames{
    "SessionService/Pipe",
    "SessionService/Pipe.Create",
    "SessionService/Pipe.Get",
    "SessionService/Pipe.Update",
    "SessionService/Pipe.Touch",
    "SessionService/Pipe.Destroy",
    "SessionService/Pipe.Regenerate",
    "SessionService/Pipe.ListUserSessions",
    "SessionService/Pipe.DestroyUserSessions",
    "SessionService/Pipe.SetOptOut",
    "SessionService/Pipe.GetOptOut",
};

constexpr MethodNames kFrameNames{
    "SessionService/Frames",
    "SessionService/Frames.Create",
    "SessionService/Frames.Get",
    "SessionService/Frames.Update",
    "SessionService/Frames.Touch",
    "SessionService/Frames.Destroy",
    "SessionService/Frames.Regenerate",
    "SessionService/Frames.ListUserSessions",
    "SessionService/Frames.DestroyUserSessions",
    "SessionService/Frames.SetOptOut",
    "SessionService/Frames.GetOptOut",
};

}  // namespace

std::string_view PipeMethod(PipeTransport transport, v1::PipeCall::OpCase op) {
  const MethodNames& n = transport == PipeTransport::kPipe ? kPipeNames : kFrameNames;
  switch (op) {
    case v1::PipeCall::kCreate: return n.create;
    case v1::PipeCall::kGet: return n.get;
    case v1::PipeCall::kUpdate: return n.update;
    case v1::PipeCall::kTouch: return n.touch;
    case v1::PipeCall::kDestroy: return n.destroy;
    case v1::PipeCall::kRegenerate: return n.regenerate;
    case v1::PipeCall::kListUserSessions: return n.list_user_sessions;
    case v1::PipeCall::kDestroyUserSessions: return n.destroy_user_sessions;
    case v1::PipeCall::kSetOptOut: return n.set_opt_out;
    case v1::PipeCall::kGetOptOut: return n.get_opt_out;
    case v1::PipeCall::OP_NOT_SET: break;
  }
  return n.none;
}

void StartPipeCall(const Operations& ops, PipeTransport transport, const v1::PipeCall& call,
                   PipeCallRun* run, v1::PipeResult* r, Operations::Call* slot,
                   Offload::Probe probe) {
  if (call.has_timeout()) {
    // Range-checked as every other Duration of the API.
    const absl::StatusOr<absl::Duration> timeout =
        NonNegativeDurationFromProto(call.timeout(), "timeout");
    if (!timeout.ok()) {
      run->method = PipeMethod(transport, v1::PipeCall::OP_NOT_SET);
      return slot->OperationDone(timeout.status());
    }
    if (*timeout > absl::ZeroDuration()) run->deadline = run->started + *timeout;
  }
  run->method = PipeMethod(transport, call.op_case());
  auto done = [slot](absl::Status status) { slot->OperationDone(std::move(status)); };
  switch (call.op_case()) {
    case v1::PipeCall::kCreate:
      return ops.Create(call.create(), r->mutable_create(), done, std::move(probe));
    case v1::PipeCall::kGet:
      return ops.GetOn(call.get(), r->mutable_get(), slot);
    case v1::PipeCall::kUpdate:
      return ops.UpdateOn(call.update(), r->mutable_update(), slot);
    case v1::PipeCall::kTouch:
      return ops.Touch(call.touch(), r->mutable_touch(), done, std::move(probe));
    case v1::PipeCall::kDestroy:
      return ops.Destroy(call.destroy(), r->mutable_destroy(), done, std::move(probe));
    case v1::PipeCall::kRegenerate:
      return ops.Regenerate(call.regenerate(), r->mutable_regenerate(), done, std::move(probe));
    case v1::PipeCall::kListUserSessions:
      return ops.ListUserSessions(call.list_user_sessions(), r->mutable_list_user_sessions(),
                                  done, std::move(probe));
    case v1::PipeCall::kDestroyUserSessions:
      return ops.DestroyUserSessions(call.destroy_user_sessions(),
                                     r->mutable_destroy_user_sessions(), done, std::move(probe));
    case v1::PipeCall::kSetOptOut:
      return ops.SetOptOut(call.set_opt_out(), r->mutable_set_opt_out(), done, std::move(probe));
    case v1::PipeCall::kGetOptOut:
      return ops.GetOptOut(call.get_opt_out(), r->mutable_get_opt_out(), done, std::move(probe));
    case v1::PipeCall::OP_NOT_SET:
      break;
  }
  slot->OperationDone(absl::InvalidArgumentError("pipe call without an operation"));
}

absl::Status MalformedPipeCall(std::string_view call_bytes, uint64_t* id) {
  const MalformedCall read = ReadMalformedCall(call_bytes);
  *id = read.id;
  const google::protobuf::FieldDescriptor* op =
      v1::PipeCall::descriptor()->FindFieldByNumber(read.op_field);
  const std::string& type = op != nullptr && op->message_type() != nullptr
                                ? op->message_type()->full_name()
                                : v1::PipeCall::descriptor()->full_name();
  return absl::InvalidArgumentError("malformed request: not a valid " + type);
}

absl::Status DuplicatePipeCall(uint64_t id, std::string_view carrier) {
  return WithReason(absl::InvalidArgumentError(absl::StrCat(
                        "call id ", id, " is already in flight on this ", std::string(carrier))),
                    "DUPLICATE_CALL_ID", "id");
}

void FinishPipeCall(const PipeCallRun& run, absl::Status status, v1::PipeResult* r,
                    admin::Metrics* metrics) {
  const absl::Time now = absl::Now();
  if (status.ok() && now > run.deadline) {
    // As a unary call past its deadline: the work may have been done, the
    // answer is DEADLINE_EXCEEDED.
    status = absl::DeadlineExceededError("deadline exceeded");
  }
  const grpc::Status wire = ToGrpcStatus(status);
  r->set_code(static_cast<int32_t>(wire.error_code()));
  if (!wire.ok()) {
    r->set_message(wire.error_message());
    r->clear_response();
    ErrorInfoOf(status, r->mutable_error_info());
  }
  if (metrics != nullptr) {
    metrics->RecordRpc(run.method, static_cast<int>(wire.error_code()),
                       absl::ToDoubleSeconds(now - run.started));
    metrics->RpcFinished();
  }
}

}  // namespace stateside::rpc

// One unary RPC in progress, over raw bytes. grpc++ 1.51's typed callback
// handler answers UNIMPLEMENTED (with no message) when a request does not
// parse — a malformed protobuf, invalid UTF-8 in a string field — which
// misleads clients. The services therefore register raw methods and parse
// here, so an undecodable request is INVALID_ARGUMENT like any bad input.
//
// A UnaryCall owns the parsed request and the response from the start of the
// handler until Finish, which serializes the response, finishes the reactor
// and deletes the call. Finish is called exactly once, from any thread:
// inline by a handler whose manager answers at once (the memory store), or
// later from an asynchronous completion. The handler never blocks for it.
// Each call is metered (RpcMeter): in-flight from Start to Finish, then
// counted by method and status code with its latency.
#ifndef STATESIDE_SIDECAR_RPC_UNARY_CALL_H_
#define STATESIDE_SIDECAR_RPC_UNARY_CALL_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/rpc/offload.h"
#include "sidecar/rpc/status.h"

namespace stateside::rpc {

// Where a call's metrics go: `metrics` may be null (not metered); `method`
// is a literal like "SessionService/Create" (it must outlive the call).
struct RpcMeter {
  admin::Metrics* metrics = nullptr;
  std::string_view method;
};

// The gRPC code name of an absl code ("OK", "NOT_FOUND", ...): the two
// enumerations share numbers and names.
inline std::string_view CodeName(absl::StatusCode code) {
  return admin::GrpcCodeName(static_cast<int>(code));
}

// The probe (offload.h) of a unary call: CANCELLED once the client went or
// the server cancelled it, DEADLINE_EXCEEDED once its deadline passed.
// REQUIRES: used only until the call finishes (the context lives till then).
inline Offload::Probe CallProbe(grpc::CallbackServerContext* context) {
  return [context]() -> absl::Status {
    if (context->IsCancelled()) return absl::CancelledError("the call was cancelled");
    if (absl::FromChrono(context->deadline()) <= absl::Now()) {
      return absl::DeadlineExceededError("deadline exceeded before the call ran");
    }
    return absl::OkStatus();
  };
}

template <typename Request, typename Response>
class UnaryCall {
 public:
  // Parses the request and runs handle(call), which must lead to exactly one
  // call->Finish(...). A request that does not parse is finished at once with
  // INVALID_ARGUMENT, without running `handle`. Returns the reactor that
  // grpc++ expects from a callback method.
  template <typename Handle>
  static grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request_bytes,
                                         grpc::ByteBuffer* response_bytes,
                                         RpcMeter meter, Handle&& handle) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto* call = new UnaryCall(reactor, response_bytes, meter);
    if (meter.metrics != nullptr) meter.metrics->RpcStarted();
    // Deserialize consumes its buffer; the copy shares the slices.
    grpc::ByteBuffer buffer(*request_bytes);
    if (!grpc::SerializationTraits<Request>::Deserialize(&buffer, &call->request_)
             .ok()) {
      call->Finish(absl::InvalidArgumentError(
          "malformed request: not a valid " + Request::descriptor()->full_name()));
      return reactor;
    }
    std::forward<Handle>(handle)(call);
    return reactor;
  }

  const Request& request() const { return request_; }
  Response* response() { return &response_; }

  // Ends the call with `status` (and the response, if OK); deletes `this`.
  void Finish(const absl::Status& status) {
    grpc::Status result = ToGrpcStatus(status);
    if (result.ok()) {
      bool own_buffer = false;
      result = grpc::SerializationTraits<Response>::Serialize(
          response_, response_bytes_, &own_buffer);
    }
    if (meter_.metrics != nullptr) {
      meter_.metrics->RecordRpc(meter_.method,
                                static_cast<int>(result.error_code()),
                                absl::ToDoubleSeconds(absl::Now() - started_));
      meter_.metrics->RpcFinished();
    }
    grpc::ServerUnaryReactor* reactor = reactor_;
    delete this;
    reactor->Finish(std::move(result));
  }

  // On success fill(value) writes the response; then Finish as above.
  template <typename T, typename Fill>
  void Finish(absl::StatusOr<T> result, Fill&& fill) {
    if (!result.ok()) return Finish(result.status());
    std::forward<Fill>(fill)(*std::move(result), &response_);
    Finish(absl::OkStatus());
  }

 private:
  UnaryCall(grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* response_bytes,
            RpcMeter meter)
      : reactor_(reactor), response_bytes_(response_bytes), meter_(meter) {}

  grpc::ServerUnaryReactor* const reactor_;
  grpc::ByteBuffer* const response_bytes_;  // owned by gRPC until Finish
  const RpcMeter meter_;
  const absl::Time started_ = absl::Now();
  Request request_;
  Response response_;
};

// Starts a unary call and runs `op`, a member of `ops` with the shape
// (const Request&, Response*, done(absl::Status)) (see operations.h), which
// finishes it.
template <typename Call, typename Ops, typename Op>
grpc::ServerUnaryReactor* RunOperation(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response, RpcMeter meter,
                                       const Ops& ops, Op op) {
  return Call::Start(context, request, response, meter, [&ops, op, context](Call* call) {
    (ops.*op)(call->request(), call->response(),
              [call](absl::Status status) { call->Finish(status); }, CallProbe(context));
  });
}

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_UNARY_CALL_H_

// One PipeCall's run, shared by the transports that carry PipeRequest and
// PipeResponse: the Pipe stream (pipe.h) and the frame socket
// (frame_server.h). StartPipeCall dispatches the call to the shared
// operations (operations.h) and FinishPipeCall turns the status into the
// result's code, message and ErrorInfo, so both answer the same request with
// the same result by construction.
// Pure functions over their arguments; thread-safe.
#ifndef STATESIDE_SIDECAR_RPC_PIPE_CALL_H_
#define STATESIDE_SIDECAR_RPC_PIPE_CALL_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/rpc/operations.h"
#include "stateside/v1/session.pb.h"

namespace stateside::rpc {

// The transport a call came on: the prefix of its metric label
// ("SessionService/Pipe.Get", "SessionService/Frames.Get").
enum class PipeTransport : uint8_t { kPipe, kFrames };

// What a call carries from its start to its result.
struct PipeCallRun {
  std::string_view method;  // the metric label: a literal
  absl::Time started;       // when it was read; its timeout counts from here
  absl::Time deadline = absl::InfiniteFuture();
};

// The metric label of `op` on `transport` ("SessionService/Pipe" for
// OP_NOT_SET and a call answered without running).
std::string_view PipeMethod(PipeTransport transport, v1::PipeCall::OpCase op);

// Starts `call`: sets run->method and run->deadline (from its timeout,
// range-checked as every Duration of the API), then runs its operation,
// which writes its response into `result`; slot->OperationDone runs once
// with the status (at once for a bad timeout or a call without an
// operation). A Get or Update runs on `slot` itself (Operations::Call: no
// closure on its way to the store and back); the other operations get a
// callback of the slot's pointer, which needs no allocation either.
// REQUIRES: run->started is set; `result` and `slot` stay alive until
// OperationDone runs.
void StartPipeCall(const Operations& ops, PipeTransport transport, const v1::PipeCall& call,
                   PipeCallRun* run, v1::PipeResult* result, Operations::Call* slot,
                   Offload::Probe probe);

// The INVALID_ARGUMENT of a call whose bytes do not parse as a PipeCall,
// worded as the unary RPC answers the same request (it names the
// operation's request type when the call has one); *id is the id read from
// it, or 0.
absl::Status MalformedPipeCall(std::string_view call_bytes, uint64_t* id);

// The INVALID_ARGUMENT (reason DUPLICATE_CALL_ID) of a call whose id is
// already in flight on its `carrier` ("stream", "connection").
absl::Status DuplicatePipeCall(uint64_t id, std::string_view carrier);

// Ends a call: an OK past run.deadline becomes DEADLINE_EXCEEDED (as a
// unary call past its deadline); sets the result's code, and for an error
// its message and ErrorInfo without the response; records the RPC in
// `metrics` (may be null) and counts it finished.
void FinishPipeCall(const PipeCallRun& run, absl::Status status, v1::PipeResult* result,
                    admin::Metrics* metrics);

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_PIPE_CALL_H_

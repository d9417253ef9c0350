// How one attempt of a session or opt-out operation reaches the sidecar: the
// interface shared by the unary RPCs (unary_transport.h) and the Pipe streams
// (pipe_transport.h). An operation is described by the PipeCall it would be on
// a stream (its `op`), and answered by the PipeResult the stream would carry,
// whichever way it travelled: one description, two transports.
// Thread-safe: Start may be called from any thread, including from `done`.
#ifndef STATESIDE_CLIENT_SRC_CALL_TRANSPORT_H_
#define STATESIDE_CLIENT_SRC_CALL_TRANSPORT_H_

#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/src/convert.h"
#include "stateside/v1/session.pb.h"

namespace stateside::client_internal {

// What an attempt ended with: `status`, and when it is OK, the operation's
// response in `result` (result.code and result.message are not used).
struct Outcome {
  absl::Status status;
  v1::PipeResult result;
};

using OutcomeCallback = absl::AnyInvocable<void(Outcome)>;

// What a PipeResult from the sidecar means for its attempt: its status
// (FromPipeResult) unless OK, else its response.
inline Outcome OutcomeOf(v1::PipeResult result) {
  Outcome outcome;
  if (result.code() != 0) {
    outcome.status = FromPipeResult(result);
  } else {
    outcome.result = std::move(result);
  }
  return outcome;
}

class CallTransport {
 public:
  virtual ~CallTransport() = default;

  // Starts one attempt of `call.op` that must end by `deadline` (the
  // transport sets call.id and call.timeout itself). `done` runs exactly
  // once: on a gRPC or client thread, or on this thread before Start returns
  // when the attempt fails at once.
  virtual void Start(v1::PipeCall call, absl::Time deadline, OutcomeCallback done) = 0;

  // Ends every attempt still running with CANCELLED, waits until their
  // callbacks have run, and refuses later ones (CANCELLED). Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_CALL_TRANSPORT_H_

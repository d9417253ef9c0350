// Runs session and opt-out operations to completion over a CallTransport:
// one deadline (ClientOptions::call_timeout from the start), the retry
// policy of retry.h (UNAVAILABLE, idempotent operations only), the waits
// between attempts on the Timer rather than on a thread. The synchronous
// form is the asynchronous one plus a wait.
// Thread-safe.
#ifndef STATESIDE_CLIENT_SRC_CALL_RUNNER_H_
#define STATESIDE_CLIENT_SRC_CALL_RUNNER_H_

#include <memory>

#include "absl/functional/any_invocable.h"
#include "client/src/call_transport.h"
#include "client/src/retry.h"
#include "client/src/timer.h"
#include "stateside/client.h"

namespace stateside::client_internal {

class CallRunner {
 public:
  // REQUIRES: all arguments outlive this; `jitter` returns values in [0, 1].
  CallRunner(const ClientOptions* options, CallTransport* transport, Timer* timer,
             absl::AnyInvocable<double()> jitter);

  // `done` runs exactly once (see CallTransport::Start for where).
  void Run(Rpc rpc, v1::PipeCall call, OutcomeCallback done);
  Outcome RunAndWait(Rpc rpc, v1::PipeCall call);

 private:
  struct Call;
  void Attempt(std::unique_ptr<Call> call);
  void OnAttempt(std::unique_ptr<Call> call, Outcome outcome);

  const ClientOptions* const options_;
  CallTransport* const transport_;
  Timer* const timer_;
  absl::AnyInvocable<double()> jitter_;
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_CALL_RUNNER_H_

#include "client/src/call_runner.h"

#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace stateside::client_internal {

struct CallRunner::Call {
  Rpc rpc;
  v1::PipeCall call;  // kept for a retry when the operation may be retried
  absl::Time deadline;
  int retries = 0;
  OutcomeCallback done;
};

CallRunner::CallRunner(const ClientOptions* options, CallTransport* transport,
                       Timer* timer, absl::AnyInvocable<double()> jitter)
    : options_(options), transport_(transport), timer_(timer), jitter_(std::move(jitter)) {}

void CallRunner::Run(Rpc rpc, v1::PipeCall call, OutcomeCallback done) {
  auto c = std::make_unique<Call>();
  c->rpc = rpc;
  c->call = std::move(call);
  c->deadline = absl::Now() + options_->call_timeout;
  c->done = std::move(done);
  Attempt(std::move(c));
}

void CallRunner::Attempt(std::unique_ptr<Call> call) {
  // Only a call that may be retried needs its operation after this attempt.
  v1::PipeCall op = IsRetryable(call->rpc) ? call->call : std::move(call->call);
  const absl::Time deadline = call->deadline;
  transport_->Start(std::move(op), deadline,
                    [this, call = std::move(call)](Outcome outcome) mutable {
                      OnAttempt(std::move(call), std::move(outcome));
                    });
}

void CallRunner::OnAttempt(std::unique_ptr<Call> call, Outcome outcome) {
  if (ShouldRetry(call->rpc, outcome.status.code(), call->retries, options_->max_retries)) {
    const absl::Duration delay = BackoffDelay(call->retries + 1, options_->initial_backoff,
                                              options_->max_backoff, jitter_());
    // A retry that could not finish in time would only turn a meaningful
    // UNAVAILABLE into DEADLINE_EXCEEDED.
    if (absl::Now() + delay < call->deadline) {
      ++call->retries;
      timer_->Schedule(absl::Now() + delay, [this, call = std::move(call)]() mutable {
        Attempt(std::move(call));
      });
      return;
    }
  }
  call->done(std::move(outcome));
}

Outcome CallRunner::RunAndWait(Rpc rpc, v1::PipeCall call) {
  absl::Notification finished;
  Outcome result;
  Run(rpc, std::move(call), [&](Outcome outcome) {
    result = std::move(outcome);
    finished.Notify();
  });
  finished.WaitForNotification();
  return result;
}

}  // namespace stateside::client_internal

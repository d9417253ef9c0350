// One client call under one deadline with the retry policy of retry.h: the
// loop every Client method (and the realtime calls) runs its attempts in.
// Thread-safe: no state; `jitter` must be callable from any thread.
#ifndef STATESIDE_CLIENT_SRC_RETRYING_CALL_H_
#define STATESIDE_CLIENT_SRC_RETRYING_CALL_H_

#include <grpcpp/client_context.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/src/convert.h"
#include "client/src/retry.h"
#include "stateside/client.h"

namespace stateside::client_internal {

// Sleeps before retry number `retry` (1 = first); false, without sleeping,
// when the retry could not finish before `deadline` (it would only turn a
// meaningful UNAVAILABLE into DEADLINE_EXCEEDED).
inline bool WaitBeforeRetry(int retry, absl::Time deadline, const ClientOptions& options,
                            double jitter) {
  const absl::Duration delay =
      BackoffDelay(retry, options.initial_backoff, options.max_backoff, jitter);
  if (absl::Now() + delay >= deadline) return false;
  absl::SleepFor(delay);
  return true;
}

// Runs `attempt(context)` under one deadline (options.call_timeout from
// now), retrying per ShouldRetry. `attempt` must reset its response message:
// it may run several times.
template <typename Attempt>
absl::Status CallWithRetries(Rpc rpc, const ClientOptions& options,
                             absl::FunctionRef<double()> jitter, const Attempt& attempt) {
  const absl::Time deadline = absl::Now() + options.call_timeout;
  for (int retries = 0;; ++retries) {
    ::grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    absl::Status status = FromGrpcStatus(attempt(&context));
    if (!ShouldRetry(rpc, status.code(), retries, options.max_retries) ||
        !WaitBeforeRetry(retries + 1, deadline, options, jitter())) {
      return status;
    }
  }
}

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_RETRYING_CALL_H_

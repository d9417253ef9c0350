// stateside::ForwardShutdownSignals: the app's SIGTERM/SIGINT become a Drain
// of its sidecar, so a signal to either process starts the same drain (or,
// with `forward` off, are only counted: see below).
// Thread-safe: the forwarder's own thread does all the work.
//
// Contract
// - ForwardShutdownSignals() blocks SIGTERM and SIGINT in the calling thread
//   and starts a thread that waits for them (signalfd). Threads inherit the
//   signal mask of the thread that creates them, so CALL IT IN main() BEFORE
//   ANY OTHER THREAD STARTS (before creating the Client, gRPC servers, thread
//   pools...): a thread started earlier still has the signals unblocked,
//   and the kernel may deliver SIGTERM there, killing the process at once.
// - First signal: calls client->Drain() (with the client's deadline and
//   retries), then on_forwarded(signo, status of the Drain call). The app
//   learns that the drain has begun from its DrainWatcher (DRAINING, after
//   the sidecar's pre-stop delay), drains, and calls ReportDrained.
//   With `forward` false the first signal is only counted
//   (signals_received()): no call, no hook. That is for a Kubernetes native
//   sidecar whose preStop hook starts the drain (`statesidectl drain
//   --no-follow`): the app's own SIGTERM must not drain the pod, since the
//   kubelet also sends it when it restarts the app container alone.
// - Second and later signals: NOT forwarded (Drain is idempotent; it would
//   do nothing). on_second_signal(signo) runs instead: the operator asked
//   for a fast exit, and the app must do it itself. Unset: the process
//   ends as the signal's default action would (killed by the signal).
// - Destruction stops the thread (REQUIRES: not from inside a hook). The
//   signals stay blocked in the threads that blocked them, and pending:
//   destroy the forwarder only while shutting down.
// - `client` must outlive the forwarder.
#ifndef STATESIDE_CLIENT_INCLUDE_STATESIDE_SHUTDOWN_SIGNALS_H_
#define STATESIDE_CLIENT_INCLUDE_STATESIDE_SHUTDOWN_SIGNALS_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "stateside/client.h"

namespace stateside {

struct ShutdownSignalOptions {
  // Whether the first signal becomes a Drain of the sidecar (see above).
  bool forward = true;
  // After the first signal's Drain call, with its result (e.g. UNAVAILABLE
  // when the sidecar is already gone: the app should then drain on its own).
  // Not called without `forward`.
  std::function<void(int signo, const absl::Status& drain)> on_forwarded;
  // For every later signal. Unset: die by the signal (see above).
  std::function<void(int signo)> on_second_signal;
};

// Owns the signal-waiting thread. Not copyable.
class ShutdownSignalForwarder {
 public:
  ~ShutdownSignalForwarder();
  ShutdownSignalForwarder(const ShutdownSignalForwarder&) = delete;
  ShutdownSignalForwarder& operator=(const ShutdownSignalForwarder&) = delete;

  // How many SIGTERM/SIGINT arrived so far.
  int signals_received() const;

 private:
  friend absl::StatusOr<std::unique_ptr<ShutdownSignalForwarder>>
  ForwardShutdownSignals(Client* client, ShutdownSignalOptions options);
  class Impl;
  explicit ShutdownSignalForwarder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;  // constant after construction
};

// INVALID_ARGUMENT if client is null; INTERNAL if the signal fd or thread
// cannot be set up (the signal mask is then restored).
absl::StatusOr<std::unique_ptr<ShutdownSignalForwarder>> ForwardShutdownSignals(
    Client* client, ShutdownSignalOptions options = {});

}  // namespace stateside

#endif  // STATESIDE_CLIENT_INCLUDE_STATESIDE_SHUTDOWN_SIGNALS_H_

// Shutdown signals (SIGTERM, SIGINT) handled on one thread, outside any
// signal handler: the watcher's callback may lock, log and start a drain.
// This is the only place the sidecar touches signal dispositions.
//
// BlockShutdownSignals() must run in main before any thread starts, so that
// every thread inherits the blocked mask and the signals wait for the
// watcher (signalfd) instead of killing the process. SignalWatcher is
// thread-compatible (one owner); its callback runs on the watcher's thread.
#ifndef STATESIDE_SIDECAR_SERVER_SIGNALS_H_
#define STATESIDE_SIDECAR_SERVER_SIGNALS_H_

#include <functional>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"

namespace stateside {

// Blocks SIGTERM and SIGINT in the calling thread (and threads it starts
// afterwards). Also ignores SIGPIPE: a peer closing a socket is an error
// value, never a reason to die.
void BlockShutdownSignals();

class SignalWatcher {
 public:
  // Calls on_signal(signo) on a dedicated thread for every SIGTERM or SIGINT
  // received, in order. REQUIRES: BlockShutdownSignals() was called first.
  static absl::StatusOr<std::unique_ptr<SignalWatcher>> Start(
      std::function<void(int signo)> on_signal);

  // Stops the thread (a callback in progress finishes first).
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  SignalWatcher(int signal_fd, int stop_fd,
                std::function<void(int signo)> on_signal);
  void Loop();

  const int signal_fd_;  // signalfd for SIGTERM, SIGINT
  const int stop_fd_;    // eventfd written by the destructor
  const std::function<void(int)> on_signal_;
  std::thread thread_;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_SIGNALS_H_

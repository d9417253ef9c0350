// ShutdownSignalForwarder: signalfd + eventfd polled by one thread. The
// contract is in stateside/shutdown_signals.h.
#include "stateside/shutdown_signals.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace stateside {

// signalfd rather than sigwait: the destructor can wake the thread through
// an eventfd, without sending it a signal that would look like a real one.
class ShutdownSignalForwarder::Impl {
 public:
  Impl(Client* client, ShutdownSignalOptions options, int signal_fd, int stop_fd)
      : client_(client),
        options_(std::move(options)),
        signal_fd_(signal_fd),
        stop_fd_(stop_fd),
        thread_([this] { Run(); }) {}

  ~Impl() {
    const uint64_t one = 1;
    // An eventfd write of 1 cannot fail short of a counter overflow.
    (void)!write(stop_fd_, &one, sizeof(one));
    thread_.join();
    close(signal_fd_);
    close(stop_fd_);
  }

  int signals_received() const {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  void Run() {
    for (;;) {
      pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      signalfd_siginfo info;
      if (read(signal_fd_, &info, sizeof(info)) != sizeof(info)) continue;
      const int signo = static_cast<int>(info.ssi_signo);
      int count;
      {
        absl::MutexLock lock(&mu_);
        count = ++received_;
      }
      if (count == 1) {
        if (!options_.forward) continue;  // counted only: the app polls
        const absl::Status drain = client_->Drain();
        if (options_.on_forwarded) options_.on_forwarded(signo, drain);
      } else if (options_.on_second_signal) {
        options_.on_second_signal(signo);
      } else {
        DieBySignal(signo);
      }
    }
  }

  // The default action of `signo` (terminate), as if it had never been
  // blocked: restore the default disposition and unblock it in this thread.
  [[noreturn]] static void DieBySignal(int signo) {
    signal(signo, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    raise(signo);
    _exit(128 + signo);  // only if the signal did not end the process
  }

  // Constant after construction.
  Client* const client_;
  const ShutdownSignalOptions options_;
  const int signal_fd_;
  const int stop_fd_;

  mutable absl::Mutex mu_;
  int received_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread thread_;  // last: starts once the fields above are set
};

ShutdownSignalForwarder::ShutdownSignalForwarder(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
ShutdownSignalForwarder::~ShutdownSignalForwarder() = default;

int ShutdownSignalForwarder::signals_received() const {
  return impl_->signals_received();
}

absl::StatusOr<std::unique_ptr<ShutdownSignalForwarder>> ForwardShutdownSignals(
    Client* client, ShutdownSignalOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("client: null");
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (const int rc = pthread_sigmask(SIG_BLOCK, &set, &old); rc != 0) {
    return absl::InternalError(absl::StrCat("pthread_sigmask: ", strerror(rc)));
  }
  const int signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
  const int saved_errno = errno;
  const int stop_fd = signal_fd < 0 ? -1 : eventfd(0, EFD_CLOEXEC);
  if (signal_fd < 0 || stop_fd < 0) {
    const int err = signal_fd < 0 ? saved_errno : errno;
    if (signal_fd >= 0) close(signal_fd);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return absl::InternalError(absl::StrCat("signalfd/eventfd: ", strerror(err)));
  }
  // The thread starts with the signals blocked (inherited), as it must.
  auto impl = std::make_unique<ShutdownSignalForwarder::Impl>(
      client, std::move(options), signal_fd, stop_fd);
  return std::unique_ptr<ShutdownSignalForwarder>(
      new ShutdownSignalForwarder(std::move(impl)));
}

}  // namespace stateside

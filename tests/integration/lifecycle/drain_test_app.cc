// A minimal stateless "app" for the drain tests, written the way the client
// library's docs tell an app to be: block SIGTERM/SIGINT first thing in
// main, connect, forward its own shutdown signals to the sidecar as Drain,
// watch the drain, keep serving (here: a closed loop of session reads and
// writes on `--workers` threads) until DRAINING, then stop, report drained
// and exit 0.
//
//   drain_test_app --socket PATH [--workers N] [--ignore-sigterm]
//
// --ignore-sigterm: an app that neither forwards nor acts on SIGTERM (it is
// ignored, SIG_IGN); only the sidecar's DRAINING ends it — the native
// sidecar layout, where the sidecar's preStop hook starts the drain.
//
// Prints "ready" once the load has made 100 successful calls and the drain
// watch is attached, and at the end one line
// "calls=<ok> failed=<n> first_error=<status>"; exits 0 if no call failed.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "stateside/client.h"
#include "stateside/drain_watcher.h"
#include "stateside/shutdown_signals.h"

int main(int argc, char** argv) {
  stateside::ClientOptions options;
  int workers = 4;
  bool ignore_sigterm = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--ignore-sigterm") == 0) {
      ignore_sigterm = true;
    } else if (i + 1 < argc && std::strcmp(argv[i], "--socket") == 0) {
      options.socket_path = argv[++i];
    } else if (i + 1 < argc && std::strcmp(argv[i], "--workers") == 0) {
      workers = std::atoi(argv[++i]);
    }
  }
  // Before any thread exists: every thread inherits the blocked mask, and
  // the forwarder's signalfd is the only place the signals arrive.
  if (ignore_sigterm) {
    signal(SIGTERM, SIG_IGN);
  } else {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

  auto client = stateside::Client::Connect(options);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<stateside::ShutdownSignalForwarder> forwarder;
  if (!ignore_sigterm) {
    auto started = stateside::ForwardShutdownSignals(client->get());
    if (!started.ok()) {
      std::fprintf(stderr, "signals: %s\n", started.status().ToString().c_str());
      return 1;
    }
    forwarder = *std::move(started);
  }
  absl::Notification draining;
  std::string drain_token;  // written before draining is notified
  auto watcher = stateside::DrainWatcher::Start(
      **client, [&](const stateside::DrainNotice& notice) {
        if (notice.state == stateside::DrainState::kDraining &&
            !draining.HasBeenNotified()) {
          drain_token = notice.drain_token;
          draining.Notify();
        }
      });
  if (!watcher.ok()) {
    std::fprintf(stderr, "watch: %s\n", watcher.status().ToString().c_str());
    return 1;
  }

  auto session = (*client)->CreateSession("drain-app-user", {{"cart", "0"}});
  if (!session.ok()) {
    std::fprintf(stderr, "create: %s\n", session.status().ToString().c_str());
    return 1;
  }
  const stateside::SessionRef ref = stateside::SessionRef::Cookie(session->cookie);

  constexpr long kReadyAfter = 100;
  absl::Notification under_load;
  std::atomic<long> ok{0};
  std::atomic<long> failed{0};
  absl::Mutex error_mu;
  std::string first_error = "OK";
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      for (long n = 0; !draining.HasBeenNotified(); ++n) {
        absl::Status status =
            n % 2 == 0 ? (*client)->GetSession(ref).status()
                       : (*client)
                             ->UpdateSession(ref, {{"w" + std::to_string(w),
                                                    std::to_string(n)}})
                             .status();
        if (status.ok()) {
          if (ok.fetch_add(1) + 1 == kReadyAfter) under_load.Notify();
        } else {
          failed.fetch_add(1);
          absl::MutexLock lock(&error_mu);
          if (first_error == "OK") first_error = status.ToString();
        }
      }
    });
  }
  under_load.WaitForNotification();
  // Attached (its stream has had the sidecar's first event): a signal now
  // finds an app watcher to wait for. The watcher has no hook for this, so
  // poll its counter, for at most 10 s.
  const absl::Time attach_deadline = absl::Now() + absl::Seconds(10);
  while ((*watcher)->attached_count() == 0 && absl::Now() < attach_deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  if ((*watcher)->attached_count() == 0) {
    std::fprintf(stderr, "watch: not attached after 10 s\n");
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);

  draining.WaitForNotification();
  for (std::thread& t : threads) t.join();
  // The in-flight requests are answered: tell the sidecar, then leave.
  // With the watcher's token: counted once for it, as a real app reports.
  const absl::Status reported = (*client)->ReportDrained(drain_token);
  std::printf("calls=%ld failed=%ld first_error=%s reported=%s\n", ok.load(),
              failed.load(), first_error.c_str(), reported.ToString().c_str());
  std::fflush(stdout);
  return failed.load() == 0 && reported.ok() ? 0 : 1;
}

// PeriodicTask and SignalWatcher. Its own binary: the signal test needs a
// process whose every thread blocks SIGTERM, which gRPC threads of other
// tests would not.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "sidecar/server/periodic.h"
#include "sidecar/server/signals.h"
#include "tests/support/wait.h"

namespace stateside {
namespace {

TEST(PeriodicTaskTest, RunsRepeatedlyUntilDestroyed) {
  std::atomic<int> runs{0};
  PeriodicTask task(absl::Milliseconds(1), [&] { ++runs; });
  EXPECT_TRUE(testing::WaitFor([&] { return runs.load() >= 3; }));
}

TEST(PeriodicTaskTest, StopsAtOnceDuringALongInterval) {
  std::atomic<int> runs{0};
  const absl::Time start = absl::Now();
  {
    PeriodicTask task(absl::Hours(1), [&] { ++runs; });
  }
  EXPECT_EQ(runs.load(), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
}

TEST(SignalWatcherTest, DeliversTermAndIntInOrder) {
  BlockShutdownSignals();  // before the watcher's thread exists
  absl::Mutex mu;
  std::vector<int> received;
  auto watcher = SignalWatcher::Start([&](int signo) {
    absl::MutexLock lock(&mu);
    received.push_back(signo);
  });
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  ASSERT_TRUE(testing::WaitFor([&] {
    absl::MutexLock lock(&mu);
    return received.size() == 1;
  }));
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  ASSERT_TRUE(testing::WaitFor([&] {
    absl::MutexLock lock(&mu);
    return received.size() == 2;
  }));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(received[0], SIGTERM);
  EXPECT_EQ(received[1], SIGINT);
}

TEST(SignalWatcherTest, StopsWithoutASignal) {
  BlockShutdownSignals();
  auto watcher = SignalWatcher::Start([](int) {});
  ASSERT_TRUE(watcher.ok());
  watcher->reset();  // joins; would hang if the stop did not wake the poll
}

}  // namespace
}  // namespace stateside

// DeadlineSweep: one timer entry for every call's deadline of a transport.
#include "client/src/deadline_sweep.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/src/timer.h"
#include "gtest/gtest.h"

namespace stateside::client_internal {
namespace {

// An owner as the transports are: pending calls by id with their deadlines,
// under one lock; the sweep ends the due ones and counts its runs.
class Owner {
 public:
  explicit Owner(Timer* timer) : sweep_(timer, [this] { Sweep(); }) {}
  ~Owner() {
    absl::MutexLock lock(&mu_);
    sweep_.Cancel();
  }

  void Start(uint64_t id, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    pending_[id] = deadline;
    sweep_.Add(deadline);
  }
  bool Answer(uint64_t id) {
    absl::MutexLock lock(&mu_);
    return pending_.erase(id) == 1;
  }
  std::vector<uint64_t> expired() {
    absl::MutexLock lock(&mu_);
    return expired_;
  }
  absl::Time scheduled_at() {
    absl::MutexLock lock(&mu_);
    return sweep_.scheduled_at();
  }
  int sweeps() const { return sweeps_.load(); }
  // Blocks until `n` calls expired (false after `timeout`).
  bool AwaitExpired(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n] {
      mu_.AssertHeld();
      return expired_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  void Sweep() {
    sweeps_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    absl::Time next = absl::InfiniteFuture();
    std::vector<std::pair<absl::Time, uint64_t>> due;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second <= now) {
        due.emplace_back(it->second, it->first);
        it = pending_.erase(it);
      } else {
        next = std::min(next, it->second);
        ++it;
      }
    }
    // In deadline order, whether one sweep or several ended them.
    std::sort(due.begin(), due.end());
    for (const auto& [deadline, id] : due) expired_.push_back(id);
    sweep_.Fired(next);
  }

  absl::Mutex mu_;
  std::map<uint64_t, absl::Time> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> expired_ ABSL_GUARDED_BY(mu_);
  DeadlineSweep sweep_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> sweeps_{0};
};

TEST(DeadlineSweepTest, TheEntryWaitsForTheEarliestDeadlineOnly) {
  Timer timer;
  Owner owner(&timer);
  const absl::Time base = absl::Now() + absl::Hours(1);
  EXPECT_EQ(owner.scheduled_at(), absl::InfiniteFuture());
  owner.Start(1, base + absl::Seconds(10));
  EXPECT_EQ(owner.scheduled_at(), base + absl::Seconds(10));
  owner.Start(2, base + absl::Seconds(20));  // later: the entry stays
  EXPECT_EQ(owner.scheduled_at(), base + absl::Seconds(10));
  owner.Start(3, base + absl::Seconds(5));  // sooner: the entry moves
  EXPECT_EQ(owner.scheduled_at(), base + absl::Seconds(5));
}

TEST(DeadlineSweepTest, UnansweredCallsEndAtTheirDeadlinesInOrderAndAnsweredOnesNever) {
  Timer timer;
  Owner owner(&timer);
  const absl::Time start = absl::Now();
  owner.Start(1, start + absl::Milliseconds(300));
  owner.Start(2, start + absl::Milliseconds(100));
  owner.Start(3, start + absl::Milliseconds(200));
  owner.Start(4, start + absl::Milliseconds(150));
  ASSERT_TRUE(owner.Answer(4));  // answered in time
  ASSERT_TRUE(owner.AwaitExpired(3, absl::Seconds(10)));
  EXPECT_GE(absl::Now(), start + absl::Milliseconds(300));
  EXPECT_EQ(owner.expired(), (std::vector<uint64_t>{2, 3, 1}));
  // Nothing left: the entry rests until the next call.
  EXPECT_EQ(owner.scheduled_at(), absl::InfiniteFuture());
}

TEST(DeadlineSweepTest, ThousandsOfCallsAnsweredInTimeCostAFewSweeps) {
  Timer timer;
  Owner owner(&timer);
  // Each call answered at once, its deadline 200 ms out, for about half a
  // second: a timer entry per call would run or cancel thousands of tasks;
  // the sweep fires about once per deadline's length.
  const absl::Time end = absl::Now() + absl::Milliseconds(500);
  uint64_t id = 0;
  while (absl::Now() < end) {
    ++id;
    owner.Start(id, absl::Now() + absl::Milliseconds(200));
    ASSERT_TRUE(owner.Answer(id));
  }
  // One call left unanswered, due after every other: once it has ended,
  // every deadline has passed and been swept.
  const uint64_t last = id + 1;
  owner.Start(last, absl::Now() + absl::Milliseconds(201));
  ASSERT_TRUE(owner.AwaitExpired(1, absl::Seconds(10)));
  ASSERT_GT(id, 1000u);
  EXPECT_EQ(owner.expired(), (std::vector<uint64_t>{last}));
  EXPECT_LE(owner.sweeps(), 10) << id << " calls";
}

TEST(DeadlineSweepTest, ManyCallsExpiringTogetherAreEndedByAFewSweeps) {
  Timer timer;
  Owner owner(&timer);
  // A sidecar that stalls with 2000 calls in flight, their deadlines 1 µs
  // apart: a sweep per call would look at every pending call each time.
  constexpr uint64_t kCalls = 2000;
  const absl::Time base = absl::Now() + absl::Milliseconds(50);
  for (uint64_t id = 1; id <= kCalls; ++id) {
    owner.Start(id, base + absl::Microseconds(static_cast<int64_t>(id)));
  }
  ASSERT_TRUE(owner.AwaitExpired(kCalls, absl::Seconds(10)));
  // Each sweep ends what is due within kSlack (1 ms) of it: the 2 ms of
  // deadlines take about three.
  EXPECT_LE(owner.sweeps(), 10);
  std::vector<uint64_t> in_order(kCalls);
  for (uint64_t id = 1; id <= kCalls; ++id) in_order[id - 1] = id;
  EXPECT_EQ(owner.expired(), in_order);
}

TEST(DeadlineSweepTest, ACancelledEntryNeverRuns) {
  Timer timer;
  std::atomic<bool> ran{false};
  const absl::Time due = absl::Now() + absl::Milliseconds(50);
  DeadlineSweep sweep(&timer, [&] { ran = true; });
  sweep.Add(due);
  sweep.Cancel();
  EXPECT_EQ(sweep.scheduled_at(), absl::InfiniteFuture());
  // The timer runs its tasks in time order: once a later one has run, the
  // entry would have (the sweep is still alive then).
  absl::Notification later;
  timer.Schedule(due + absl::Milliseconds(1), [&] { later.Notify(); });
  later.WaitForNotification();
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace stateside::client_internal

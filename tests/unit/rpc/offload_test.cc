// The Offload pool: tasks run on its threads, a full queue refuses at once,
// shutdown runs what was admitted and refuses the rest.
#include "sidecar/rpc/offload.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/common/error_reason.h"
#include "tests/support/wait.h"

namespace stateside::rpc {
namespace {

using ::testing::HasSubstr;

// Occupies the pool's one thread until released.
struct Blocker {
  absl::Notification started;
  absl::Notification release;

  // Runs the task on `pool` and waits until it holds the thread.
  void Hold(Offload& pool) {
    pool.Run(Task());
    started.WaitForNotification();
  }

  Offload::Task Task() {
    return [this](absl::Status admitted) {
      EXPECT_TRUE(admitted.ok());
      started.Notify();
      release.WaitForNotification();
    };
  }
};

TEST(OffloadTest, RunsEveryTaskOnAPoolThread) {
  Offload pool(3, 16);
  const std::thread::id caller = std::this_thread::get_id();
  absl::BlockingCounter ran(10);
  std::atomic<int> on_caller{0};
  for (int i = 0; i < 10; ++i) {
    pool.Run([&](absl::Status admitted) {
      EXPECT_TRUE(admitted.ok()) << admitted;
      if (std::this_thread::get_id() == caller) ++on_caller;
      ran.DecrementCount();
    });
  }
  ran.Wait();
  EXPECT_EQ(on_caller.load(), 0);
}

TEST(OffloadTest, ATaskItsProbeReportsGoneIsAnsweredWithoutRunning) {
  Offload pool(1, 8);
  Blocker blocker;
  blocker.Hold(pool);
  std::atomic<bool> gone{false};
  absl::Notification answered;
  absl::Status answer;
  pool.Run([&](absl::Status admitted) {
    answer = admitted;
    answered.Notify();
  }, [&]() -> absl::Status {
    return gone ? absl::DeadlineExceededError("deadline exceeded") : absl::OkStatus();
  });
  absl::Notification live_ran;
  pool.Run([&](absl::Status admitted) {
    EXPECT_TRUE(admitted.ok()) << admitted;
    live_ran.Notify();
  }, [] { return absl::OkStatus(); });
  gone = true;  // while it waits: its call's deadline passes
  blocker.release.Notify();
  answered.WaitForNotification();
  EXPECT_EQ(answer.code(), absl::StatusCode::kDeadlineExceeded);
  live_ran.WaitForNotification();
}

TEST(OffloadTest, FailQueuedAnswersTheWaitingUnavailableAndRefusesNewOnes) {
  admin::Metrics metrics({.instance_id = "offload", .version = "0"});
  Offload pool(1, 8, &metrics);
  Blocker blocker;
  blocker.Hold(pool);
  std::vector<absl::Status> answers(3);
  for (absl::Status& a : answers) {
    pool.Run([&a](absl::Status admitted) { a = admitted; });
  }
  pool.FailQueued(absl::UnavailableError("shutting down"));
  for (const absl::Status& a : answers) EXPECT_EQ(a.code(), absl::StatusCode::kUnavailable) << a;
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_THAT(metrics.Serialize(), HasSubstr("\nstateside_offload_waiting 0\n"));
  absl::Status late;
  pool.Run([&](absl::Status admitted) { late = admitted; });
  EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable);
  blocker.release.Notify();  // the running task still finishes
  pool.Shutdown();
}

TEST(OffloadTest, AFullQueueRefusesAtOnceUnavailableOverloaded) {
  admin::Metrics metrics({.instance_id = "offload", .version = "0"});
  Offload pool(1, 2, &metrics);
  Blocker blocker;
  blocker.Hold(pool);
  std::atomic<int> ran{0};
  for (int i = 0; i < 2; ++i) {
    pool.Run([&](absl::Status admitted) {
      EXPECT_TRUE(admitted.ok());
      ++ran;
    });
  }
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_THAT(metrics.Serialize(), HasSubstr("\nstateside_offload_waiting 2\n"));
  absl::Status refused;
  bool inline_answer = false;
  pool.Run([&](absl::Status admitted) {
    refused = admitted;
    inline_answer = true;
  });
  ASSERT_TRUE(inline_answer) << "a refusal is answered before Run returns";
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PayloadOf(refused, kReasonPayload), "OVERLOADED");
  EXPECT_THAT(refused.message(), HasSubstr("2 calls already wait"));
  blocker.release.Notify();
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_THAT(metrics.Serialize(), HasSubstr("\nstateside_offload_waiting 0\n"));
}

TEST(OffloadTest, ShutdownRunsWhatWasAdmittedAndRefusesTheRest) {
  Offload pool(1, 4);
  Blocker blocker;
  blocker.Hold(pool);
  std::atomic<bool> queued_ran{false};
  pool.Run([&](absl::Status admitted) {
    EXPECT_TRUE(admitted.ok());
    queued_ran = true;
  });
  std::thread stopper([&] { pool.Shutdown(); });
  // Shutdown refuses new tasks before it waits for the queued ones.
  // (Probes admitted before it run later, on the pool's thread.)
  EXPECT_TRUE(testing::WaitFor([&] {
    absl::StatusCode code = absl::StatusCode::kOk;
    bool answered = false;
    pool.Run([&code, &answered](absl::Status admitted) {
      if (admitted.ok()) return;  // queued: runs on the pool, after release
      code = admitted.code();
      answered = true;
    });
    return answered && code == absl::StatusCode::kUnavailable;
  }));
  EXPECT_FALSE(queued_ran.load());
  blocker.release.Notify();
  stopper.join();
  EXPECT_TRUE(queued_ran.load());
}

}  // namespace
}  // namespace stateside::rpc

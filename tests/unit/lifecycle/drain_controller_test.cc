// The drain state machine, driven by a fake clock: every branch, no sleeping.
#include "sidecar/lifecycle/drain_controller.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/error_reason.h"
#include "tests/support/fake_clock.h"

namespace stateside {
namespace {

using ::testing::ElementsAre;

class RecordingActions : public DrainActions {
 public:
  void SetReady(bool ready) override { ready_calls.push_back(ready); }
  void BeginShutdown(bool fast) override { shutdowns.push_back(fast); }
  void ForceExit(int status) override { exits.push_back(status); }
  void Stopped() override { ++stopped; }
  void AppDrainFinished(absl::Duration waited, bool timed_out) override {
    finished.push_back({waited, timed_out});
  }
  struct Finished {
    absl::Duration waited;
    bool timed_out;
  };
  std::vector<bool> ready_calls;
  std::vector<bool> shutdowns;
  std::vector<int> exits;
  std::vector<Finished> finished;
  int stopped = 0;
};

struct Seen {
  std::vector<DrainState> states;
  absl::Time last_deadline = absl::InfinitePast();
};

// How the drain is started: a signal, or an RPC / POST /drain. Both must give
// the same sequence.
enum class Trigger { kSignal, kRequest };

// The controller on a fake clock (5 s pre-stop, 10 s drain, 30 s hard cap),
// and the recorded actions.
class DrainFixture {
 protected:
  DrainFixture() : controller_(&clock_, Options(), &actions_) {}

  static DrainOptions Options() {
    DrainOptions o;
    o.prestop_delay = absl::Seconds(5);
    o.drain_timeout = absl::Seconds(10);
    o.shutdown_timeout = absl::Seconds(30);
    return o;
  }

  uint64_t Watch(Seen* seen, bool observer = false, std::string token = "") {
    return controller_.AddWatcher(
        [seen](DrainState s, absl::Time deadline) {
          seen->states.push_back(s);
          seen->last_deadline = deadline;
        },
        observer, std::move(token));
  }

  void AdvanceAndTick(absl::Duration d) {
    clock_.Advance(d);
    controller_.Tick();
  }

  testing::FakeClock clock_;
  RecordingActions actions_;
  DrainController controller_;
};

class DrainTest : public DrainFixture, public ::testing::TestWithParam<Trigger> {
 protected:
  void Start() {
    if (GetParam() == Trigger::kSignal) {
      controller_.OnSignal("SIGTERM");
    } else {
      controller_.StartDrain("request");
    }
  }
};

TEST_P(DrainTest, ReadinessTurnsFalseAtOnceButWatchersWaitForThePrestopDelay) {
  Seen seen;
  Watch(&seen);
  const absl::Time start = clock_.Now();
  Start();
  EXPECT_THAT(actions_.ready_calls, ElementsAre(false));
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  EXPECT_THAT(seen.states, ElementsAre(DrainState::kServing));

  AdvanceAndTick(absl::Seconds(4));
  EXPECT_THAT(seen.states, ElementsAre(DrainState::kServing));

  AdvanceAndTick(absl::Seconds(1));
  EXPECT_THAT(seen.states, ElementsAre(DrainState::kServing, DrainState::kDraining));
  EXPECT_EQ(seen.last_deadline, start + absl::Seconds(5) + absl::Seconds(10));
  EXPECT_TRUE(actions_.shutdowns.empty());
}

TEST_P(DrainTest, ReportDrainedEndsTheAppDrainAndStartsShutdown) {
  Seen seen;
  Watch(&seen);
  Start();
  AdvanceAndTick(absl::Seconds(5));
  AdvanceAndTick(absl::Seconds(2));
  EXPECT_TRUE(controller_.ReportDrained().ok());
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
  EXPECT_THAT(actions_.shutdowns, ElementsAre(false));
  ASSERT_EQ(actions_.finished.size(), 1u);
  EXPECT_FALSE(actions_.finished[0].timed_out);
  EXPECT_EQ(actions_.finished[0].waited, absl::Seconds(2));
  EXPECT_EQ(actions_.stopped, 0);
  controller_.ShutdownComplete();
  EXPECT_EQ(controller_.state(), DrainState::kStopped);
  EXPECT_EQ(seen.states.back(), DrainState::kStopped);
  EXPECT_EQ(actions_.stopped, 1);  // no hold was asked for: exit 0 now
  // Stopped in time: the hard timeout no longer applies.
  AdvanceAndTick(absl::Minutes(5));
  EXPECT_TRUE(actions_.exits.empty());
}

TEST_P(DrainTest, WithNoWatcherTheSidecarDoesNotWaitForAReport) {
  Start();
  EXPECT_TRUE(actions_.shutdowns.empty());  // pre-stop delay still applies
  AdvanceAndTick(absl::Seconds(5));
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
  EXPECT_THAT(actions_.shutdowns, ElementsAre(false));
}

TEST_P(DrainTest, AnObserverSeesTheDrainButIsNotWaitedFor) {
  Seen observer;
  Watch(&observer, /*observer=*/true);
  Start();
  AdvanceAndTick(absl::Seconds(5));
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
  EXPECT_THAT(actions_.shutdowns, ElementsAre(false));
  EXPECT_FALSE(actions_.finished.at(0).timed_out);
  EXPECT_THAT(observer.states, ElementsAre(DrainState::kServing, DrainState::kDraining,
                                           DrainState::kDrained));
}

TEST_P(DrainTest, WithAnAppAndAnObserverOnlyTheAppsReportCounts) {
  Seen app, observer;
  Watch(&app);
  const uint64_t observer_id = Watch(&observer, /*observer=*/true);
  Start();
  AdvanceAndTick(absl::Seconds(5));
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  controller_.RemoveWatcher(observer_id);  // the observer leaving ends nothing
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  EXPECT_TRUE(controller_.ReportDrained().ok());
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
  EXPECT_FALSE(actions_.finished.at(0).timed_out);
}

TEST_P(DrainTest, WatcherThatNeverReportsTimesOutAndIsCounted) {
  Seen seen;
  Watch(&seen);
  Start();
  AdvanceAndTick(absl::Seconds(5));
  AdvanceAndTick(absl::Seconds(9));
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  AdvanceAndTick(absl::Seconds(1));
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
  ASSERT_EQ(actions_.finished.size(), 1u);
  EXPECT_TRUE(actions_.finished[0].timed_out);
  EXPECT_THAT(actions_.shutdowns, ElementsAre(false));
  EXPECT_TRUE(actions_.exits.empty());
}

TEST_P(DrainTest, WatcherThatDisconnectsIsNotWaitedFor) {
  Seen seen;
  const uint64_t id = Watch(&seen);
  Start();
  AdvanceAndTick(absl::Seconds(5));
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  controller_.RemoveWatcher(id);
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
  EXPECT_FALSE(actions_.finished.at(0).timed_out);
}

TEST_P(DrainTest, TwoWatchersNeedTwoReports) {
  Seen a, b;
  Watch(&a);
  const uint64_t b_id = Watch(&b);
  Start();
  AdvanceAndTick(absl::Seconds(5));
  EXPECT_TRUE(controller_.ReportDrained().ok());
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  EXPECT_TRUE(controller_.ReportDrained().ok());
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
  controller_.RemoveWatcher(b_id);  // leaving afterwards changes nothing
  EXPECT_EQ(actions_.shutdowns.size(), 1u);
}

// With tokens a report counts once per watcher, however often it comes.
TEST_P(DrainTest, ATokenReportCountsOnceForItsWatcher) {
  Seen a, b;
  Watch(&a, false, "token-a");
  Watch(&b, false, "token-b");
  Start();
  AdvanceAndTick(absl::Seconds(5));
  EXPECT_TRUE(controller_.ReportDrained("token-a").ok());
  EXPECT_TRUE(controller_.ReportDrained("token-a").ok());  // a retry
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  EXPECT_TRUE(controller_.ReportDrained("token-b").ok());
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
  // A retry after the drain ended is still fine.
  EXPECT_TRUE(controller_.ReportDrained("token-b").ok());
}

// A stale report (another drain's or another sidecar's token, or an
// observer's) counts for nothing and says so.
TEST_P(DrainTest, AnUnknownTokenIsRefusedAndCountsForNothing) {
  Seen a, observer;
  Watch(&a, false, "token-a");
  Watch(&observer, true, "token-o");
  Start();
  AdvanceAndTick(absl::Seconds(5));
  for (const char* token : {"token-x", "token-o"}) {
    const absl::Status refused = controller_.ReportDrained(token);
    EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << token;
    EXPECT_EQ(PayloadOf(refused, kReasonPayload), "DRAIN_TOKEN_UNKNOWN") << token;
  }
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  EXPECT_TRUE(controller_.ReportDrained("token-a").ok());
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
}

// A watcher told to drain may report after its stream went; one that left
// before any drain was told nothing, and its token is forgotten.
TEST_P(DrainTest, ATokenOutlivesItsWatcherOnlyOnceToldToDrain) {
  Seen early, told;
  const uint64_t early_id = Watch(&early, false, "token-early");
  controller_.RemoveWatcher(early_id);
  const uint64_t told_id = Watch(&told, false, "token-told");
  Seen other;
  Watch(&other, false, "token-other");
  Start();
  AdvanceAndTick(absl::Seconds(5));
  controller_.RemoveWatcher(told_id);
  EXPECT_EQ(controller_.ReportDrained("token-early").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(controller_.ReportDrained("token-told").ok());
  EXPECT_EQ(controller_.state(), DrainState::kDraining);  // other still draining
  EXPECT_TRUE(controller_.ReportDrained("token-other").ok());
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
}

TEST_P(DrainTest, ReportedWatcherLeavingDoesNotEndTheOthersDrain) {
  Seen a, b;
  const uint64_t a_id = Watch(&a);
  Watch(&b);
  Start();
  AdvanceAndTick(absl::Seconds(5));
  EXPECT_TRUE(controller_.ReportDrained().ok());  // a reports
  controller_.RemoveWatcher(a_id);
  EXPECT_EQ(controller_.state(), DrainState::kDraining);  // b still draining
}

TEST_P(DrainTest, ReportDuringThePrestopDelayCounts) {
  Seen seen;
  Watch(&seen);
  Start();
  EXPECT_TRUE(controller_.ReportDrained().ok());  // app drained on its own SIGTERM already
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  AdvanceAndTick(absl::Seconds(5));
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
}

TEST_P(DrainTest, SecondSignalSkipsToAFastShutdown) {
  Seen seen;
  Watch(&seen);
  Start();
  controller_.OnSignal("SIGTERM");
  if (GetParam() == Trigger::kSignal) {
    EXPECT_EQ(controller_.state(), DrainState::kDrained);
    EXPECT_THAT(actions_.shutdowns, ElementsAre(true));
  } else {
    // After a request-started drain the first signal is the first signal.
    EXPECT_EQ(controller_.state(), DrainState::kDraining);
    controller_.OnSignal("SIGTERM");
    EXPECT_THAT(actions_.shutdowns, ElementsAre(true));
  }
  EXPECT_TRUE(actions_.exits.empty());
}

TEST_P(DrainTest, SignalDuringTheShutdownWorkForcesExitOne) {
  Start();
  AdvanceAndTick(absl::Seconds(5));  // no watcher: shutting down
  ASSERT_EQ(controller_.state(), DrainState::kDrained);
  controller_.OnSignal("SIGTERM");
  controller_.OnSignal("SIGTERM");
  EXPECT_THAT(actions_.exits, ElementsAre(1));
}

TEST_P(DrainTest, WedgedShutdownPastTheHardTimeoutForcesExitOne) {
  Start();
  AdvanceAndTick(absl::Seconds(5));
  ASSERT_THAT(actions_.shutdowns, ElementsAre(false));
  // The shutdown work never completes.
  AdvanceAndTick(absl::Seconds(24));
  EXPECT_TRUE(actions_.exits.empty());
  AdvanceAndTick(absl::Seconds(1));
  EXPECT_THAT(actions_.exits, ElementsAre(1));
  AdvanceAndTick(absl::Seconds(60));
  EXPECT_THAT(actions_.exits, ElementsAre(1));  // once
}

TEST_P(DrainTest, StartingTwiceIsOneDrain) {
  Start();
  controller_.StartDrain("again");
  EXPECT_THAT(actions_.ready_calls, ElementsAre(false));
}

TEST_P(DrainTest, TickReportsTheNextDeadline) {
  const absl::Time t0 = clock_.Now();
  EXPECT_EQ(controller_.Tick(), absl::InfiniteFuture());
  Seen seen;
  Watch(&seen);
  Start();
  EXPECT_EQ(controller_.Tick(), t0 + absl::Seconds(5));
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(controller_.Tick(), t0 + absl::Seconds(15));
  clock_.Advance(absl::Seconds(10));
  EXPECT_EQ(controller_.Tick(), t0 + absl::Seconds(30));  // the hard deadline
}

TEST_P(DrainTest, WatcherAddedAfterTheNoticeGetsDrainingWithTheDeadline) {
  Seen first;
  Watch(&first);
  const absl::Time t0 = clock_.Now();
  Start();
  AdvanceAndTick(absl::Seconds(5));
  Seen late;
  Watch(&late);
  EXPECT_THAT(late.states, ElementsAre(DrainState::kDraining));
  EXPECT_EQ(late.last_deadline, t0 + absl::Seconds(15));
}

// A drain requested to hold (the preStop hook of a native sidecar): after the
// shutdown work the sidecar waits for its own signal.
class DrainHoldTest : public DrainFixture, public ::testing::Test {
 protected:
  // A held drain whose app reports at t=7 s; returns once the shutdown work
  // was asked for (state DRAINED).
  void DrainHeldToTheShutdownWork(Seen* seen) {
    Watch(seen);
    controller_.StartDrain("preStop", AfterDrain::kHoldUntilSignal);
    AdvanceAndTick(absl::Seconds(5));  // DRAINING told: the pre-stop delay applies
    AdvanceAndTick(absl::Seconds(2));
    EXPECT_TRUE(controller_.ReportDrained().ok());
    ASSERT_EQ(controller_.state(), DrainState::kDrained);
    ASSERT_THAT(actions_.shutdowns, ElementsAre(false));
  }

  // The shutdown work ends and the process may exit (no hold).
  void ExpectStoppedOnceTheWorkIsDone() {
    controller_.ShutdownComplete();
    EXPECT_EQ(controller_.state(), DrainState::kStopped);
    EXPECT_EQ(actions_.stopped, 1);
  }
};

TEST_F(DrainHoldTest, AfterTheShutdownWorkItHoldsUntilItsSignalThenStopsAtOnce) {
  Seen seen;
  DrainHeldToTheShutdownWork(&seen);
  controller_.ShutdownComplete();
  EXPECT_EQ(controller_.state(), DrainState::kHolding);
  EXPECT_EQ(seen.states.back(), DrainState::kHolding);
  EXPECT_EQ(actions_.stopped, 0);
  AdvanceAndTick(absl::Seconds(20));  // t=27 s: still within the hard cap
  EXPECT_EQ(controller_.state(), DrainState::kHolding);
  EXPECT_TRUE(actions_.exits.empty());

  controller_.OnSignal("SIGTERM");  // no time passes: no second pre-stop delay
  EXPECT_EQ(controller_.state(), DrainState::kStopped);
  EXPECT_EQ(actions_.stopped, 1);
  EXPECT_TRUE(actions_.exits.empty());
  EXPECT_THAT(actions_.shutdowns, ElementsAre(false));  // the work ran once
  EXPECT_THAT(actions_.ready_calls, ElementsAre(false));
  AdvanceAndTick(absl::Minutes(5));
  EXPECT_TRUE(actions_.exits.empty());
}

TEST_F(DrainHoldTest, AHoldWithoutASignalEndsAtTheHardTimeoutWithExitOne) {
  Seen seen;
  DrainHeldToTheShutdownWork(&seen);
  controller_.ShutdownComplete();
  EXPECT_EQ(controller_.Tick(), clock_.Now() + absl::Seconds(23));  // t=30 s
  AdvanceAndTick(absl::Seconds(22));
  EXPECT_TRUE(actions_.exits.empty());
  AdvanceAndTick(absl::Seconds(1));
  EXPECT_THAT(actions_.exits, ElementsAre(1));
  EXPECT_EQ(actions_.stopped, 0);
}

TEST_F(DrainHoldTest, ASignalDuringTheDrainEndsTheHoldWithoutHurryingTheDrain) {
  Seen seen;
  Watch(&seen);
  controller_.StartDrain("preStop", AfterDrain::kHoldUntilSignal);
  controller_.OnSignal("SIGTERM");  // the classic layout: preStop, then SIGTERM
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  EXPECT_THAT(seen.states, ElementsAre(DrainState::kServing));  // pre-stop delay kept
  AdvanceAndTick(absl::Seconds(5));
  EXPECT_TRUE(controller_.ReportDrained().ok());
  EXPECT_THAT(actions_.shutdowns, ElementsAre(false));  // not a fast shutdown
  ExpectStoppedOnceTheWorkIsDone();
}

TEST_F(DrainHoldTest, TheSignalArrivingDuringTheShutdownWorkIsNotASecondSignal) {
  Seen seen;
  DrainHeldToTheShutdownWork(&seen);
  controller_.OnSignal("SIGTERM");  // the app exited right after its report
  EXPECT_TRUE(actions_.exits.empty());
  ExpectStoppedOnceTheWorkIsDone();
}

TEST_F(DrainHoldTest, AHoldAskedAfterTheSignalIsIgnored) {
  controller_.OnSignal("SIGTERM");
  controller_.StartDrain("preStop", AfterDrain::kHoldUntilSignal);
  AdvanceAndTick(absl::Seconds(5));  // no watcher: drained at the pre-stop delay
  ASSERT_EQ(controller_.state(), DrainState::kDrained);
  ExpectStoppedOnceTheWorkIsDone();
}

TEST_F(DrainHoldTest, AHoldAskedDuringAnotherRequestsDrainHolds) {
  controller_.StartDrain("forwarded by the app");
  controller_.StartDrain("preStop", AfterDrain::kHoldUntilSignal);
  EXPECT_THAT(actions_.ready_calls, ElementsAre(false));  // one drain
  AdvanceAndTick(absl::Seconds(5));
  controller_.ShutdownComplete();
  EXPECT_EQ(controller_.state(), DrainState::kHolding);
  EXPECT_EQ(actions_.stopped, 0);
}

TEST_F(DrainHoldTest, WithNoAppWatchingTheHeldDrainKeepsThePrestopDelay) {
  controller_.StartDrain("preStop", AfterDrain::kHoldUntilSignal);
  AdvanceAndTick(absl::Seconds(4));
  EXPECT_EQ(controller_.state(), DrainState::kDraining);
  AdvanceAndTick(absl::Seconds(1));
  EXPECT_EQ(controller_.state(), DrainState::kDrained);
}

TEST(DrainStateNameTest, EveryStateHasItsName) {
  EXPECT_EQ(DrainStateName(DrainState::kServing), "serving");
  EXPECT_EQ(DrainStateName(DrainState::kDraining), "draining");
  EXPECT_EQ(DrainStateName(DrainState::kDrained), "drained");
  EXPECT_EQ(DrainStateName(DrainState::kHolding), "holding");
  EXPECT_EQ(DrainStateName(DrainState::kStopped), "stopped");
}

TEST(DrainReportTest, ReportWithoutADrainIsIgnored) {
  testing::FakeClock clock;
  RecordingActions actions;
  DrainController controller(&clock, DrainOptions{}, &actions);
  EXPECT_TRUE(controller.ReportDrained().ok());
  EXPECT_EQ(controller.state(), DrainState::kServing);
  EXPECT_TRUE(actions.ready_calls.empty());
}

TEST(DrainReportTest, ZeroPrestopTellsWatchersImmediately) {
  testing::FakeClock clock;
  RecordingActions actions;
  DrainController controller(&clock, DrainOptions{}, &actions);
  Seen seen;
  controller.AddWatcher([&](DrainState s, absl::Time) { seen.states.push_back(s); });
  controller.OnSignal("SIGTERM");
  EXPECT_THAT(seen.states, ElementsAre(DrainState::kServing, DrainState::kDraining));
}

INSTANTIATE_TEST_SUITE_P(Triggers, DrainTest,
                         ::testing::Values(Trigger::kSignal, Trigger::kRequest),
                         [](const auto& info) {
                           return info.param == Trigger::kSignal ? "Signal" : "Request";
                         });

}  // namespace
}  // namespace stateside

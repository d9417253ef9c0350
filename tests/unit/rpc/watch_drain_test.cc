// LifecycleService's drain RPCs over a real channel, with a DrainController
// on a fake clock: the WatchDrain stream's events and end, watchers that
// disconnect, several watchers, Drain/ReportDrained, per-RPC metrics.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>

#include "gtest/gtest.h"
#include "tests/support/wait.h"
#include "tests/unit/rpc/rpc_fixture.h"

namespace stateside::rpc {
namespace {

class RecordingActions final : public DrainActions {
 public:
  void SetReady(bool ready) override { not_ready = !ready; }
  void BeginShutdown(bool fast) override { shutdown_begun = true; }
  void ForceExit(int status) override { forced = true; }
  void Stopped() override {}
  std::atomic<bool> not_ready{false}, shutdown_begun{false}, forced{false};
};

class WatchDrainTest : public RpcTest {
 protected:
  void SetUp() override {
    DrainOptions options;
    options.prestop_delay = absl::ZeroDuration();
    options.drain_timeout = absl::Seconds(10);
    options.shutdown_timeout = absl::Seconds(30);
    controller_ = std::make_unique<DrainController>(&clock_, options, &actions_);
    drain_ = controller_.get();
    poke_ = [this] { pokes_.fetch_add(1); };
    metrics_ = &metrics_store_;
    RpcTest::SetUp();
  }

  struct Stream {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<v1::DrainEvent>> reader;
    v1::DrainState Next() {
      v1::DrainEvent event;
      return reader->Read(&event) ? event.state() : v1::DRAIN_STATE_UNSPECIFIED;
    }
  };
  Stream Watch() {
    Stream s;
    s.context = Context();
    s.reader = lifecycle_stub_->WatchDrain(s.context.get(), {});
    return s;
  }
  grpc::Status Report(const std::string& token = "") {
    v1::ReportDrainedRequest request;
    request.set_drain_token(token);
    v1::ReportDrainedResponse response;
    return lifecycle_stub_->ReportDrained(Context().get(), request, &response);
  }

  RecordingActions actions_;
  std::unique_ptr<DrainController> controller_;
  std::atomic<int> pokes_{0};
  admin::Metrics metrics_store_{admin::MetricsOptions{"rpc-test", "9.9.9", &clock_}};
};

// Each app watcher gets its own token with DRAINING; a report with it counts
// once however often it is sent, and a token no watcher had is refused.
TEST_F(WatchDrainTest, ATokenReportCountsOnceAndAnUnknownTokenIsRefused) {
  Stream first = Watch();
  Stream second = Watch();
  ASSERT_EQ(first.Next(), v1::DRAIN_STATE_SERVING);
  ASSERT_EQ(second.Next(), v1::DRAIN_STATE_SERVING);
  controller_->StartDrain("test");
  v1::DrainEvent a, b;
  ASSERT_TRUE(first.reader->Read(&a));
  ASSERT_TRUE(second.reader->Read(&b));
  ASSERT_EQ(a.state(), v1::DRAIN_STATE_DRAINING);
  ASSERT_EQ(b.state(), v1::DRAIN_STATE_DRAINING);
  EXPECT_EQ(a.drain_token().size(), 32u);
  EXPECT_NE(a.drain_token(), b.drain_token());

  const grpc::Status stale = Report("0123456789abcdef0123456789abcdef");
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorInfoOf(stale).reason(), "DRAIN_TOKEN_UNKNOWN");
  // The first app's report, retried: still one report of two.
  ASSERT_TRUE(Report(a.drain_token()).ok());
  ASSERT_TRUE(Report(a.drain_token()).ok());
  EXPECT_EQ(controller_->state(), DrainState::kDraining);
  EXPECT_FALSE(actions_.shutdown_begun);
  ASSERT_TRUE(Report(b.drain_token()).ok());
  EXPECT_EQ(first.Next(), v1::DRAIN_STATE_DRAINED);
  EXPECT_EQ(second.Next(), v1::DRAIN_STATE_DRAINED);
  EXPECT_TRUE(actions_.shutdown_begun);
}

// An observer is not waited for and gets no token.
TEST_F(WatchDrainTest, AnObserverGetsNoToken) {
  auto context = Context();
  v1::WatchDrainRequest request;
  request.set_observer(true);
  auto reader = lifecycle_stub_->WatchDrain(context.get(), request);
  v1::DrainEvent event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_EQ(event.state(), v1::DRAIN_STATE_SERVING);
  Stream app = Watch();
  ASSERT_EQ(app.Next(), v1::DRAIN_STATE_SERVING);
  controller_->StartDrain("test");
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.state(), v1::DRAIN_STATE_DRAINING);
  EXPECT_EQ(event.drain_token(), "");
  context->TryCancel();
}

TEST_F(WatchDrainTest, StreamsServingDrainingWithDeadlineThenDrainedAndEndsOk) {
  Stream stream = Watch();
  ASSERT_EQ(stream.Next(), v1::DRAIN_STATE_SERVING);
  controller_->StartDrain("test");
  v1::DrainEvent event;
  ASSERT_TRUE(stream.reader->Read(&event));
  EXPECT_EQ(event.state(), v1::DRAIN_STATE_DRAINING);
  EXPECT_EQ(event.deadline().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Seconds(10)));
  EXPECT_FALSE(actions_.shutdown_begun);
  ASSERT_TRUE(Report().ok());
  EXPECT_EQ(stream.Next(), v1::DRAIN_STATE_DRAINED);
  EXPECT_EQ(stream.Next(), v1::DRAIN_STATE_UNSPECIFIED);  // end of stream
  EXPECT_TRUE(stream.reader->Finish().ok());
  EXPECT_TRUE(actions_.shutdown_begun);
}

TEST_F(WatchDrainTest, AWatcherThatDisconnectsIsNotWaitedFor) {
  Stream stream = Watch();
  ASSERT_EQ(stream.Next(), v1::DRAIN_STATE_SERVING);
  controller_->StartDrain("test");
  ASSERT_EQ(stream.Next(), v1::DRAIN_STATE_DRAINING);
  EXPECT_FALSE(actions_.shutdown_begun);
  stream.context->TryCancel();
  // No report and no clock advance: only the watcher's removal ends it.
  EXPECT_TRUE(testing::WaitFor([&] { return actions_.shutdown_begun.load(); },
                               absl::Seconds(5)));
  EXPECT_EQ(controller_->state(), DrainState::kDrained);
}

TEST_F(WatchDrainTest, EveryWatcherMustReportBeforeTheDrainEnds) {
  Stream a = Watch();
  Stream b = Watch();
  ASSERT_EQ(a.Next(), v1::DRAIN_STATE_SERVING);
  ASSERT_EQ(b.Next(), v1::DRAIN_STATE_SERVING);
  v1::DrainResponse drained;
  ASSERT_TRUE(lifecycle_stub_->Drain(Context().get(), {}, &drained).ok());
  EXPECT_GE(pokes_.load(), 1);
  EXPECT_TRUE(actions_.not_ready);
  ASSERT_EQ(a.Next(), v1::DRAIN_STATE_DRAINING);
  ASSERT_EQ(b.Next(), v1::DRAIN_STATE_DRAINING);
  ASSERT_TRUE(Report().ok());
  EXPECT_EQ(controller_->state(), DrainState::kDraining);
  ASSERT_TRUE(Report().ok());
  EXPECT_EQ(a.Next(), v1::DRAIN_STATE_DRAINED);
  EXPECT_EQ(b.Next(), v1::DRAIN_STATE_DRAINED);
  EXPECT_TRUE(a.reader->Finish().ok());
  EXPECT_TRUE(b.reader->Finish().ok());
}

TEST_F(WatchDrainTest, TheDrainTimeoutEndsTheStreamWithDrained) {
  Stream stream = Watch();
  ASSERT_EQ(stream.Next(), v1::DRAIN_STATE_SERVING);
  controller_->StartDrain("test");
  ASSERT_EQ(stream.Next(), v1::DRAIN_STATE_DRAINING);
  clock_.Advance(absl::Seconds(10));
  controller_->Tick();
  EXPECT_EQ(stream.Next(), v1::DRAIN_STATE_DRAINED);
  EXPECT_TRUE(stream.reader->Finish().ok());
}

TEST_F(WatchDrainTest, AWatcherArrivingAfterTheDrainGetsDrainedAndTheEnd) {
  controller_->StartDrain("test");  // no watcher: drained at once
  ASSERT_EQ(controller_->state(), DrainState::kDrained);
  Stream stream = Watch();
  EXPECT_EQ(stream.Next(), v1::DRAIN_STATE_DRAINED);
  EXPECT_EQ(stream.Next(), v1::DRAIN_STATE_UNSPECIFIED);
  EXPECT_TRUE(stream.reader->Finish().ok());
}

TEST_F(WatchDrainTest, ManyWatchersComingAndGoingLeaveNothingBehind) {
  for (int i = 0; i < 20; ++i) {
    Stream stream = Watch();
    ASSERT_EQ(stream.Next(), v1::DRAIN_STATE_SERVING);
    stream.context->TryCancel();
    stream.reader->Finish();
  }
  // Every watcher removed itself: with the fake clock standing still, only
  // that lets the drain end (a leaked watcher would be waited for forever).
  controller_->StartDrain("test");
  EXPECT_TRUE(testing::WaitFor([&] { return actions_.shutdown_begun.load(); },
                               absl::Seconds(5)));
}

TEST_F(WatchDrainTest, UnaryCallsAreCountedByMethodAndCode) {
  CreateSession();
  v1::GetSessionRequest request;
  request.mutable_key()->set_id("missing");
  v1::GetSessionResponse response;
  EXPECT_FALSE(session_stub_->Get(Context().get(), request, &response).ok());
  const std::string text = metrics_store_.Serialize();
  EXPECT_NE(text.find("stateside_rpc_requests_total{code=\"OK\",method=\"SessionService/Create\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("method=\"SessionService/Get\""), std::string::npos);
  EXPECT_NE(text.find("stateside_rpc_in_flight 0"), std::string::npos);
}

}  // namespace
}  // namespace stateside::rpc

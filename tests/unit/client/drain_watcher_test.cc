// DrainWatcher and the Client's lifecycle calls against the fake sidecar:
// notices and their order, re-attaching after a sidecar restart, clean stop.
#include "stateside/drain_watcher.h"

#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/support/wait.h"
#include "tests/unit/client/fake_sidecar.h"
#include "tests/unit/client/fake_sidecar_fixture.h"

namespace stateside {
namespace {

using client_internal::Rpc;
using ::stateside::testing::FakeSidecar;
using ::stateside::testing::WaitFor;

constexpr int64_t kDeadline = 1'800'000'000;

// Collects the notices the watcher delivers (on its thread).
class Notices {
 public:
  DrainWatcher::Callback Callback() {
    return [this](const DrainNotice& n) {
      absl::MutexLock lock(&mu_);
      notices_.push_back(n);
    };
  }
  std::vector<DrainNotice> Get() const {
    absl::MutexLock lock(&mu_);
    return notices_;
  }
  size_t size() const { return Get().size(); }

 private:
  mutable absl::Mutex mu_;
  std::vector<DrainNotice> notices_ ABSL_GUARDED_BY(mu_);
};

class DrainWatcherTest : public testing::FakeSidecarTest<FakeSidecar> {
 protected:
  ClientOptions Options() const {
    ClientOptions o;
    o.socket_path = socket_;
    o.wait_until_ready = false;
    o.initial_backoff = absl::Milliseconds(2);
    o.max_backoff = absl::Milliseconds(10);
    return o;
  }

  std::unique_ptr<DrainWatcher> Watch() {
    DrainWatcherOptions w;
    w.initial_backoff = absl::Milliseconds(5);
    w.max_backoff = absl::Milliseconds(50);
    auto watcher = DrainWatcher::Start(Options(), notices_.Callback(), w);
    EXPECT_TRUE(watcher.ok()) << watcher.status();
    return watcher.ok() ? std::move(*watcher) : nullptr;
  }

  Notices notices_;
};

TEST_F(DrainWatcherTest, DeliversDrainingWithDeadlineThenDrained) {
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  ASSERT_TRUE(WaitFor([&] { return watcher->state() == DrainState::kServing; }));
  EXPECT_EQ(notices_.size(), 0u) << "SERVING is not a notice";

  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINING, kDeadline);
  ASSERT_TRUE(WaitFor([&] { return notices_.size() == 1; }));
  EXPECT_EQ(notices_.Get()[0].state, DrainState::kDraining);
  EXPECT_EQ(notices_.Get()[0].deadline, absl::FromUnixSeconds(kDeadline));

  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINED);
  ASSERT_TRUE(WaitFor([&] { return notices_.size() == 2; }));
  EXPECT_EQ(notices_.Get()[1].state, DrainState::kDrained);
  EXPECT_EQ(notices_.Get()[1].deadline, absl::InfiniteFuture());
  ASSERT_TRUE(WaitFor([&] { return watcher->done(); }));
  EXPECT_EQ(fake_->watch_calls(), 1);
}

TEST_F(DrainWatcherTest, RepeatedDrainingIsNotifiedOnce) {
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINING, kDeadline);
  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINING, kDeadline);
  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINED);
  ASSERT_TRUE(WaitFor([&] { return watcher->done(); }));
  ASSERT_EQ(notices_.size(), 2u);
  EXPECT_EQ(notices_.Get()[0].state, DrainState::kDraining);
  EXPECT_EQ(notices_.Get()[1].state, DrainState::kDrained);
}

TEST_F(DrainWatcherTest, ReattachesAfterTheSidecarRestarts) {
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  ASSERT_TRUE(WaitFor([&] { return watcher->attached_count() == 1; }));

  fake_.reset();  // the sidecar goes away: the stream breaks while SERVING
  StartFake();
  ASSERT_TRUE(WaitFor([&] { return watcher->attached_count() == 2; }));
  EXPECT_FALSE(watcher->done());

  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINING, kDeadline);
  ASSERT_TRUE(WaitFor([&] { return notices_.size() == 1; }));
  EXPECT_EQ(notices_.Get()[0].state, DrainState::kDraining);
  EXPECT_EQ(notices_.Get()[0].deadline, absl::FromUnixSeconds(kDeadline));
}

TEST_F(DrainWatcherTest, ReattachingDoesNotRepeatANotice) {
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINING, kDeadline);
  ASSERT_TRUE(WaitFor([&] { return notices_.size() == 1; }));

  fake_->EndDrainStreams(grpc::Status(grpc::StatusCode::UNAVAILABLE, "restarting"));
  ASSERT_TRUE(WaitFor([&] { return watcher->attached_count() >= 2; }));
  // The re-opened streams replay DRAINING: still one notice.
  EXPECT_EQ(notices_.size(), 1u);
  EXPECT_FALSE(watcher->done());
}

TEST_F(DrainWatcherTest, StreamEndedNormallyStopsTheWatcher) {
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  fake_->EndDrainStreams();
  ASSERT_TRUE(WaitFor([&] { return watcher->done(); }));
  EXPECT_EQ(fake_->watch_calls(), 1);
}

TEST_F(DrainWatcherTest, LateWatcherGetsOnlyDrained) {
  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINED);
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  ASSERT_TRUE(WaitFor([&] { return watcher->done(); }));
  ASSERT_EQ(notices_.size(), 1u);
  EXPECT_EQ(notices_.Get()[0].state, DrainState::kDrained);
}

TEST_F(DrainWatcherTest, DestructionCancelsTheOpenStream) {
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  ASSERT_TRUE(WaitFor([&] { return fake_->watchers() == 1; }));
  watcher.reset();  // must return although the stream never ends by itself
  EXPECT_TRUE(WaitFor([&] { return fake_->watchers() == 0; }));
  EXPECT_EQ(notices_.size(), 0u);
}

TEST_F(DrainWatcherTest, DestructionWhileTheSidecarIsAbsentReturns) {
  fake_.reset();
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  const absl::Time start = absl::Now();
  watcher.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(DrainWatcherTest, RejectsBadArguments) {
  EXPECT_EQ(DrainWatcher::Start(Options(), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  DrainWatcherOptions w;
  w.initial_backoff = absl::ZeroDuration();
  EXPECT_EQ(DrainWatcher::Start(Options(), notices_.Callback(), w).status().code(),
            absl::StatusCode::kInvalidArgument);
  ClientOptions o = Options();
  o.socket_path.clear();
  EXPECT_EQ(DrainWatcher::Start(o, notices_.Callback()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Client's lifecycle calls ---

TEST_F(DrainWatcherTest, ClientDrainAndReportDrainedReachTheSidecar) {
  auto client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Drain().ok());
  EXPECT_TRUE((*client)->ReportDrained().ok());
  EXPECT_EQ(fake_->calls(Rpc::kDrain), 1);
  EXPECT_EQ(fake_->calls(Rpc::kReportDrained), 1);
}

TEST_F(DrainWatcherTest, ListInstancesPassesUnimplementedThrough) {
  auto client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  auto listed = (*client)->ListInstances();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].id, "fake-2");
  EXPECT_EQ((*listed)[1].drain_state, DrainState::kServing);

  fake_->FailNext(Rpc::kListInstances, 1,
                  grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no registry yet"));
  auto failed = (*client)->ListInstances();
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(failed.status().message(), "no registry yet");
  EXPECT_EQ(fake_->calls(Rpc::kListInstances), 2) << "UNIMPLEMENTED is not retried";
}

TEST_F(DrainWatcherTest, ClientWatchDrainStopsWhenTheCallbackSaysSo) {
  auto client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  int events = 0;
  const absl::Status status = (*client)->WatchDrain([&](const DrainNotice& n) {
    ++events;
    EXPECT_EQ(n.state, DrainState::kServing);
    return false;
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(events, 1);
}

TEST_F(DrainWatcherTest, ClientWatchDrainWithoutSidecarIsUnavailable) {
  fake_.reset();
  auto client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  const absl::Status status =
      (*client)->WatchDrain([](const DrainNotice&) { return true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

}  // namespace
}  // namespace stateside

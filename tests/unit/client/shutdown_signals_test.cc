// ForwardShutdownSignals: SIGTERM/SIGINT to the app become exactly one Drain
// of the sidecar; later signals go to the on_second_signal hook.
//
// Its own test binary, because the helper's precondition must hold: the
// signals are blocked before any thread starts (see kBlockedAtStartup).
#include "stateside/shutdown_signals.h"

#include <signal.h>
#include <unistd.h>

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

// What an app does first thing in main(): here, before gtest and gRPC start
// threads, so that every thread inherits the blocked mask and a
// process-directed kill() cannot land on a thread that would die of it.
const bool kBlockedAtStartup = [] {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return pthread_sigmask(SIG_BLOCK, &set, nullptr) == 0;
}();

class Recorder {
 public:
  void Add(int signo, absl::StatusCode code) {
    absl::MutexLock lock(&mu_);
    events_.push_back({signo, code});
  }
  std::vector<std::pair<int, absl::StatusCode>> Get() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::pair<int, absl::StatusCode>> events_ ABSL_GUARDED_BY(mu_);
};

class ShutdownSignalsTest : public testing::FakeSidecarTest<FakeSidecar> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kBlockedAtStartup);
    StartFake();
    if (HasFatalFailure()) return;
    ClientOptions o;
    o.socket_path = socket_;
    o.wait_until_ready = false;
    client_ = Connect(o);
    ASSERT_NE(client_, nullptr);
  }

  ShutdownSignalOptions Hooks() {
    ShutdownSignalOptions options;
    options.on_forwarded = [this](int signo, const absl::Status& s) {
      forwarded_.Add(signo, s.code());
    };
    options.on_second_signal = [this](int signo) {
      second_.Add(signo, absl::StatusCode::kOk);
    };
    return options;
  }

  std::unique_ptr<Client> client_;
  Recorder forwarded_, second_;
};

TEST_F(ShutdownSignalsTest, SigtermBecomesExactlyOneDrain) {
  auto forwarder = ForwardShutdownSignals(client_.get(), Hooks());
  ASSERT_TRUE(forwarder.ok()) << forwarder.status();
  EXPECT_EQ(fake_->calls(Rpc::kDrain), 0);

  // Process-directed, as from kubelet or `kill`.
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  ASSERT_TRUE(WaitFor([&] { return forwarded_.Get().size() == 1; }));
  EXPECT_EQ(forwarded_.Get()[0], std::make_pair(SIGTERM, absl::StatusCode::kOk));
  EXPECT_EQ(fake_->calls(Rpc::kDrain), 1);
  EXPECT_EQ(second_.Get().size(), 0u);
}

TEST_F(ShutdownSignalsTest, SecondSignalGoesToTheHookNotToTheSidecar) {
  auto forwarder = ForwardShutdownSignals(client_.get(), Hooks());
  ASSERT_TRUE(forwarder.ok()) << forwarder.status();
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  ASSERT_TRUE(WaitFor([&] { return forwarded_.Get().size() == 1; }));
  EXPECT_EQ(forwarded_.Get()[0].first, SIGINT);

  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  ASSERT_TRUE(WaitFor([&] { return second_.Get().size() == 1; }));
  EXPECT_EQ(second_.Get()[0].first, SIGTERM);
  EXPECT_EQ((*forwarder)->signals_received(), 2);
  EXPECT_EQ(fake_->calls(Rpc::kDrain), 1);
  EXPECT_EQ(forwarded_.Get().size(), 1u);
}

TEST_F(ShutdownSignalsTest, WithoutForwardingTheFirstSignalIsOnlyCounted) {
  ShutdownSignalOptions options = Hooks();
  options.forward = false;
  auto forwarder = ForwardShutdownSignals(client_.get(), options);
  ASSERT_TRUE(forwarder.ok()) << forwarder.status();
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  ASSERT_TRUE(WaitFor([&] { return (*forwarder)->signals_received() == 1; }));
  // The second one still goes to its hook: the first was handled before it.
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  ASSERT_TRUE(WaitFor([&] { return second_.Get().size() == 1; }));
  EXPECT_EQ(fake_->calls(Rpc::kDrain), 0);
  EXPECT_EQ(forwarded_.Get().size(), 0u);
}

TEST_F(ShutdownSignalsTest, DrainFailureIsReportedToTheApp) {
  fake_->FailNext(Rpc::kDrain, 100,
                  grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no"));
  auto forwarder = ForwardShutdownSignals(client_.get(), Hooks());
  ASSERT_TRUE(forwarder.ok()) << forwarder.status();
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  ASSERT_TRUE(WaitFor([&] { return forwarded_.Get().size() == 1; }));
  EXPECT_EQ(forwarded_.Get()[0].second, absl::StatusCode::kFailedPrecondition);
}

TEST_F(ShutdownSignalsTest, DestructionWithoutASignalStopsTheThread) {
  auto forwarder = ForwardShutdownSignals(client_.get(), Hooks());
  ASSERT_TRUE(forwarder.ok()) << forwarder.status();
  forwarder->reset();  // returns: the thread woke up through its eventfd
  EXPECT_EQ(fake_->calls(Rpc::kDrain), 0);
}

TEST_F(ShutdownSignalsTest, NullClientIsRejected) {
  EXPECT_EQ(ForwardShutdownSignals(nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

using ShutdownSignalsDeathTest = ShutdownSignalsTest;

TEST_F(ShutdownSignalsDeathTest, SecondSignalWithoutHookKillsTheProcess) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        auto forwarder = ForwardShutdownSignals(client_.get());
        if (!forwarder.ok()) _exit(3);
        kill(getpid(), SIGTERM);
        WaitFor([&] { return (*forwarder)->signals_received() == 1; });
        kill(getpid(), SIGTERM);
        WaitFor([] { return false; }, absl::Seconds(20));
        _exit(4);  // not killed
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace stateside

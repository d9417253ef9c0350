// The client's drain helpers against the real sidecar, one sidecar per test
// (each test ends it): DrainWatcher through Drain and ReportDrained,
// SIGTERM to the sidecar, and `statesidectl drain` to the end.
#include <signal.h>
#include <sys/stat.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "stateside/drain_watcher.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace stateside {
namespace {

using ::stateside::testing::WaitFor;

class DrainSidecarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = testing::BinPath("stateside");
    struct stat st;
    ASSERT_EQ(stat(bin.c_str(), &st), 0) << "sidecar binary not built: " << bin;
    testing::SubprocessOptions options;
    options.argv = {bin};
    options.env = {{"STATESIDE_SOCKET", socket_},
                   {"STATESIDE_ADMIN_ADDR", "127.0.0.1:0"},
                   {"STATESIDE_PRESTOP_DELAY", "100ms"},
                   {"STATESIDE_DRAIN_TIMEOUT", "3s"},
                   {"STATESIDE_SHUTDOWN_TIMEOUT", "30s"}};
    options.log_path = dir_.File("sidecar.log");
    auto process = testing::Subprocess::Start(options);
    ASSERT_TRUE(process.ok()) << process.status();
    sidecar_ = std::make_unique<testing::Subprocess>(std::move(*process));
    ClientOptions o;
    o.socket_path = socket_;
    o.ready_timeout = absl::Seconds(30);
    auto client = Client::Connect(o);
    ASSERT_TRUE(client.ok()) << client.status() << "\n" << sidecar_->ReadLog();
    client_ = std::move(*client);
  }

  std::unique_ptr<DrainWatcher> Watch() {
    auto watcher = DrainWatcher::Start(*client_, [this](const DrainNotice& n) {
      absl::MutexLock lock(&mu_);
      notices_.push_back(n);
    });
    EXPECT_TRUE(watcher.ok()) << watcher.status();
    return watcher.ok() ? std::move(*watcher) : nullptr;
  }
  std::vector<DrainNotice> notices() {
    absl::MutexLock lock(&mu_);
    return notices_;
  }

  testing::TempDir dir_;
  const std::string socket_ = dir_.File("s.sock");
  std::unique_ptr<testing::Subprocess> sidecar_;
  std::unique_ptr<Client> client_;
  absl::Mutex mu_;
  std::vector<DrainNotice> notices_ ABSL_GUARDED_BY(mu_);
};

TEST_F(DrainSidecarTest, DrainThenReportDrainedEndsTheSidecarWithZero) {
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  ASSERT_TRUE(WaitFor([&] { return watcher->state() == DrainState::kServing; }))
      << sidecar_->ReadLog();
  const absl::Time before = absl::Now();
  ASSERT_TRUE(client_->Drain().ok());
  ASSERT_TRUE(WaitFor([&] { return notices().size() == 1; })) << sidecar_->ReadLog();
  EXPECT_EQ(notices()[0].state, DrainState::kDraining);
  EXPECT_GT(notices()[0].deadline, before);
  EXPECT_LT(notices()[0].deadline, before + absl::Seconds(60));

  ASSERT_TRUE(client_->ReportDrained().ok());
  ASSERT_TRUE(WaitFor([&] { return notices().size() == 2; })) << sidecar_->ReadLog();
  EXPECT_EQ(notices()[1].state, DrainState::kDrained);
  EXPECT_EQ(sidecar_->Wait(absl::Seconds(30)), 0) << sidecar_->ReadLog();
  EXPECT_TRUE(WaitFor([&] { return watcher->done(); }));
}

TEST_F(DrainSidecarTest, SigtermToTheSidecarReachesTheWatcher) {
  auto watcher = Watch();
  ASSERT_NE(watcher, nullptr);
  ASSERT_TRUE(WaitFor([&] { return watcher->state() == DrainState::kServing; }));
  sidecar_->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return notices().size() == 1; })) << sidecar_->ReadLog();
  EXPECT_EQ(notices()[0].state, DrainState::kDraining);
  ASSERT_TRUE(client_->ReportDrained().ok());
  EXPECT_EQ(sidecar_->Wait(absl::Seconds(30)), 0) << sidecar_->ReadLog();
}

TEST_F(DrainSidecarTest, StatesidectlDrainFollowsTheSidecarToItsEnd) {
  // statesidectl's own WatchDrain counts as a watcher that never reports,
  // so the sidecar waits out STATESIDE_DRAIN_TIMEOUT (3 s here).
  const testing::RunResult r = testing::Run(
      {testing::BinPath("statesidectl"), "--socket", socket_, "drain"}, {},
      absl::Seconds(60));
  EXPECT_EQ(r.exit_status, 0) << r.err << "\n" << sidecar_->ReadLog();
  EXPECT_THAT(r.out, ::testing::MatchesRegex(
                         "SERVING\nDRAINING deadline=[-0-9T:.]+Z\nDRAINED( deadline=[-0-9T:.]+Z)?\n"
                         "(sidecar gone\n)?"));
  EXPECT_EQ(sidecar_->Wait(absl::Seconds(30)), 0) << sidecar_->ReadLog();
}

}  // namespace
}  // namespace stateside

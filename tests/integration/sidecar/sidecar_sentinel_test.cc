// The `stateside` binary on Redis Sentinel (a master, a replica, three
// sentinels, all real processes): /health/ready turns false when the master
// is killed and true again once the sidecar has followed the failover; a
// master name the sentinels do not know stops the start (exit 2, naming
// REDIS_SENTINEL_MASTER).
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_port.h"
#include "tests/support/redis_sentinel.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"

namespace stateside {
namespace {

using testing::Subprocess;

std::unique_ptr<testing::RedisSentinelSet> StartSet() {
  auto set = testing::RedisSentinelSet::Start();
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? *std::move(set) : nullptr;
}

// A sidecar on the sentinels of `set`, asking for master `master`.
Subprocess StartSidecar(const testing::TempDir& dir, testing::RedisSentinelSet& set,
                        const std::string& master) {
  testing::SubprocessOptions options;
  options.argv = {testing::BinPath("stateside")};
  options.env = {
      {"STATESIDE_SOCKET", dir.File("api.sock")},
      {"STATESIDE_ADMIN_ADDR", "127.0.0.1:0"},
      {"INSTANCE_ID", "sentinel-test"},
      {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
      {"SESSION_SECRET", ::stateside::testing::kTestSecret},
      {"USE_REDIS_SESSIONS", "true"},
      {"STATESIDE_REDIS_TOPOLOGY", "sentinel"},
      {"REDIS_URL", set.url()},
      {"REDIS_SENTINEL_MASTER", master},
      // Readiness follows the connection at once, so the switch shows.
      {"STATESIDE_REDIS_READINESS_DEBOUNCE", "0s"},
  };
  options.clear_env = true;
  options.log_path = dir.File("sidecar.log");
  auto process = Subprocess::Start(options);
  EXPECT_TRUE(process.ok()) << process.status();
  return *std::move(process);
}

TEST(SidecarSentinelTest, ReadinessFollowsAKilledMaster) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  testing::TempDir dir;
  Subprocess sidecar = StartSidecar(dir, *set, "mymaster");
  int port = 0;
  ASSERT_TRUE(testing::WaitFor([&] {
    port = testing::AdminPortFromLog(sidecar.ReadLog(), "127.0.0.1").value_or(0);
    return port != 0;
  })) << sidecar.ReadLog();
  ASSERT_TRUE(
      testing::WaitFor([&] { return testing::ReadyStatus(port) == 200; }, absl::Seconds(20)))
      << sidecar.ReadLog();

  // Samples /health/ready until stopped: when it first answered 503 and when
  // it answered 200 again afterwards.
  std::atomic<bool> stop{false};
  absl::Mutex mu;
  std::optional<absl::Time> went_down, came_back;
  std::thread sampler([&] {
    while (!stop.load()) {
      const int status = testing::ReadyStatus(port);
      const absl::Time now = absl::Now();
      absl::MutexLock lock(&mu);
      if (status != 200 && !went_down.has_value()) went_down = now;
      if (status == 200 && went_down.has_value() && !came_back.has_value()) came_back = now;
    }
  });
  const absl::Time killed = absl::Now();
  set->node(0).Kill();
  absl::StatusOr<int> now = set->WaitNewMaster(0, absl::Seconds(30));
  const absl::Time promoted = absl::Now();
  const bool recovered = testing::WaitFor(
      [&] {
        absl::MutexLock lock(&mu);
        return came_back.has_value();
      },
      absl::Seconds(20));
  stop.store(true);
  sampler.join();
  ASSERT_TRUE(now.ok()) << now.status();
  ASSERT_TRUE(recovered) << sidecar.ReadLog();
  absl::MutexLock lock(&mu);
  ASSERT_TRUE(went_down.has_value());
  std::cout << "[sidecar] not ready " << (*went_down - killed) << " after the kill, ready again "
            << (*came_back - killed) << " after it (sentinels agreed on the new master "
            << (promoted - killed) << " after it)\n";
  EXPECT_LT(*came_back - promoted, absl::Seconds(5));
  EXPECT_TRUE(sidecar.running());
}

TEST(SidecarSentinelTest, UnknownMasterNameExitsTwoNamingTheSetting) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  testing::TempDir dir;
  Subprocess sidecar = StartSidecar(dir, *set, "nosuchmaster");
  const std::optional<int> exit = sidecar.Wait(absl::Seconds(20));
  ASSERT_TRUE(exit.has_value()) << sidecar.ReadLog();
  EXPECT_EQ(*exit, 2) << sidecar.ReadLog();
  EXPECT_TRUE(absl::StrContains(sidecar.ReadLog(), "REDIS_SENTINEL_MASTER")) << sidecar.ReadLog();
  EXPECT_TRUE(absl::StrContains(sidecar.ReadLog(), "\"nosuchmaster\"")) << sidecar.ReadLog();
}

}  // namespace
}  // namespace stateside

// The cluster registry and the drain across processes, on a real
// redis-server started here: every sidecar lists every live instance; a
// drained one is gone from the others' lists as soon as it has exited; a
// killed one vanishes within three heartbeats; and SIGTERM to the *app*
// (which forwards it with ForwardShutdownSignals) drains app and sidecar with
// no failed call.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "tests/integration/lifecycle/drain_test_app_process.h"
#include "tests/support/redis_server.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/support/test_secrets.h"

namespace stateside {
namespace {

namespace v1 = ::stateside::v1;
using ::testing::HasSubstr;
using testing::Subprocess;

// Long enough that a record cannot expire during a test that checks that a
// drained instance removed itself; the TTL test sets its own.
constexpr char kSlowHeartbeat[] = "60s";

// One sidecar process on the shared Redis.
struct Pod {
  std::string name;
  std::string socket;
  std::optional<Subprocess> process;
  std::unique_ptr<v1::LifecycleService::Stub> lifecycle;
};

class ClusterDrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start({});
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
  }

  // Starts sidecar `name` (INSTANCE_ID = name) and waits until it serves.
  void StartPod(Pod& pod, const std::string& name,
                const std::map<std::string, std::string>& extra_env = {}) {
    pod.name = name;
    pod.socket = dir_.File(name + "/api.sock");
    testing::SidecarProcessOptions options;
    options.socket_path = pod.socket;
    options.log_path = dir_.File(name + ".log");
    options.env = {{"INSTANCE_ID", name},
                   {"REDIS_URL", redis_->url()},
                   {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
                   {"SESSION_SECRET", testing::kTestSecret},
                   {"STATESIDE_HEARTBEAT_INTERVAL", kSlowHeartbeat},
                   {"STATESIDE_DRAIN_TIMEOUT", "10s"}};
    for (const auto& [k, v] : extra_env) options.env[k] = v;
    auto sidecar = testing::StartSidecarProcess(std::move(options));
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    pod.process.emplace(std::move(sidecar->process));
    pod.lifecycle = v1::LifecycleService::NewStub(
        grpc::CreateChannel("unix:" + pod.socket, grpc::InsecureChannelCredentials()));
  }

  // The instance ids `pod` lists (nullopt if the call failed).
  static std::optional<std::set<std::string>> Listed(const Pod& pod) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::ListInstancesResponse response;
    if (!pod.lifecycle->ListInstances(&context, {}, &response).ok()) return std::nullopt;
    std::set<std::string> ids;
    for (const v1::Instance& i : response.instances()) ids.insert(i.id());
    return ids;
  }

  // `statesidectl --socket S instances --json`: the ids, as an operator sees them.
  static std::set<std::string> ListedByStatesidectl(const Pod& pod) {
    testing::RunResult run = testing::Run(
        {testing::BinPath("statesidectl"), "--socket", pod.socket, "instances", "--json"});
    EXPECT_EQ(run.exit_status, 0) << run.err;
    std::set<std::string> ids;
    const nlohmann::json j = nlohmann::json::parse(run.out, nullptr, false);
    if (!j.is_object() || !j.contains("instances")) {
      ADD_FAILURE() << "not the expected JSON: " << run.out;
      return ids;
    }
    for (const auto& i : j["instances"]) ids.insert(i.value("id", ""));
    return ids;
  }

  // The admin port the pod logged ("admin listening on 127.0.0.1:PORT").
  static int AdminPort(const Pod& pod) {
    const std::string log = pod.process->ReadLog();
    const std::string marker = "admin listening on 127.0.0.1:";
    const size_t at = log.find(marker);
    int port = 0;
    if (at == std::string::npos) return 0;
    const size_t from = at + marker.size();
    absl::SimpleAtoi(log.substr(from, log.find_first_not_of("0123456789", from) - from), &port);
    return port;
  }

  // The value of the unlabelled series `name` in a /metrics text.
  static double Metric(const std::string& text, const std::string& name) {
    const size_t at = text.find("\n" + name + " ");
    double value = -1;
    if (at == std::string::npos) return value;
    const size_t from = at + name.size() + 2;
    absl::SimpleAtod(text.substr(from, text.find('\n', from) - from), &value);
    return value;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> redis_;
};

TEST_F(ClusterDrainTest, RedisClientMetricsMoveAndPassPromtool) {
  Pod a;
  StartPod(a, "pod-a");
  const int port = AdminPort(a);
  ASSERT_GT(port, 0) << a.process->ReadLog();
  const std::string admin = absl::StrCat("127.0.0.1:", port);
  const auto scrape = [&] {
    testing::RunResult run = testing::Run(
        {testing::BinPath("statesidectl"), "metrics", "--admin", admin});
    EXPECT_EQ(run.exit_status, 0) << run.err;
    return run.out;
  };
  const std::string before = scrape();
  constexpr int kCreates = 10;
  for (int i = 0; i < kCreates; ++i) {
    testing::RunResult run = testing::Run(
        {testing::BinPath("statesidectl"), "--socket", a.socket, "session", "create", "--user", "m"});
    ASSERT_EQ(run.exit_status, 0) << run.err;
  }
  const std::string after = scrape();
  // Each create is one Redis round trip (two commands: the session and the
  // user index), each in some batch. Heartbeats are a minute apart here;
  // the live-session estimate (every 15 s) may add some, so "at least".
  EXPECT_GE(Metric(after, "stateside_redis_command_duration_seconds_count") -
                Metric(before, "stateside_redis_command_duration_seconds_count"),
            2 * kCreates);
  EXPECT_GT(Metric(after, "stateside_redis_pipeline_batch_size_count"),
            Metric(before, "stateside_redis_pipeline_batch_size_count"));
  EXPECT_EQ(Metric(after, "stateside_sessions_created_total") -
                Metric(before, "stateside_sessions_created_total"),
            kCreates);
  EXPECT_EQ(Metric(after, "stateside_redis_connected"), 1);
  testing::RunResult promtool =
      testing::Run({"promtool", "check", "metrics"}, {}, absl::Seconds(30), after);
  EXPECT_EQ(promtool.exit_status, 0) << promtool.out << promtool.err;
}

TEST_F(ClusterDrainTest, EveryInstanceIsListedAndADrainedOneIsGoneWhenItExits) {
  Pod a, b;
  StartPod(a, "pod-a");
  StartPod(b, "pod-b");
  const std::set<std::string> both = {"pod-a", "pod-b"};
  ASSERT_TRUE(testing::WaitFor([&] { return Listed(a) == both; }, absl::Seconds(5)));
  EXPECT_EQ(Listed(b), both);
  EXPECT_EQ(ListedByStatesidectl(b), both);

  // No app watches pod-a: SIGTERM drains it straight to its exit.
  ASSERT_EQ(testing::StopSidecar(*a.process, absl::Seconds(15)), 0) << a.process->ReadLog();
  EXPECT_THAT(a.process->ReadLog(), HasSubstr("removed from the cluster registry"));
  // At once: no waiting for a TTL.
  EXPECT_EQ(ListedByStatesidectl(b), std::set<std::string>{"pod-b"});
}

TEST_F(ClusterDrainTest, AKilledInstanceVanishesWithinThreeHeartbeats) {
  constexpr absl::Duration kHeartbeat = absl::Seconds(1);
  const std::map<std::string, std::string> env = {
      {"STATESIDE_HEARTBEAT_INTERVAL", "1s"}};
  Pod a, b;
  StartPod(a, "pod-a", env);
  StartPod(b, "pod-b", env);
  const std::set<std::string> both = {"pod-a", "pod-b"};
  ASSERT_TRUE(testing::WaitFor([&] { return Listed(b) == both; }, absl::Seconds(5)));

  a.process->Kill();  // no drain, no deregistration
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Listed(b) == std::set<std::string>{"pod-b"}; }, absl::Seconds(10)));
  const absl::Duration gone_after = absl::Now() - killed;
  // The record lives 3 heartbeats past the last one, which came before the
  // kill; the margin covers listing round trips on a loaded machine, and is
  // well short of a 4th or 5th heartbeat.
  EXPECT_LT(gone_after, 3 * kHeartbeat + absl::Milliseconds(1500)) << gone_after;
}

// A shutdown that wedges (here: Redis hangs while the sidecar deregisters,
// and the command timeout is far longer than the hard limit) ends at
// STATESIDE_SHUTDOWN_TIMEOUT with exit status 1, not whenever Redis answers.
TEST_F(ClusterDrainTest, AWedgedShutdownIsCutAtTheHardTimeoutWithExitOne) {
  Pod a;
  StartPod(a, "pod-a",
           {{"STATESIDE_REDIS_COMMAND_TIMEOUT", "60s"},
            {"STATESIDE_DRAIN_TIMEOUT", "1s"},
            {"STATESIDE_SHUTDOWN_TIMEOUT", "2s"}});
  redis_->Pause();  // SIGSTOP: connected, but no reply will come
  const absl::Time signalled = absl::Now();
  const std::optional<int> status = testing::StopSidecar(*a.process, absl::Seconds(20));
  const absl::Duration took = absl::Now() - signalled;
  redis_->Resume();
  ASSERT_TRUE(status.has_value()) << a.process->ReadLog();
  EXPECT_EQ(*status, 1) << a.process->ReadLog();
  EXPECT_THAT(a.process->ReadLog(), HasSubstr("forced exit 1"));
  EXPECT_GE(took, absl::Seconds(2));
  EXPECT_LT(took, absl::Seconds(10));  // the 60 s command timeout did not decide
}

TEST_F(ClusterDrainTest, SigtermToTheAppFirstDrainsAppAndSidecarWithNoFailedCall) {
  Pod a, b;
  StartPod(a, "pod-a");
  StartPod(b, "pod-b");
  auto app = testing::StartDrainTestApp(a.socket, dir_.File("app.log"));
  ASSERT_TRUE(app.ok()) << app.status();
  // "ready" comes after the load's first 100 successful calls: the signal
  // lands on an app under load.
  app->Signal(SIGTERM);  // the native-sidecar order: the app hears it first

  ASSERT_EQ(app->Wait(absl::Seconds(20)), 0) << app->ReadLog();
  const std::string app_log = app->ReadLog();
  EXPECT_THAT(app_log, HasSubstr("failed=0 first_error=OK reported=OK"));
  long calls = 0;
  const size_t at = app_log.find("calls=");
  ASSERT_NE(at, std::string::npos);
  ASSERT_TRUE(absl::SimpleAtoi(app_log.substr(at + 6, app_log.find(' ', at) - at - 6), &calls));
  EXPECT_GT(calls, 0);

  // The sidecar followed: drain ended by the report (not the timeout), exit 0,
  // and the other sidecar no longer lists it.
  ASSERT_EQ(a.process->Wait(absl::Seconds(15)), 0) << a.process->ReadLog();
  const std::string sidecar_log = a.process->ReadLog();
  EXPECT_THAT(sidecar_log, HasSubstr("LifecycleService.Drain"));
  EXPECT_THAT(sidecar_log, HasSubstr("app drain finished"));
  EXPECT_THAT(sidecar_log, ::testing::Not(HasSubstr("app drain timed out")));
  EXPECT_EQ(Listed(b), std::set<std::string>{"pod-b"});
}

}  // namespace
}  // namespace stateside

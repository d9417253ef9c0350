// The built stateside-bench's realtime ops against two real sidecars on one
// real redis-server: every event crosses instances, fan-out reaches every
// connection (past the 256 one Subscribe request may register), the same
// instance under two paths is refused. Not a timing assertion.
#include <unistd.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/support/test_secrets.h"

namespace stateside::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kKeyHex = ::stateside::testing::kTestKeyHex;
constexpr const char* kSecret = ::stateside::testing::kTestSecret;

class RealtimeSmokeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    for (const char* name : {"a", "b"}) StartSidecar(name);
  }

  void StartSidecar(const std::string& name) {
    const std::string socket = dir_.File(name + ".sock");
    SubprocessOptions options;
    options.argv = {BinPath("stateside"), "--log-level", "warn"};
    options.env = {{"STATESIDE_SOCKET", socket},
                   {"STATESIDE_ADMIN_ADDR", "127.0.0.1:0"},
                   {"REDIS_URL", redis_->url()},
                   {"SESSION_ENCRYPTION_KEY", kKeyHex},
                   {"SESSION_SECRET", kSecret},
                   {"INSTANCE_ID", "bench-" + name}};
    options.log_path = dir_.File(name + ".log");
    auto sidecar = Subprocess::Start(std::move(options));
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    Subprocess& s = sidecars_.emplace(name, *std::move(sidecar)).first->second;
    // The bench waits for the connection itself; waiting for the socket file
    // first keeps a sidecar that fails to start from looking like a bench bug.
    ASSERT_TRUE(WaitFor([&] { return access(socket.c_str(), F_OK) == 0 || !s.running(); },
                        absl::Seconds(20)));
    ASSERT_TRUE(s.running()) << s.ReadLog();
    sockets_[name] = socket;
  }

  RunResult Bench(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("stateside-bench"), "--socket", sockets_["a"],
                                     "--server-pid", std::to_string(sidecars_.at("a").pid())};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, {}, absl::Seconds(60));
  }

  std::string Logs() { return sidecars_.at("a").ReadLog() + sidecars_.at("b").ReadLog(); }

  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
  std::map<std::string, Subprocess> sidecars_;
  std::map<std::string, std::string> sockets_;
};

TEST_F(RealtimeSmokeTest, CrossInstanceDeliversEveryEventFromTheOtherSidecar) {
  RunResult r = Bench({"--op", "realtime-xinstance", "--publish-socket", sockets_["b"],
                       "--publish-server-pid", std::to_string(sidecars_.at("b").pid()),
                       "--rate", "200", "--duration", "1", "--warmup", "0.2", "--size", "100",
                       "--json"});
  ASSERT_EQ(r.exit_status, 0) << r.err << "\n" << Logs();
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["op"], "realtime-xinstance");
  EXPECT_EQ(j["instance"], "bench-a");
  EXPECT_EQ(j["publish_instance"], "bench-b");
  EXPECT_EQ(j["published"], 200) << j.dump();  // rate × duration, on schedule
  EXPECT_EQ(j["publish_errors"], 0) << j.dump();
  EXPECT_EQ(j["delivered"], 200) << j.dump();
  EXPECT_EQ(j["lost"], 0) << j.dump();
  EXPECT_EQ(j["duplicates"], 0);
  EXPECT_EQ(j["unknown"], 0);
  EXPECT_EQ(j["deliveries"], 200);
  EXPECT_GT(j["p50_us"].get<double>(), 0);
  EXPECT_LE(j["p50_us"].get<double>(), j["p99_us"].get<double>());
  EXPECT_LE(j["p99_us"].get<double>(), j["max_us"].get<double>());
  EXPECT_TRUE(j["server_cpu_us_per_event"].is_number()) << j.dump();
  EXPECT_TRUE(j["publish_server_cpu_us_per_event"].is_number()) << j.dump();
  EXPECT_THAT(j["admin_address"].get<std::string>(), HasSubstr("127.0.0.1:"));
}

TEST_F(RealtimeSmokeTest, FanoutPastOneStreamsLimitReachesEveryConnection) {
  RunResult r = Bench({"--op", "realtime-fanout", "--connections", "300", "--rate", "100",
                       "--duration", "0.5", "--warmup", "0.1", "--size", "24", "--json"});
  ASSERT_EQ(r.exit_status, 0) << r.err << "\n" << Logs();
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["connections"], 300);
  EXPECT_EQ(j["published"], 50) << j.dump();
  EXPECT_EQ(j["delivered"], 50) << j.dump();
  EXPECT_EQ(j["deliveries"], 50 * 300) << j.dump();
  EXPECT_EQ(j["short_deliveries"], 0) << j.dump();
  EXPECT_EQ(j["lost"], 0) << j.dump();
}

TEST_F(RealtimeSmokeTest, TextOutputNamesTheInstances) {
  RunResult r = Bench({"--op", "realtime-xinstance", "--publish-socket", sockets_["b"],
                       "--rate", "100", "--duration", "0.3", "--warmup", "0"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("receive on bench-a, publish on bench-b"));
  EXPECT_THAT(r.out, HasSubstr("30 published (0 failed), 30 delivered, 0 lost"));
}

TEST_F(RealtimeSmokeTest, TheSameInstanceUnderAnotherPathIsRefused) {
  const std::string alias = dir_.File("alias.sock");
  ASSERT_EQ(symlink(sockets_["a"].c_str(), alias.c_str()), 0);
  RunResult r = Bench({"--op", "realtime-xinstance", "--publish-socket", alias, "--rate", "10",
                       "--duration", "0.2"});
  EXPECT_EQ(r.exit_status, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("same instance (bench-a)"));
}

TEST_F(RealtimeSmokeTest, AnUnreachablePublisherExitsOne) {
  RunResult r = Bench({"--op", "realtime-xinstance", "--publish-socket",
                       dir_.File("absent.sock"), "--rate", "10", "--connect-timeout", "1"});
  EXPECT_EQ(r.exit_status, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("absent.sock"));
}

}  // namespace
}  // namespace stateside::testing

// deploy/local on the Redis layouts beyond one node (STATESIDE_LOCAL_REDIS):
// a Redis Cluster of six redis-server processes and a Sentinel set (master,
// replica, three sentinels), each under two pods and nginx. On each: a
// session made through one pod is read and written through the other, and a
// room broadcast crosses pods; on Sentinel, the same after a failover.
#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/radar_calls.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"
#include "tests/support/web_client.h"

namespace stateside::testing {
namespace {

constexpr int kPods = 2;

// Every item of `items` added through pod 1, then read back through pod 2.
void CartCrossesPods(const LocalCluster& cluster, const std::string& user,
                     const std::vector<std::string>& items) {
  auto cookie = Login(cluster.app_port(1), user);
  ASSERT_TRUE(cookie.ok()) << cookie.status();
  for (const std::string& item : items) {
    auto added = HttpCall(cluster.app_port(1), RadarPost("/cart", {{"item", item}}, *cookie));
    ASSERT_TRUE(added.ok()) << added.status();
    ASSERT_EQ(added->status, 200) << Describe(*added);
  }
  auto me = HttpCall(cluster.app_port(2), RadarGet("/me", *cookie));
  ASSERT_TRUE(me.ok()) << me.status();
  ASSERT_EQ(me->status, 200) << Describe(*me);
  EXPECT_EQ(me->Header("X-Instance-Id"), "pod-2");
  const nlohmann::json body = BodyJson(*me);
  EXPECT_EQ(body.value("user", ""), user) << me->body;
  std::vector<std::string> sorted = items;  // radar-app lists a cart sorted
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(body["cart"], nlohmann::json(sorted)) << me->body;
}

// A WebSocket on pod 1 in room `room` receives what a member posts on pod 2.
void RoomCrossesPods(const LocalCluster& cluster, const std::string& room) {
  auto listener = Login(cluster.app_port(1), "listener");
  auto speaker = Login(cluster.app_port(2), "speaker");
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_TRUE(speaker.ok()) << speaker.status();
  auto listening = OpenSocket(cluster.app_port(1), *listener);
  auto speaking = OpenSocket(cluster.app_port(2), *speaker);
  ASSERT_TRUE(listening.ok()) << listening.status();
  ASSERT_TRUE(speaking.ok()) << speaking.status();
  ASSERT_TRUE(Join(*listening->ws, room).ok());
  ASSERT_TRUE(Join(*speaking->ws, room).ok());
  auto posted = HttpCall(cluster.app_port(2),
                         RadarPost("/broadcast", {{"room", room}, {"msg", "across"}}, *speaker));
  ASSERT_TRUE(posted.ok()) << posted.status();
  ASSERT_EQ(posted->status, 200) << Describe(*posted);
  auto message = NextJson(*listening->ws);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->value("msg", ""), "across") << message->dump();
  EXPECT_EQ(message->value("instance", ""), "pod-2") << message->dump();
}

// redis-cli on a sentinel of `cluster` (the password from its file).
RunResult SentinelCli(const LocalCluster& cluster, int sentinel,
                      const std::vector<std::string>& args) {
  std::ifstream file(cluster.dir() + "/secrets/redis_password");
  std::string password;
  std::getline(file, password);
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p",
                                   std::to_string(cluster.nginx_port() + 2 + sentinel)};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {{"REDISCLI_AUTH", password}});
}

// statesidectl info of pod 1, as JSON.
nlohmann::json Info(const LocalCluster& cluster) {
  RunResult run = cluster.Statesidectl(1, {"info"});
  EXPECT_EQ(run.exit_status, 0) << run.out << run.err;
  return nlohmann::json::parse(run.out, nullptr, false);
}

class TopologyE2eTest : public ::testing::Test {
 protected:
  static std::unique_ptr<LocalCluster> Start(const std::string& layout, std::string* error) {
    auto cluster = LocalCluster::Start(kPods, {{"STATESIDE_LOCAL_REDIS", layout}});
    if (!cluster.ok()) {
      *error = std::string(cluster.status().message());
      return nullptr;
    }
    return *std::move(cluster);
  }
};

TEST_F(TopologyE2eTest, RedisClusterOfSixNodesServesSessionsAndRooms) {
  std::string error;
  auto cluster = Start("cluster", &error);
  ASSERT_NE(cluster, nullptr) << error;
  CartCrossesPods(*cluster, "alice", {"tea", "milk", "bread", "eggs"});
  RoomCrossesPods(*cluster, "lobby");
  // Sessions of many users spread over the three masters.
  for (int i = 0; i < 12; ++i) {
    auto cookie = Login(cluster->app_port(1 + i % kPods), absl::StrCat("user-", i));
    ASSERT_TRUE(cookie.ok()) << cookie.status();
  }
  const nlohmann::json info = Info(*cluster);
  fprintf(stderr, "[e2e] statesidectl info (cluster): %s\n", info.dump().c_str());
  if (HasFailure()) fprintf(stderr, "%s", cluster->LogTails().c_str());
  StopAndCheck(*cluster);
}

TEST_F(TopologyE2eTest, SentinelSetServesSessionsAndRoomsAcrossAFailover) {
  std::string error;
  auto cluster = Start("sentinel", &error);
  ASSERT_NE(cluster, nullptr) << error;
  CartCrossesPods(*cluster, "bob", {"apples"});
  RoomCrossesPods(*cluster, "before");

  // The sentinels promote the replica (port+2); every pod follows it.
  // NOGOODSLAVE while the replica's link to the master is still settling:
  // asked again until the sentinel takes it.
  RunResult failover;
  ASSERT_TRUE(WaitFor(
      [&] {
        failover = SentinelCli(*cluster, 1, {"sentinel", "failover", "stateside"});
        return failover.exit_status == 0 && failover.out.find("OK") != std::string::npos;
      },
      absl::Seconds(30), absl::Milliseconds(200)))
      << failover.out << failover.err;
  const std::string replica = absl::StrCat(cluster->nginx_port() + 2);
  ASSERT_TRUE(WaitFor(
      [&] {
        return SentinelCli(*cluster, 1, {"sentinel", "get-master-addr-by-name", "stateside"})
                   .out.find(replica) != std::string::npos;
      },
      absl::Seconds(30), absl::Milliseconds(100)))
      << "the sentinels never named the replica as master";
  // Each pod follows: its /info names the replica as the master in use,
  // connected (readiness alone would not tell: a planned failover is shorter
  // than the readiness debounce).
  const std::string promoted = absl::StrCat("127.0.0.1:", replica);
  for (int pod = 1; pod <= kPods; ++pod) {
    std::string last;
    ASSERT_TRUE(WaitFor(
        [&] {
          auto info = HttpCall(cluster->admin_port(pod), RadarGet("/info"));
          if (!info.ok() || info->status != 200) return false;
          last = info->body;
          const nlohmann::json backend = BodyJson(*info)["backend_status"];
          return backend.value("master", "") == promoted && backend.value("connected", false);
        },
        absl::Seconds(20), absl::Milliseconds(100)))
        << "pod-" << pod << " never used " << promoted << ": " << last;
  }
  CartCrossesPods(*cluster, "carol", {"pears", "plums"});
  RoomCrossesPods(*cluster, "after");
  const nlohmann::json info = Info(*cluster);
  fprintf(stderr, "[e2e] statesidectl info (sentinel): %s\n", info.dump().c_str());
  if (HasFailure()) fprintf(stderr, "%s", cluster->LogTails().c_str());
  StopAndCheck(*cluster);
}

}  // namespace
}  // namespace stateside::testing

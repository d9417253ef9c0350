// SentinelMonitor against scripted sentinels (FakeRedisServer): the push on
// the subscription outranks the answers of sentinels that lag behind it.
#include "sidecar/redis/sentinel_monitor.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "gtest/gtest.h"
#include "sidecar/redis/transport.h"
#include "tests/support/wait.h"
#include "tests/unit/redis/fake_redis_server.h"

namespace stateside::redis {
namespace {

using ::stateside::testing::FakeRedisServer;
using ::stateside::testing::WaitFor;

const RedisNode kOld{"127.0.0.1", 7001};
const RedisNode kNew{"127.0.0.1", 7002};

std::string Address(const RedisNode& node) {
  return "*2\r\n" + FakeRedisServer::Bulk(node.host) +
         FakeRedisServer::Bulk(std::to_string(node.port));
}

std::string Subscribed() {
  return "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"
         "*3\r\n$9\r\nsubscribe\r\n$15\r\n+promoted-slave\r\n:2\r\n";
}

std::string Pong() { return "*2\r\n$4\r\npong\r\n$0\r\n\r\n"; }

// The +switch-master push of a failover kOld -> kNew.
std::string SwitchPush() {
  return "*3\r\n" + FakeRedisServer::Bulk("message") + FakeRedisServer::Bulk("+switch-master") +
         FakeRedisServer::Bulk("mymaster 127.0.0.1 7001 127.0.0.1 7002");
}

int Asked(const FakeRedisServer& sentinel) {
  int n = 0;
  for (const auto& command : sentinel.commands()) {
    if (command.size() >= 2 && command[0] == "SENTINEL") ++n;
  }
  return n;
}

// A monitor of "mymaster" on the given sentinels, run on its own I/O thread.
class Harness {
 public:
  Harness(const std::vector<const FakeRedisServer*>& sentinels, absl::Duration refresh,
          absl::Duration stale_grace)
      : work_(io_.get_executor()) {
    options_.topology = RedisTopology::kSentinel;
    for (const FakeRedisServer* s : sentinels) options_.nodes.push_back({"127.0.0.1", s->port()});
    options_.host = "127.0.0.1";
    options_.port = options_.nodes[0].port;
    options_.sentinel_master = "mymaster";
    factory_ = std::move(TransportFactory::Create(&io_, options_)).value();
    monitor_ = std::make_unique<SentinelMonitor>(
        &io_, factory_.get(), options_, [](const auto&, const auto&) {}, refresh, stale_grace);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Harness() {
    std::atomic<bool> down{false};
    boost::asio::post(io_, [&] {
      monitor_->Shutdown();
      down = true;
    });
    WaitFor([&] { return down.load(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }
  void Start() {
    boost::asio::post(io_, [this] { monitor_->Start(); });
  }
  SentinelMonitor& monitor() { return *monitor_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  RedisOptions options_;
  std::unique_ptr<TransportFactory> factory_;
  std::unique_ptr<SentinelMonitor> monitor_;
  std::thread thread_;
};

// The push moved the master; every later question gets the old address from
// a sentinel that has not switched: the master stays the new one.
TEST(SentinelMonitorTest, AStaleSentinelDoesNotUndoAPush) {
  FakeRedisServer sentinel([](const std::vector<std::string>& command) -> std::string {
    if (command[0] == "SENTINEL") return Address(kOld);
    if (command[0] == "SUBSCRIBE") return Subscribed() + SwitchPush();
    if (command[0] == "PING") return Pong();
    return "-ERR unexpected\r\n";
  });
  Harness h({&sentinel}, absl::Milliseconds(50), absl::Seconds(60));
  const absl::Time started = absl::Now();
  h.Start();
  ASSERT_TRUE(WaitFor([&] { return h.monitor().master() == kNew; }));
  // The old master was last named by the first answer, before the push.
  EXPECT_GE(h.monitor().previous_master_confirmed_at(), started);
  EXPECT_LE(h.monitor().previous_master_confirmed_at(), absl::Now());
  const int asked = Asked(sentinel);
  ASSERT_TRUE(WaitFor([&] { return Asked(sentinel) >= asked + 3; }));
  EXPECT_EQ(h.monitor().master(), kNew);
  EXPECT_EQ(h.monitor().changes(), 1u);
  EXPECT_TRUE(h.monitor().last_error().ok()) << h.monitor().last_error();
}

// The same lagging sentinel, then a second one naming the new master: the
// round passes over the first and settles on the second.
TEST(SentinelMonitorTest, AStaleAnswerAsksTheNextSentinel) {
  std::atomic<bool> pushed{false};
  FakeRedisServer lagging([&](const std::vector<std::string>& command) -> std::string {
    if (command[0] == "SENTINEL") return Address(kOld);
    if (command[0] == "SUBSCRIBE") {
      pushed = true;
      return Subscribed() + SwitchPush();
    }
    if (command[0] == "PING") return Pong();
    return "-ERR unexpected\r\n";
  });
  FakeRedisServer switched([&](const std::vector<std::string>& command) -> std::string {
    if (command[0] == "SENTINEL") return Address(kNew);
    return "-ERR unexpected\r\n";
  });
  Harness h({&lagging, &switched}, absl::Milliseconds(50), absl::Seconds(60));
  h.Start();
  ASSERT_TRUE(WaitFor([&] { return Asked(switched) >= 2; }));
  EXPECT_TRUE(pushed);
  EXPECT_EQ(h.monitor().master(), kNew);
  EXPECT_EQ(h.monitor().changes(), 1u);
}

// A question in flight when the push arrives answers the old master: that
// answer is dropped (the grace rule is off here, so only the epoch holds).
TEST(SentinelMonitorTest, AnAnswerToAQuestionAskedBeforeThePushIsDropped) {
  std::atomic<SentinelMonitor*> monitor{nullptr};
  std::atomic<int> questions{0}, pings{0};
  FakeRedisServer sentinel([&](const std::vector<std::string>& command) -> std::string {
    if (command[0] == "SENTINEL") {
      const int n = ++questions;
      if (n == 1) return Address(kOld);
      if (n == 2) {
        // In flight across the push (sent on the PING of the same tick).
        WaitFor([&] { return monitor.load()->master() == kNew; }, absl::Seconds(3));
        return Address(kOld);
      }
      return Address(kNew);
    }
    if (command[0] == "SUBSCRIBE") return Subscribed();
    if (command[0] == "PING") return ++pings == 1 ? Pong() + SwitchPush() : Pong();
    return "-ERR unexpected\r\n";
  });
  Harness h({&sentinel}, absl::Milliseconds(100), absl::ZeroDuration());
  monitor = &h.monitor();
  h.Start();
  ASSERT_TRUE(WaitFor([&] { return questions.load() >= 4; }));
  EXPECT_EQ(h.monitor().master(), kNew);
  EXPECT_EQ(h.monitor().changes(), 1u);
}

// Another push naming the old master again is obeyed at once.
TEST(SentinelMonitorTest, APushBackToTheOldMasterIsFollowed) {
  std::atomic<int> pings{0};
  FakeRedisServer sentinel([&](const std::vector<std::string>& command) -> std::string {
    if (command[0] == "SENTINEL") return Address(kOld);
    if (command[0] == "SUBSCRIBE") return Subscribed() + SwitchPush();
    if (command[0] == "PING") {
      if (++pings != 1) return Pong();
      return Pong() + "*3\r\n" + FakeRedisServer::Bulk("message") +
             FakeRedisServer::Bulk("+switch-master") +
             FakeRedisServer::Bulk("mymaster 127.0.0.1 7002 127.0.0.1 7001");
    }
    return "-ERR unexpected\r\n";
  });
  Harness h({&sentinel}, absl::Milliseconds(50), absl::Seconds(60));
  h.Start();
  ASSERT_TRUE(WaitFor([&] { return h.monitor().changes() >= 2; }));
  EXPECT_EQ(h.monitor().master(), kOld);
  const int asked = Asked(sentinel);
  ASSERT_TRUE(WaitFor([&] { return Asked(sentinel) >= asked + 2; }));
  EXPECT_EQ(h.monitor().master(), kOld);
  EXPECT_EQ(h.monitor().changes(), 2u);
}

}  // namespace
}  // namespace stateside::redis

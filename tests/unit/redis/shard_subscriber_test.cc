// RedisSubscriber::CreateSharded against a scripted server: one SSUBSCRIBE
// per channel, smessage delivery, an unasked sunsubscribe (the slot left the
// node) and a -MOVED answer are losses that reconnect, not protocol errors,
// and an asked SUNSUBSCRIBE is no loss. The server speaks only when asked,
// so pushes ride on the subscriber's liveness PINGs.
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "sidecar/redis/redis_subscriber.h"
#include "tests/support/wait.h"
#include "tests/unit/redis/fake_redis_server.h"

namespace stateside::testing {
namespace {

using redis::RedisNode;
using redis::RedisOptions;
using redis::RedisSubscriber;

std::string Push(const std::string& kind, const std::string& channel, const std::string& last) {
  return absl::StrCat("*3\r\n", FakeRedisServer::Bulk(kind), FakeRedisServer::Bulk(channel), last);
}

// A shard node: confirms SSUBSCRIBE/SUNSUBSCRIBE, answers SSUBSCRIBE of
// "moved" with -MOVED, and sends `next_push` ahead of the next PING's PONG.
class ShardNode {
 public:
  ShardNode()
      : server_([this](const std::vector<std::string>& c) { return Answer(c); }) {}

  void PushOnNextPing(std::string bytes) {
    absl::MutexLock lock(&mu_);
    next_push_ = std::move(bytes);
  }
  int Count(const std::vector<std::string>& command) const {
    int n = 0;
    for (const auto& c : server_.commands()) n += c == command ? 1 : 0;
    return n;
  }
  FakeRedisServer& server() { return server_; }

 private:
  std::string Answer(const std::vector<std::string>& c) {
    if (c.empty()) return "-ERR empty\r\n";
    if (c[0] == "PING") {
      absl::MutexLock lock(&mu_);
      std::string out = std::move(next_push_);
      next_push_.clear();
      return out + "+PONG\r\n";
    }
    if (c[0] == "SSUBSCRIBE" && c.size() == 2) {
      if (c[1] == "moved") return "-MOVED 42 127.0.0.1:1\r\n";
      return Push("ssubscribe", c[1], ":1\r\n");
    }
    if (c[0] == "SUNSUBSCRIBE" && c.size() == 2) return Push("sunsubscribe", c[1], ":0\r\n");
    return "-ERR unexpected\r\n";
  }

  absl::Mutex mu_;
  std::string next_push_ ABSL_GUARDED_BY(mu_);
  FakeRedisServer server_;  // last: its threads call Answer
};

// What the subscriber reported.
struct Heard {
  absl::Mutex mu;
  std::vector<std::string> messages ABSL_GUARDED_BY(mu);
  std::atomic<int> downs{0};
  std::atomic<int> restores{0};

  RedisSubscriber::Callbacks Callbacks() {
    RedisSubscriber::Callbacks c;
    c.on_message = [this](std::string_view channel, std::string_view payload) {
      absl::MutexLock lock(&mu);
      messages.push_back(std::string(channel) + "=" + std::string(payload));
    };
    c.on_down = [this](absl::Time) { downs.fetch_add(1); };
    c.on_restored = [this](absl::Time, absl::Time) { restores.fetch_add(1); };
    return c;
  }
  bool Got(const std::string& what) {
    absl::MutexLock lock(&mu);
    for (const std::string& m : messages) {
      if (m == what) return true;
    }
    return false;
  }
};

std::unique_ptr<RedisSubscriber> Sharded(ShardNode& node, Heard& heard) {
  RedisOptions o;
  o.connect_timeout = absl::Milliseconds(500);
  o.command_timeout = absl::Seconds(2);
  o.idle_ping_interval = absl::Milliseconds(20);
  o.backoff_initial = absl::Milliseconds(10);
  o.backoff_max = absl::Milliseconds(50);
  absl::StatusOr<std::unique_ptr<RedisSubscriber>> s = RedisSubscriber::CreateSharded(
      o, RedisNode{"127.0.0.1", node.server().port()}, heard.Callbacks());
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

absl::Status SubscribeAndWait(RedisSubscriber& s, std::vector<std::string> channels) {
  struct Answer {
    absl::Mutex mu;
    std::optional<absl::Status> status ABSL_GUARDED_BY(mu);
  };
  auto answer = std::make_shared<Answer>();
  s.Subscribe(std::move(channels), [answer](absl::Status status) {
    absl::MutexLock lock(&answer->mu);
    answer->status = std::move(status);
  });
  if (!WaitFor([&] {
        absl::MutexLock lock(&answer->mu);
        return answer->status.has_value();
      })) {
    return absl::DeadlineExceededError("never answered");
  }
  absl::MutexLock lock(&answer->mu);
  return *answer->status;
}

TEST(ShardSubscriberTest, OneSsubscribeAChannelAndSmessagesAreDelivered) {
  ShardNode node;
  Heard heard;
  auto sub = Sharded(node, heard);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  ASSERT_TRUE(SubscribeAndWait(*sub, {"{a}x", "{b}y"}).ok());
  EXPECT_EQ(node.Count({"SSUBSCRIBE", "{a}x"}), 1) << "a command's channels must share a slot";
  EXPECT_EQ(node.Count({"SSUBSCRIBE", "{b}y"}), 1);
  node.PushOnNextPing(Push("smessage", "{a}x", FakeRedisServer::Bulk("hello")));
  EXPECT_TRUE(WaitFor([&] { return heard.Got("{a}x=hello"); }));
  EXPECT_EQ(sub->stats().protocol_errors, 0u);
}

TEST(ShardSubscriberTest, AnUnaskedSunsubscribeIsALossAndTheChannelComesBack) {
  ShardNode node;
  Heard heard;
  auto sub = Sharded(node, heard);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  ASSERT_TRUE(SubscribeAndWait(*sub, {"a"}).ok());
  node.PushOnNextPing(Push("sunsubscribe", "a", ":0\r\n"));
  ASSERT_TRUE(WaitFor([&] { return heard.downs.load() == 1 && heard.restores.load() == 2; }));
  EXPECT_EQ(node.server().accepted(), 2);
  EXPECT_EQ(node.Count({"SSUBSCRIBE", "a"}), 2) << "subscribed again on the new connection";
  EXPECT_EQ(sub->stats().protocol_errors, 0u);

  // Asked for, a sunsubscribe is only the answer: the next confirmation on
  // the same connection comes after it.
  sub->Unsubscribe({"a"});
  ASSERT_TRUE(SubscribeAndWait(*sub, {"b"}).ok());
  EXPECT_EQ(node.Count({"SUNSUBSCRIBE", "a"}), 1);
  EXPECT_EQ(sub->stats().disconnects, 1u);
  EXPECT_EQ(heard.downs.load(), 1);
}

TEST(ShardSubscriberTest, MovedIsALossNotAProtocolError) {
  ShardNode node;
  Heard heard;
  auto sub = Sharded(node, heard);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  const absl::Status moved = SubscribeAndWait(*sub, {"moved"});
  EXPECT_EQ(moved.code(), absl::StatusCode::kUnavailable) << moved;
  EXPECT_NE(moved.message().find("MOVED"), std::string_view::npos) << moved;
  EXPECT_TRUE(WaitFor([&] { return heard.downs.load() == 1; }));
  EXPECT_EQ(sub->stats().protocol_errors, 0u);
  // Its owner moves the channel elsewhere: without it the node serves again.
  sub->Unsubscribe({"moved"});
  EXPECT_TRUE(WaitFor([&] { return sub->connected(); }));
}

}  // namespace
}  // namespace stateside::testing

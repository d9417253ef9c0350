// The pub/sub connection against a real redis-server: delivery, the wanted
// set across Unsubscribe, Redis down at start, killed, paused, password,
// refused channels, closing with subscriptions pending, and a large set.
#include "sidecar/redis/redis_subscriber.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "sidecar/redis/redis_client.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using redis::RedisOptions;
using redis::RedisSubscriber;
using redis::Reply;

// What the callbacks saw; safe to read from the test thread.
class Recorder {
 public:
  RedisSubscriber::Callbacks Callbacks() {
    RedisSubscriber::Callbacks c;
    c.on_message = [this](std::string_view channel, std::string_view payload) {
      absl::MutexLock lock(&mu_);
      messages_.emplace_back(std::string(channel), std::string(payload));
    };
    c.on_down = [this](absl::Time since) {
      absl::MutexLock lock(&mu_);
      downs_.push_back(since);
    };
    c.on_restored = [this](absl::Time since, absl::Time until) {
      absl::MutexLock lock(&mu_);
      restores_.emplace_back(since, until);
    };
    return c;
  }
  std::vector<std::pair<std::string, std::string>> messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  bool Got(const std::string& channel, const std::string& payload) {
    absl::MutexLock lock(&mu_);
    for (const auto& m : messages_) {
      if (m.first == channel && m.second == payload) return true;
    }
    return false;
  }
  std::vector<absl::Time> downs() {
    absl::MutexLock lock(&mu_);
    return downs_;
  }
  std::vector<std::pair<absl::Time, absl::Time>> restores() {
    absl::MutexLock lock(&mu_);
    return restores_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<std::string, std::string>> messages_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> downs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<absl::Time, absl::Time>> restores_ ABSL_GUARDED_BY(mu_);
};

// A `done` the test can wait on.
class Done {
 public:
  absl::AnyInvocable<void(absl::Status) &&> Callback() {
    return [this](absl::Status s) {
      absl::MutexLock lock(&mu_);
      ++calls_;
      status_ = std::move(s);
    };
  }
  // The status once called (UNKNOWN "never answered" after 10 s).
  absl::Status Wait() {
    absl::MutexLock lock(&mu_);
    auto called = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ > 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&called), absl::Seconds(10))) {
      return absl::UnknownError("never answered");
    }
    return status_;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

absl::Status SubscribeSync(RedisSubscriber& sub, std::vector<std::string> channels) {
  Done done;
  sub.Subscribe(std::move(channels), done.Callback());
  return done.Wait();
}

std::unique_ptr<RedisServer> StartServer(RedisServerOptions options = {}) {
  absl::StatusOr<std::unique_ptr<RedisServer>> s = RedisServer::Start(std::move(options));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

std::unique_ptr<RedisSubscriber> NewSubscriber(const std::string& url, Recorder& recorder,
                                               RedisOptions base = FastRedisOptions()) {
  absl::StatusOr<RedisOptions> options = redis::ParseRedisUrl(url, std::move(base));
  EXPECT_TRUE(options.ok()) << options.status();
  if (!options.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<RedisSubscriber>> s =
      RedisSubscriber::Create(*std::move(options), recorder.Callbacks());
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

// PUBLISH's answer: how many subscribers Redis delivered to (-1 on error).
int64_t Publish(RedisClient& client, const std::string& channel, const std::string& payload) {
  absl::StatusOr<Reply> r = client.Call({"PUBLISH", channel, payload});
  return r.ok() && r->is_integer() ? r->integer : -1;
}

TEST(RedisSubscriberTest, DeliversBinaryPayloadsPublishedAfterSubscribeConfirms) {
  RedisClient* client = SharedRedisClient();
  ASSERT_NE(client, nullptr);
  Recorder recorder;
  auto sub = NewSubscriber(SharedRedisServer()->url(), recorder);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  const std::string channel = UniquePrefix() + std::string("room\r\n\0x", 8);
  ASSERT_TRUE(SubscribeSync(*sub, {channel}).ok());
  EXPECT_TRUE(SubscribeSync(*sub, {channel}).ok()) << "subscribing twice is one subscription";
  EXPECT_EQ(sub->wanted_channels(), 1u);

  static constexpr char kPayload[] = "\0bin\r\nary\xff\r\n";
  const std::string payload(kPayload, sizeof(kPayload) - 1);
  // Confirmed means subscribed: the PUBLISH right after `done` reaches us.
  EXPECT_EQ(Publish(*client, channel, payload), 1);
  ASSERT_TRUE(WaitFor([&] { return sub->stats().messages == 1; }));
  auto messages = recorder.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].first, channel);
  EXPECT_EQ(messages[0].second, payload);
  EXPECT_EQ(sub->stats().protocol_errors, 0u);
}

TEST(RedisSubscriberTest, UnsubscribeStopsDeliveryOfThatChannelOnly) {
  RedisClient* client = SharedRedisClient();
  ASSERT_NE(client, nullptr);
  Recorder recorder;
  auto sub = NewSubscriber(SharedRedisServer()->url(), recorder);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  const std::string p = UniquePrefix();
  ASSERT_TRUE(SubscribeSync(*sub, {p + "a", p + "b", p + "c"}).ok());
  EXPECT_EQ(sub->wanted_channels(), 3u);
  EXPECT_EQ(Publish(*client, p + "a", "a1"), 1);
  EXPECT_EQ(Publish(*client, p + "b", "b1"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got(p + "a", "a1") && recorder.Got(p + "b", "b1"); }));

  sub->Unsubscribe({p + "b", p + "not-subscribed"});
  EXPECT_EQ(sub->wanted_channels(), 2u);
  // One connection, in order: if b2 were delivered it would arrive before c2.
  std::vector<absl::StatusOr<Reply>> r =
      client->CallBatch({{"PUBLISH", p + "b", "b2"}, {"PUBLISH", p + "c", "c2"}});
  ASSERT_TRUE(r[0].ok() && r[1].ok());
  ASSERT_TRUE(WaitFor([&] { return recorder.Got(p + "c", "c2"); }));
  EXPECT_FALSE(recorder.Got(p + "b", "b2"));
  // And Redis itself drops the subscription.
  EXPECT_TRUE(WaitFor([&] { return Publish(*client, p + "b", "b3") == 0; }));
  EXPECT_EQ(Publish(*client, p + "a", "a3"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got(p + "a", "a3"); }));
  EXPECT_FALSE(recorder.Got(p + "b", "b3"));
  EXPECT_EQ(sub->stats().messages, 4u);
}

TEST(RedisSubscriberTest, UnsubscribeAndResubscribeBeforeConfirmationEndsSubscribed) {
  RedisClient* client = SharedRedisClient();
  ASSERT_NE(client, nullptr);
  Recorder recorder;
  auto sub = NewSubscriber(SharedRedisServer()->url(), recorder);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  const std::string channel = UniquePrefix() + "flap";
  Done first, second;
  sub->Subscribe({channel}, first.Callback());
  sub->Unsubscribe({channel});
  sub->Subscribe({channel}, second.Callback());
  EXPECT_TRUE(first.Wait().ok());
  EXPECT_TRUE(second.Wait().ok());
  EXPECT_EQ(Publish(*client, channel, "still here"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got(channel, "still here"); }));
  EXPECT_EQ(sub->stats().protocol_errors, 0u);
}

TEST(RedisSubscriberTest, SubscribeWhileRedisIsDownIsUnavailableThenHeldUntilItStarts) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  server->Kill();
  Recorder recorder;
  const absl::Time created = absl::Now();
  auto sub = NewSubscriber(server->url(), recorder);
  ASSERT_NE(sub, nullptr);
  Done done;
  sub->Subscribe({"early"}, done.Callback());
  const absl::Status s = done.Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "not connected")) << s;
  EXPECT_EQ(sub->wanted_channels(), 1u) << "the channel stays wanted";
  EXPECT_FALSE(sub->connected());

  ASSERT_TRUE(server->Restart().ok());
  // connected() turns true as the subscription is confirmed; on_restored
  // runs right after, outside the subscriber's lock.
  ASSERT_TRUE(WaitFor([&] { return sub->connected() && recorder.restores().size() == 1; }));
  auto restores = recorder.restores();
  ASSERT_EQ(restores.size(), 1u);
  EXPECT_GE(restores[0].first, created);
  EXPECT_LE(restores[0].first, restores[0].second);
  EXPECT_TRUE(recorder.downs().empty()) << "never up before: nothing was lost";
  auto client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(Publish(*client, "early", "hello"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got("early", "hello"); }));
}

TEST(RedisSubscriberTest, KilledRedisReportsTheLossWindowAndResumesByItself) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  Recorder recorder;
  auto sub = NewSubscriber(server->url(), recorder);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  ASSERT_TRUE(SubscribeSync(*sub, {"news", "sport"}).ok());
  ASSERT_EQ(recorder.restores().size(), 1u);  // the first connection

  const absl::Time before_kill = absl::Now();
  server->Kill();
  ASSERT_TRUE(WaitFor([&] { return recorder.downs().size() == 1; }));
  EXPECT_FALSE(sub->connected());
  EXPECT_GE(recorder.downs()[0], before_kill);
  Done while_down;
  sub->Subscribe({"news"}, while_down.Callback());
  EXPECT_EQ(while_down.Wait().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE(server->Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return recorder.restores().size() == 2; }));
  EXPECT_TRUE(sub->connected());
  auto restores = recorder.restores();
  EXPECT_EQ(restores[1].first, recorder.downs()[0]) << "the window starts at the loss";
  EXPECT_LE(restores[1].first, restores[1].second);
  EXPECT_EQ(recorder.downs().size(), 1u) << "failed reconnects are the same loss";

  auto client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  // No new Subscribe: on_restored means both channels are subscribed again.
  EXPECT_EQ(Publish(*client, "news", "n1"), 1);
  EXPECT_EQ(Publish(*client, "sport", "s1"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got("news", "n1") && recorder.Got("sport", "s1"); }));
  const RedisSubscriber::Stats stats = sub->stats();
  EXPECT_EQ(stats.disconnects, 1u);
  EXPECT_EQ(stats.connects, 2u);
}

TEST(RedisSubscriberTest, APausedRedisIsDetectedByPingsAndRestoredAfterResume) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RedisOptions o = FastRedisOptions();
  o.idle_ping_interval = absl::Milliseconds(50);
  o.command_timeout = absl::Milliseconds(300);
  o.connect_timeout = absl::Milliseconds(300);
  Recorder recorder;
  auto sub = NewSubscriber(server->url(), recorder, o);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  ASSERT_TRUE(SubscribeSync(*sub, {"quiet"}).ok());

  // Nothing is published: only the liveness PINGs can notice.
  const absl::Time paused = absl::Now();
  server->Pause();
  ASSERT_TRUE(WaitFor([&] { return recorder.downs().size() == 1; }, absl::Seconds(5)));
  // ping interval + command timeout, with room for a loaded machine.
  EXPECT_LT(absl::Now() - paused, absl::Seconds(2));
  EXPECT_FALSE(sub->connected());
  server->Resume();
  ASSERT_TRUE(WaitFor([&] { return recorder.restores().size() == 2; }));
  auto client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(Publish(*client, "quiet", "back"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got("quiet", "back"); }));
}

TEST(RedisSubscriberTest, IdlePingsAreUnderstoodInAndOutOfSubscribeMode) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RedisOptions o = FastRedisOptions();
  o.idle_ping_interval = absl::Milliseconds(20);
  Recorder recorder;
  auto sub = NewSubscriber(server->url(), recorder, o);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  auto client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  // CLIENT LIST names each connection's last command and subscription count.
  auto pinged_with_subscriptions = [&](const std::string& sub_field) {
    absl::StatusOr<Reply> list = client->Call({"CLIENT", "LIST"});
    if (!list.ok()) return false;
    for (absl::string_view line : absl::StrSplit(list->str, '\n')) {
      if (absl::StrContains(line, "cmd=ping") && absl::StrContains(line, sub_field)) return true;
    }
    return false;
  };
  // +PONG before any SUBSCRIBE, ["pong", ""] once subscribed.
  ASSERT_TRUE(WaitFor([&] { return pinged_with_subscriptions(" sub=0 "); }));
  ASSERT_TRUE(SubscribeSync(*sub, {"idle"}).ok());
  ASSERT_TRUE(WaitFor([&] { return pinged_with_subscriptions(" sub=1 "); }));
  const RedisSubscriber::Stats stats = sub->stats();
  EXPECT_EQ(stats.protocol_errors, 0u);
  EXPECT_EQ(stats.disconnects, 0u);
  EXPECT_TRUE(sub->connected());
}

TEST(RedisSubscriberTest, SubscribesInFlightAreAnsweredPerChannel) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RedisOptions o = FastRedisOptions();
  o.command_timeout = absl::Seconds(30);  // the pause below must not reset
  Recorder recorder;
  auto sub = NewSubscriber(server->url(), recorder, o);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  server->Pause();
  Done first, second;
  sub->Subscribe({"a"}, first.Callback());
  // "a" is already on its way: this one waits for that confirmation and b's.
  sub->Subscribe({"a", "b"}, second.Callback());
  EXPECT_EQ(first.calls() + second.calls(), 0);
  server->Resume();
  EXPECT_TRUE(first.Wait().ok());
  EXPECT_TRUE(second.Wait().ok());
  auto client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(Publish(*client, "a", "1"), 1);
  EXPECT_EQ(Publish(*client, "b", "2"), 1);

  // A confirmation lost with its connection is UNAVAILABLE; the channel stays
  // wanted and comes back with the server.
  server->Pause();
  Done lost;
  sub->Subscribe({"c"}, lost.Callback());
  server->Kill();
  const absl::Status s = lost.Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  ASSERT_TRUE(server->Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(Publish(*client, "c", "3"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got("c", "3"); }));
}

TEST(RedisSubscriberTest, WorksWithAPasswordProtectedRedis) {
  RedisServerOptions options;
  options.requirepass = "s3cret";
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  Recorder recorder;
  auto sub = NewSubscriber(server->url(), recorder);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  ASSERT_TRUE(SubscribeSync(*sub, {"private"}).ok());
  auto client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(Publish(*client, "private", "p"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got("private", "p"); }));

  Recorder anonymous_recorder;
  auto anonymous = NewSubscriber(absl::StrCat("redis://127.0.0.1:", server->port()),
                                 anonymous_recorder);
  ASSERT_NE(anonymous, nullptr);
  Done refused;
  anonymous->Subscribe({"private"}, refused.Callback());
  EXPECT_EQ(refused.Wait().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(anonymous->stats().connects, 0u);
}

TEST(RedisSubscriberTest, AChannelRedisRefusesIsAProtocolErrorAndAReset) {
  RedisServerOptions options;
  options.acl_users = {"bob on >pw ~* resetchannels &allowed:* +@all"};
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  Recorder recorder;
  auto sub = NewSubscriber(absl::StrCat("redis://bob:pw@127.0.0.1:", server->port()), recorder);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  EXPECT_TRUE(SubscribeSync(*sub, {"allowed:x"}).ok());
  const absl::Status s = SubscribeSync(*sub, {"forbidden"});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "NOPERM")) << s;
  EXPECT_GE(sub->stats().protocol_errors, 1u);
  EXPECT_GE(sub->stats().disconnects, 1u);
  // Dropping the refused channel lets the connection come back with the rest.
  sub->Unsubscribe({"forbidden"});
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  auto client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(Publish(*client, "allowed:x", "ok"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got("allowed:x", "ok"); }));
}

TEST(RedisSubscriberTest, ClosingAnswersPendingSubscribesWithoutHanging) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RedisOptions o = FastRedisOptions();
  o.command_timeout = absl::Seconds(30);  // only the close may answer
  Recorder recorder;
  auto sub = NewSubscriber(server->url(), recorder, o);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  server->Pause();
  Done pending;
  sub->Subscribe({"never-confirmed"}, pending.Callback());
  const absl::Time start = absl::Now();
  sub.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(pending.calls(), 1);
  const absl::Status s = pending.Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "redis: subscriber closed");
  EXPECT_TRUE(recorder.downs().empty()) << "closing is not a loss";
  server->Resume();
}

TEST(RedisSubscriberTest, ThousandsOfChannelsSubscribeAndComeBackAfterARestart) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  Recorder recorder;
  auto sub = NewSubscriber(server->url(), recorder);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return sub->connected(); }));
  std::vector<std::string> channels;
  for (int i = 0; i < 3000; ++i) channels.push_back(absl::StrCat("many:", i));
  ASSERT_TRUE(SubscribeSync(*sub, channels).ok());
  EXPECT_EQ(sub->wanted_channels(), 3000u);
  auto client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  auto count = [&] {
    absl::StatusOr<Reply> r = client->Call({"PUBSUB", "CHANNELS", "many:*"});
    return r.ok() ? r->elements.size() : 0;
  };
  EXPECT_EQ(count(), 3000u);
  EXPECT_EQ(Publish(*client, "many:2999", "last"), 1);

  server->Kill();
  ASSERT_TRUE(server->Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return recorder.restores().size() == 2; }));
  client = ConnectedClient(server->url());
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(count(), 3000u) << "restored means every channel is confirmed";
  EXPECT_EQ(Publish(*client, "many:0", "first"), 1);
  ASSERT_TRUE(WaitFor([&] { return recorder.Got("many:0", "first"); }));
  EXPECT_EQ(sub->stats().protocol_errors, 0u);
}

TEST(RedisSubscriberTest, UnreadableTlsFilesAreInvalidArgument) {
  RedisOptions o = FastRedisOptions();
  o.tls.enabled = true;
  o.tls.ca_file = "/nonexistent/ca.pem";
  Recorder recorder;
  absl::StatusOr<std::unique_ptr<RedisSubscriber>> s =
      RedisSubscriber::Create(o, recorder.Callbacks());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
}

}  // namespace
}  // namespace stateside::testing

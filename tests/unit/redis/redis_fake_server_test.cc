// The connection layer against a scripted fake server: garbage, silence,
// split and nested replies, error mapping, NOSCRIPT reload, AUTH failure,
// command timeouts, pending bounds and reconnects, and the replies of one
// read completing in one batch.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "sidecar/common/completion_batch.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/crypto/digest.h"
#include "tests/support/wait.h"
#include "tests/unit/redis/fake_redis_server.h"

namespace stateside::redis {
namespace {

using ::stateside::testing::FakeRedisServer;
using ::stateside::testing::WaitFor;

// Answers the handshake (PING, AUTH, SELECT) like Redis; everything else
// goes to `rest`.
FakeRedisServer::Handler Redisish(FakeRedisServer::Handler rest) {
  return [rest](const std::vector<std::string>& c) -> std::string {
    if (c.empty()) return "";
    if (c[0] == "PING") return "+PONG\r\n";
    if (c[0] == "AUTH" || c[0] == "SELECT") return "+OK\r\n";
    return rest(c);
  };
}

FakeRedisServer::Options Greeting(std::string bytes) {
  FakeRedisServer::Options o;
  o.greeting = std::move(bytes);
  return o;
}
FakeRedisServer::Options ByteByByte() {
  FakeRedisServer::Options o;
  o.byte_by_byte = true;
  return o;
}
FakeRedisServer::Options NeverAccept() {
  FakeRedisServer::Options o;
  o.accept_connections = false;
  return o;
}

RedisOptions Fast() {
  RedisOptions o;
  o.connections = 1;
  o.connect_timeout = absl::Milliseconds(300);
  o.command_timeout = absl::Milliseconds(300);
  o.backoff_initial = absl::Milliseconds(10);
  o.backoff_max = absl::Milliseconds(50);
  return o;
}

std::unique_ptr<RedisClient> Connect(const std::string& url, RedisOptions options = Fast()) {
  absl::StatusOr<std::unique_ptr<RedisClient>> c = RedisClient::FromUrl(url, options);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

TEST(RedisFakeServerTest, GarbageGreetingIsAProtocolErrorNotACrash) {
  FakeRedisServer server([](const auto&) { return std::string(); },
                         Greeting("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
  auto client = Connect(server.url());
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(client->last_error().message(),
                                                     "protocol error"); }));
  EXPECT_FALSE(client->connected());
  absl::StatusOr<Reply> r = client->Call({"GET", "k"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "protocol error")) << r.status();
  EXPECT_GE(client->stats().protocol_errors, 1u);
}

TEST(RedisFakeServerTest, GarbageReplyResetsTheConnectionWhichThenRecovers) {
  std::atomic<bool> garbage{true};
  FakeRedisServer server(Redisish([&](const std::vector<std::string>& c) -> std::string {
    if (garbage.exchange(false)) return "?this is not RESP\r\n";
    return FakeRedisServer::Bulk("fine");
  }));
  auto client = Connect(server.url());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::StatusOr<Reply> r = client->Call({"GET", "k"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "protocol error")) << r.status();
  ASSERT_TRUE(WaitFor([&] { return client->connected() && server.accepted() == 2; }));
  r = client->Call({"GET", "k"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "fine");
}

TEST(RedisFakeServerTest, ServerThatNeverAnswersIsAConnectTimeout) {
  FakeRedisServer server([](const auto&) { return std::string(); });
  auto client = Connect(server.url());
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(client->last_error().message(),
                                                     "timed out"); }));
  EXPECT_FALSE(client->connected());
  EXPECT_GE(client->stats().connect_failures, 1u);
  const absl::Time start = absl::Now();
  EXPECT_EQ(client->Call({"PING"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100)) << "fails fast, no waiting";
}

TEST(RedisFakeServerTest, ListenerThatNeverAcceptsIsAConnectTimeout) {
  FakeRedisServer server([](const auto&) { return std::string(); },
                         NeverAccept());
  auto client = Connect(server.url());
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(client->last_error().message(),
                                                     "timed out after 300ms"); }))
      << client->last_error();
}

TEST(RedisFakeServerTest, RepliesSplitIntoSingleBytesAreReassembled) {
  FakeRedisServer server(
      Redisish([](const auto&) -> std::string { return "*3\r\n:1\r\n$-1\r\n*1\r\n$4\r\nab\r\n\r\n"; }),
      ByteByByte());
  auto client = Connect(server.url());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::StatusOr<Reply> r = client->Call({"ANY"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 3u);
  EXPECT_EQ(r->elements[0].integer, 1);
  EXPECT_TRUE(r->elements[1].is_nil());
  EXPECT_EQ(r->elements[2].elements[0].str, "ab\r\n");
}

TEST(RedisFakeServerTest, ErrorRepliesBecomeStatusesWithTheMessage) {
  FakeRedisServer server(Redisish([](const std::vector<std::string>& c) -> std::string {
    if (c[0] == "BAD") return "-ERR something broke\r\n";
    if (c[0] == "LOAD") return "-LOADING Redis is loading the dataset in memory\r\n";
    return "+OK\r\n";
  }));
  auto client = Connect(server.url());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::StatusOr<Reply> bad = client->Call({"BAD"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(bad.status().message(), "redis: ERR something broke");
  EXPECT_EQ(client->Call({"LOAD"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(client->Call({"OTHER"}).ok()) << "an error reply keeps the connection";
  EXPECT_EQ(server.accepted(), 1);
}

TEST(RedisFakeServerTest, AnUnsolicitedReplyIsAProtocolError) {
  FakeRedisServer server(Redisish([](const auto&) -> std::string { return "+OK\r\n+OK\r\n"; }));
  auto client = Connect(server.url());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  (void)client->Call({"X"});
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(client->last_error().message(), "unexpected reply");
  }));
  EXPECT_GE(client->stats().protocol_errors, 1u);
}

TEST(RedisFakeServerTest, NoscriptLoadsTheScriptAndRetriesOnce) {
  auto script = RedisScript::Create("return 42");
  std::atomic<bool> loaded{false};
  FakeRedisServer server(Redisish([&](const std::vector<std::string>& c) -> std::string {
    if (c[0] == "SCRIPT" && c.size() == 3 && c[1] == "LOAD") {
      loaded = true;
      return FakeRedisServer::Bulk(crypto::Sha1Hex(c[2]));
    }
    if (c[0] == "EVALSHA") {
      if (c[1] != script->sha1()) return "-ERR wrong sha\r\n";
      return loaded ? ":42\r\n" : "-NOSCRIPT No matching script. Please use EVAL.\r\n";
    }
    return "-ERR unexpected\r\n";
  }));
  auto client = Connect(server.url());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::StatusOr<Reply> r = client->Call(script->Call({"k"}, {"a"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 42);
  EXPECT_EQ(client->stats().script_loads, 1u);
  r = client->Call(script->Call({"k"}, {"a"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(client->stats().script_loads, 1u) << "loaded once, then EVALSHA only";
}

TEST(RedisFakeServerTest, AScriptThatStaysUnknownFailsInsteadOfLooping) {
  FakeRedisServer server(Redisish([](const std::vector<std::string>& c) -> std::string {
    if (c[0] == "SCRIPT") return "-ERR Error compiling script\r\n";
    return "-NOSCRIPT No matching script.\r\n";
  }));
  auto client = Connect(server.url());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::StatusOr<Reply> r = client->Call(RedisScript::Create("bad(")->Call({}, {}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(client->stats().script_loads, 1u);
}

TEST(RedisFakeServerTest, WrongPasswordIsAClearErrorForCallers) {
  FakeRedisServer server([](const std::vector<std::string>& c) -> std::string {
    if (c[0] == "AUTH") return "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    if (c[0] == "PING") return "-NOAUTH Authentication required.\r\n";
    return "-NOAUTH Authentication required.\r\n";
  });
  auto client = Connect("redis://alice:hunter2@127.0.0.1:" + std::to_string(server.port()));
  ASSERT_TRUE(WaitFor([&] { return !client->last_error().ok(); }));
  EXPECT_EQ(client->last_error().message(),
            "redis: AUTH failed: WRONGPASS invalid username-password pair or user is disabled.");
  absl::StatusOr<Reply> r = client->Call({"GET", "k"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "AUTH failed: WRONGPASS")) << r.status();
  EXPECT_FALSE(absl::StrContains(r.status().message(), "hunter2"));
  const auto commands = server.commands();
  ASSERT_FALSE(commands.empty());
  EXPECT_EQ(commands[0], (std::vector<std::string>{"AUTH", "alice", "hunter2"}));
}

TEST(RedisFakeServerTest, ACommandWithoutReplyTimesOutAndResetsTheConnection) {
  FakeRedisServer server(Redisish([](const std::vector<std::string>& c) -> std::string {
    return c[0] == "HANG" ? "" : "+OK\r\n";
  }));
  auto client = Connect(server.url());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  const absl::Time start = absl::Now();
  absl::StatusOr<Reply> r = client->Call({"HANG"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "no reply")) << r.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_EQ(client->stats().command_timeouts, 1u);
  // FIFO matching cannot survive a lost reply: a new connection serves on.
  ASSERT_TRUE(WaitFor([&] { return client->connected() && server.accepted() == 2; }));
  EXPECT_TRUE(client->Call({"OK"}).ok());
}

TEST(RedisFakeServerTest, PendingCommandsAreBoundedAndTheExcessFailsAtOnce) {
  FakeRedisServer server(Redisish([](const auto&) { return std::string(); }));
  RedisOptions options = Fast();
  options.max_pending_commands = 4;
  options.command_timeout = absl::Seconds(5);
  absl::Mutex mu;  // before the client: its shutdown still calls back
  std::vector<absl::Status> results;
  auto client = Connect(server.url(), options);
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  for (int i = 0; i < 6; ++i) {
    client->Execute({"HANG"}, [&](absl::StatusOr<Reply> r) {
      absl::MutexLock lock(&mu);
      results.push_back(r.status());
    });
  }
  {
    absl::MutexLock lock(&mu);
    std::string all;
    for (const absl::Status& s : results) all += s.ToString() + "\n";
    ASSERT_EQ(results.size(), 2u) << "the 5th and 6th are refused inline:\n" << all;
    for (const absl::Status& s : results) {
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
      EXPECT_TRUE(absl::StrContains(s.message(), "overloaded")) << s;
    }
  }
  EXPECT_EQ(client->stats().rejected, 2u);
  client.reset();  // outstanding commands fail with the client's shutdown
  absl::MutexLock lock(&mu);
  EXPECT_EQ(results.size(), 6u);
}

TEST(RedisFakeServerTest, DroppedConnectionFailsInFlightCommandsAndReconnects) {
  std::atomic<FakeRedisServer*> self{nullptr};
  FakeRedisServer server(Redisish([&](const std::vector<std::string>& c) -> std::string {
    if (c[0] == "DROP") {
      self.load()->DropClients();
      return "";
    }
    return "+OK\r\n";
  }));
  self = &server;
  std::atomic<int> downs{0}, ups{0};
  auto client = Connect(server.url());
  client->SetStateListener([&](bool connected, const absl::Status&) {
    (connected ? ups : downs).fetch_add(1);
  });
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::StatusOr<Reply> r = client->Call({"DROP"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "closed by the server")) << r.status();
  ASSERT_TRUE(WaitFor([&] { return client->connected() && server.accepted() == 2; }));
  EXPECT_TRUE(client->Call({"X"}).ok());
  EXPECT_GE(downs.load(), 1);
  EXPECT_GE(ups.load(), 1);
}

TEST(RedisFakeServerTest, AReplyOverTheSizeBoundIsRefused) {
  FakeRedisServer server(Redisish([](const auto&) -> std::string {
    return "$100000\r\n" + std::string(100000, 'x') + "\r\n";
  }));
  RedisOptions options = Fast();
  options.max_reply_bytes = 4096;
  auto client = Connect(server.url(), options);
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::StatusOr<Reply> r = client->Call({"BIG"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "larger than 4096")) << r.status();
}

// One line from a hostile server must not make the client allocate 800 MB
// (hiredis's table for 10^8 elements) and then wait for the elements.
TEST(RedisFakeServerTest, AHugeArrayFailsTheConnectionWhichThenRecovers) {
  std::atomic<bool> hostile{true};
  FakeRedisServer server(Redisish([&](const auto&) -> std::string {
    if (hostile.exchange(false)) return "*100000000\r\n:1\r\n:2\r\n";
    return FakeRedisServer::Ok();
  }));
  auto client = Connect(server.url());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::StatusOr<Reply> r = client->Call({"SMEMBERS", "k"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(
      r.status().message(),
      "redis: protocol error: reply has more than 1048576 elements (max_reply_elements)"))
      << r.status();
  EXPECT_EQ(client->stats().command_timeouts, 0u) << "refused at once, not timed out";
  EXPECT_GE(client->stats().protocol_errors, 1u);
  ASSERT_TRUE(WaitFor([&] { return client->connected() && server.accepted() == 2; }));
  EXPECT_TRUE(client->Call({"X"}).ok());
}

TEST(RedisFakeServerTest, ManyLargeBulksInOneReplyAreBoundedTogether) {
  FakeRedisServer server(Redisish([](const auto&) -> std::string {
    std::string reply = "*100\r\n";
    for (int i = 0; i < 100; ++i) reply += FakeRedisServer::Bulk(std::string(1000, 'x'));
    return reply;
  }));
  RedisOptions options = Fast();
  options.max_reply_bytes = 4096;  // each bulk fits; the reply does not
  auto client = Connect(server.url(), options);
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::StatusOr<Reply> r = client->Call({"HGETALL", "k"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "reply larger than 4096 bytes (max_reply_bytes)"))
      << r.status();
}

TEST(RedisFakeServerTest, SelectAndAuthAreSentBeforeAnythingElse) {
  FakeRedisServer server(Redisish([](const auto&) { return FakeRedisServer::Ok(); }));
  auto client = Connect("redis://u:p@127.0.0.1:" + std::to_string(server.port()) + "/7");
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  ASSERT_TRUE(client->Call({"SET", "k", "v"}).ok());
  const auto c = server.commands();
  ASSERT_GE(c.size(), 4u);
  EXPECT_EQ(c[0], (std::vector<std::string>{"AUTH", "u", "p"}));
  EXPECT_EQ(c[1], (std::vector<std::string>{"SELECT", "7"}));
  EXPECT_EQ(c[2], (std::vector<std::string>{"PING"}));
  EXPECT_EQ(c[3], (std::vector<std::string>{"SET", "k", "v"}));
}

TEST(RedisFakeServerTest, BadSelectIsAClearError) {
  FakeRedisServer server([](const std::vector<std::string>& c) -> std::string {
    if (c[0] == "SELECT") return "-ERR DB index is out of range\r\n";
    return "+PONG\r\n";
  });
  auto client = Connect(server.url() + "/99");
  ASSERT_TRUE(WaitFor([&] { return !client->last_error().ok(); }));
  EXPECT_EQ(client->last_error().message(), "redis: SELECT failed: ERR DB index is out of range");
}

TEST(RedisFakeServerTest, BlockingCallFromACallbackIsRefused) {
  FakeRedisServer server(Redisish([](const auto&) { return FakeRedisServer::Ok(); }));
  auto client = Connect(server.url());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::Mutex mu;
  bool done = false;
  absl::Status nested;
  client->Execute({"X"}, [&](absl::StatusOr<Reply>) {
    absl::Status s = client->Call({"Y"}).status();
    absl::MutexLock lock(&mu);
    nested = s;
    done = true;
  });
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&done));
  EXPECT_EQ(nested.code(), absl::StatusCode::kFailedPrecondition);
}

// The callbacks of the replies one socket read brings run inside one
// CompletionBatch: what the first defers runs after the last.
TEST(RedisFakeServerTest, TheRepliesOfOneReadCompleteInOneBatch) {
  // The three replies are sent together, in one write, when the third
  // command arrives.
  FakeRedisServer server(Redisish([](const std::vector<std::string>& c) -> std::string {
    if (c[0] == "C") return FakeRedisServer::Bulk("a") + FakeRedisServer::Bulk("b") +
                            FakeRedisServer::Bulk("c");
    return "";
  }));
  // A's reply waits for C's command: a command timeout must not fire first.
  RedisOptions options = Fast();
  options.command_timeout = absl::Seconds(10);
  auto client = Connect(server.url(), options);
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5)));
  absl::Mutex mu;
  std::string log;
  bool done = false;
  for (const char* name : {"A", "B", "C"}) {
    client->Execute({name}, [&, name = std::string(name)](absl::StatusOr<Reply> reply) {
      EXPECT_TRUE(CompletionBatch::Open());
      absl::MutexLock lock(&mu);
      log += reply.ok() ? reply->str : "!";
      if (name == "A") {
        CompletionBatch::Defer([&] {
          absl::MutexLock lock(&mu);
          log += " end";
          done = true;
        });
      }
    });
  }
  absl::MutexLock lock(&mu);
  ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(20))) << log;
  EXPECT_EQ(log, "abc end");
}

TEST(RedisFakeServerTest, BadOptionsAreInvalidArgument) {
  RedisOptions o;
  o.connections = 0;
  EXPECT_EQ(RedisClient::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  RedisOptions t;
  t.tls.enabled = true;
  t.tls.ca_file = "/nonexistent/ca.pem";
  absl::StatusOr<std::unique_ptr<RedisClient>> c = RedisClient::Create(t);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(c.status().message(), "/nonexistent/ca.pem")) << c.status();
  EXPECT_EQ(RedisClient::FromUrl("redis://h:0").status().code(),
            absl::StatusCode::kInvalidArgument);
  RedisOptions b;
  b.max_reply_elements = 0;
  EXPECT_EQ(RedisClient::Create(b).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace stateside::redis

// WriteLane against a real redis-server: submission order survives the
// client's pool, a write of several steps keeps its place, the queue is
// bounded, a disconnected client refuses at once, and destruction waits for
// every answer.
#include "sidecar/redis/write_lane.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisCommand;
using redis::WriteLane;

std::vector<RedisCommand> One(std::vector<std::string> args) {
  std::vector<RedisCommand> commands;
  commands.emplace_back(std::move(args));
  return commands;
}

TEST(WriteLaneTest, RedisAppliesWritesInSubmissionOrder) {
  // Four connections: separate Executes would spread over them.
  redis::RedisOptions options = FastRedisOptions();
  options.connections = 4;
  auto client = ConnectedClient(SharedRedisServer()->url(), options);
  ASSERT_NE(client, nullptr);
  const std::string key = UniquePrefix() + "list";
  std::atomic<int> answered{0}, failed{0};
  std::vector<int> done_order;
  {
    WriteLane lane(client.get(), 100000, 64 << 20);
    for (int i = 0; i < 2000; ++i) {
      lane.Submit(One({"RPUSH", key, std::to_string(i)}),
                  [&, i](WriteLane::Results r) {
                    if (!r.at(0).ok()) failed.fetch_add(1);
                    done_order.push_back(i);  // dones run one at a time, in order
                    answered.fetch_add(1);
                  });
    }
  }  // the destructor waits for every answer
  EXPECT_EQ(answered.load(), 2000);
  EXPECT_EQ(failed.load(), 0);
  ASSERT_EQ(done_order.size(), 2000u);
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(done_order[i], i);
  absl::StatusOr<redis::Reply> list = client->Call({"LRANGE", key, "0", "-1"});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->elements.size(), 2000u);
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(list->elements[i].str, std::to_string(i));
  EXPECT_LT(client->stats().batches_written, 2000u) << "writes were batched";
}

TEST(WriteLaneTest, WaitingWritesAreBoundedAndADisconnectedClientRefusesAtOnce) {
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectedClient((*server)->url());
  ASSERT_NE(client, nullptr);
  WriteLane lane(client.get(), /*max_commands=*/2, /*max_bytes=*/1 << 20);
  (*server)->Pause();  // the first batch stays out
  std::vector<absl::Status> got(4, absl::UnknownError("no answer"));
  std::atomic<int> answered{0};
  for (int i = 0; i < 4; ++i) {
    lane.Submit(One({"SET", absl::StrCat("k", i), "v"}), [&, i](WriteLane::Results r) {
      got[i] = r.at(0).status();
      answered.fetch_add(1);
    });
  }
  // #0 is out, #1 and #2 wait (2 commands), #3 is one too many.
  ASSERT_EQ(answered.load(), 1);
  EXPECT_EQ(got[3].code(), absl::StatusCode::kUnavailable);
  (*server)->Resume();
  ASSERT_TRUE(WaitFor([&] { return answered.load() == 4; }));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(got[i].ok()) << i << ": " << got[i];

  (*server)->Kill();
  ASSERT_TRUE(WaitFor([&] { return !client->connected(); }));
  WriteLane::Results r = lane.Call(One({"SET", "k", "v"}));
  EXPECT_EQ(r.at(0).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.at(0).status().message(), "not connected"));
}

TEST(WriteLaneTest, TheNextStepOfAWriteGoesBeforeWritesSubmittedAfterIt) {
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectedClient((*server)->url());
  ASSERT_NE(client, nullptr);
  const std::string key = UniquePrefix() + "list";
  std::vector<std::string> log;  // dones and thens run one at a time
  {
    WriteLane lane(client.get(), 1000, 1 << 20);
    (*server)->Pause();  // everything below queues behind the first batch
    lane.Submit(One({"RPUSH", key, "a"}), [&](WriteLane::Results) { log.push_back("a"); });
    // Three steps, the second without commands; each sees the one before.
    WriteLane::Step first;
    first.commands = One({"RPUSH", key, "s1"});
    first.then = [&](WriteLane::Results r, WriteLane::Step* next) {
      log.push_back(absl::StrCat("s1:", r.at(0).ok() ? r.at(0)->integer : -1));
      next->then = [&](WriteLane::Results r, WriteLane::Step* next) {
        log.push_back(absl::StrCat("empty:", r.size()));
        next->commands = One({"RPUSH", key, "s3"});
        next->done = [&](WriteLane::Results r) {
          log.push_back(absl::StrCat("s3:", r.at(0).ok() ? r.at(0)->integer : -1));
        };
      };
    };
    lane.Submit(std::move(first));
    for (int i = 0; i < 3; ++i) {
      lane.Submit(One({"RPUSH", key, "b"}), [&](WriteLane::Results) { log.push_back("b"); });
    }
    (*server)->Resume();
  }  // the destructor waits for every step
  EXPECT_EQ(log, (std::vector<std::string>{"a", "s1:2", "empty:0", "s3:3", "b", "b", "b"}));
  absl::StatusOr<redis::Reply> list = client->Call({"LRANGE", key, "0", "-1"});
  ASSERT_TRUE(list.ok());
  std::vector<std::string> items;
  for (const redis::Reply& e : list->elements) items.push_back(e.str);
  EXPECT_EQ(items, (std::vector<std::string>{"a", "s1", "s3", "b", "b", "b"}));

  // Refused at once: every step fails the same way, without Redis.
  (*server)->Kill();
  ASSERT_TRUE(WaitFor([&] { return !client->connected(); }));
  WriteLane lane(client.get(), 1000, 1 << 20);
  std::vector<absl::StatusCode> codes;
  WriteLane::Step refused;
  refused.commands = One({"GET", key});
  refused.then = [&](WriteLane::Results r, WriteLane::Step* next) {
    codes.push_back(r.at(0).status().code());
    next->commands = One({"GET", key});
    next->done = [&](WriteLane::Results r) { codes.push_back(r.at(0).status().code()); };
  };
  lane.Submit(std::move(refused));
  EXPECT_EQ(codes, (std::vector<absl::StatusCode>{absl::StatusCode::kUnavailable,
                                                   absl::StatusCode::kUnavailable}));
}

// One connection refuses a batch past RedisOptions::max_pending_commands
// (8192): the lane sends pieces of at most kMaxBatchCommands, a queued burst
// and a single step larger than that alike, one after the other, in order.
TEST(WriteLaneTest, BatchesLargerThanOneConnectionAcceptsGoOutInPiecesInOrder) {
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectedClient((*server)->url());
  ASSERT_NE(client, nullptr);
  ASSERT_LT(WriteLane::kMaxBatchCommands, client->options().max_pending_commands);
  const std::string key = UniquePrefix() + "list";
  constexpr int kBurst = 12000, kStep = 20000;
  std::atomic<int> failed{0};
  std::vector<std::string> log;  // dones and thens run one at a time
  {
    WriteLane lane(client.get(), 100000, 64 << 20);
    (*server)->Pause();  // everything below queues behind the first batch
    lane.Submit(One({"RPUSH", key, "first"}), [&](WriteLane::Results r) {
      if (!r.at(0).ok()) failed.fetch_add(1);
    });
    for (int i = 0; i < kBurst; ++i) {
      lane.Submit(One({"RPUSH", key, absl::StrCat("b", i)}), [&](WriteLane::Results r) {
        if (!r.at(0).ok()) failed.fetch_add(1);
      });
    }
    // A step of more commands than one connection takes, and its next one.
    WriteLane::Step big;
    for (int i = 0; i < kStep; ++i) {
      big.commands.push_back(RedisCommand({"RPUSH", key, absl::StrCat("s", i)}));
    }
    big.then = [&](WriteLane::Results r, WriteLane::Step* next) {
      int ok = 0;
      for (const auto& one : r) ok += one.ok() ? 1 : 0;
      log.push_back(absl::StrCat("big:", r.size(), ":", ok));
      for (int i = 0; i < kStep; ++i) {
        next->commands.push_back(RedisCommand({"RPUSH", key, absl::StrCat("t", i)}));
      }
      next->done = [&](WriteLane::Results r) {
        int ok = 0;
        for (const auto& one : r) ok += one.ok() ? 1 : 0;
        log.push_back(absl::StrCat("next:", r.size(), ":", ok));
      };
    };
    lane.Submit(std::move(big));
    lane.Submit(One({"RPUSH", key, "last"}), [&](WriteLane::Results r) {
      log.push_back(r.at(0).ok() ? "last" : "last failed");
    });
    (*server)->Resume();
  }  // the destructor waits for every answer
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(log, (std::vector<std::string>{"big:20000:20000", "next:20000:20000", "last"}));
  absl::StatusOr<redis::Reply> list = client->Call({"LRANGE", key, "0", "-1"});
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<std::string> want = {"first"};
  for (int i = 0; i < kBurst; ++i) want.push_back(absl::StrCat("b", i));
  for (int i = 0; i < kStep; ++i) want.push_back(absl::StrCat("s", i));
  for (int i = 0; i < kStep; ++i) want.push_back(absl::StrCat("t", i));
  want.push_back("last");
  ASSERT_EQ(list->elements.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(list->elements[i].str, want[i]) << i;
}

TEST(WriteLaneTest, SplitKeepsOrderAndBothBounds) {
  std::vector<RedisCommand> commands;
  for (int i = 0; i < 10; ++i) {
    commands.push_back(RedisCommand({"SET", std::to_string(i), std::string(100, 'x')}));
  }
  std::vector<std::vector<RedisCommand>> pieces = WriteLane::Split(commands, 4, 250);
  ASSERT_EQ(pieces.size(), 5u) << "two commands of 102 bytes fit in 250";
  int next = 0;
  for (const auto& piece : pieces) {
    EXPECT_LE(piece.size(), 2u);
    for (const RedisCommand& c : piece) EXPECT_EQ(c.args[1], std::to_string(next++));
  }
  EXPECT_EQ(next, 10);
  EXPECT_EQ(WriteLane::Split(commands, 3, 1 << 20).size(), 4u);
  // A command larger than the byte bound goes alone.
  EXPECT_EQ(WriteLane::Split(commands, 10, 1).size(), 10u);
  EXPECT_TRUE(WriteLane::Split({}, 3, 10).empty());
}

}  // namespace
}  // namespace stateside::testing

// The Redis client on Sentinel, against real processes (a master, replicas,
// three sentinels): finding the master, the ROLE check, durable writes (WAIT)
// and batches by master name, following a manual failover and a killed
// master under a load of writes, and the clear errors
// of an unknown master name, unreachable sentinels and sentinel passwords.
#include <atomic>
#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_subscriber.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/integration/redis/sentinel_watch.h"
#include "tests/support/redis_sentinel.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using redis::RedisCommand;
using redis::RedisOptions;
using redis::Reply;

std::unique_ptr<RedisSentinelSet> StartSet(RedisSentinelOptions options = {}) {
  absl::StatusOr<std::unique_ptr<RedisSentinelSet>> set =
      RedisSentinelSet::Start(std::move(options));
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? *std::move(set) : nullptr;
}

RedisOptions SentinelOptions(const std::string& master = "mymaster",
                             const std::string& sentinel_password = "") {
  RedisOptions o = FastRedisOptions();
  o.topology = redis::RedisTopology::kSentinel;
  o.sentinel_master = master;
  o.sentinel_password = sentinel_password;
  return o;
}

std::unique_ptr<RedisClient> Client(const std::string& url, RedisOptions options) {
  absl::StatusOr<std::unique_ptr<RedisClient>> c = RedisClient::FromUrl(url, std::move(options));
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

std::string Port(int port) { return absl::StrCat("127.0.0.1:", port); }

int64_t DbSize(RedisServer& node) {
  RunResult r = node.Cli({"DBSIZE"});
  int64_t n = -1;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(r.out), &n) ? n : -1;
}


// Writers under load: each thread SETs keys of its own, one call at a time,
// and records every call (key, when it started and ended, the outcome).
class WriteLoad {
 public:
  struct Write {
    std::string key;
    absl::Time start;
    absl::Time end;
    absl::Status status;
  };

  WriteLoad(RedisClient* client, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, client, t] {
        for (int n = 0; !stop_.load(); ++n) {
          Write w;
          w.key = absl::StrCat("load:", t, ":", n);
          w.start = absl::Now();
          w.status = client->Call({"SET", w.key, "v"}).status();
          w.end = absl::Now();
          absl::MutexLock lock(&mu_);
          writes_.push_back(std::move(w));
        }
      });
    }
  }
  ~WriteLoad() { Stop(); }

  std::vector<Write> Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    absl::MutexLock lock(&mu_);
    return writes_;
  }

  int ok_since(absl::Time since) {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const Write& w : writes_) n += w.start >= since && w.status.ok() ? 1 : 0;
    return n;
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::vector<Write> writes_ ABSL_GUARDED_BY(mu_);
};

// Counts what the client reports as failovers.
class CountingMetrics final : public redis::RedisMetrics {
 public:
  void CommandDone(absl::Duration) override {}
  void BatchWritten(size_t) override {}
  void Error(std::string_view) override {}
  void MasterChanged() override { changes.fetch_add(1); }
  std::atomic<int> changes{0};
};

// A failover under load, from the client's side: it follows the new master
// within 5 s of the promotion, calls fail fast (UNAVAILABLE) meanwhile, and
// once the old master is back as a replica the client holds no connection
// to it and its keyspace is the new master's. `trigger` starts the
// failover; `after` runs once the client has followed (e.g. a restart).
void FailoverUnderLoad(RedisSentinelSet& set, const std::string& what,
                       const std::function<void()>& trigger,
                       const std::function<void()>& after) {
  RedisOptions options = SentinelOptions();
  auto client = Client(set.url(), options);
  ASSERT_NE(client, nullptr);
  CountingMetrics metrics;
  client->SetMetrics(&metrics);
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(5))) << client->last_error();

  WriteLoad load(client.get(), 4);
  const absl::Time warm = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return load.ok_since(warm) > 200; })) << client->last_error();

  PromotionWatch watch(&set, 0);
  const absl::Time triggered = absl::Now();
  trigger();
  absl::StatusOr<int> agreed = set.WaitNewMaster(0, absl::Seconds(30));
  ASSERT_TRUE(agreed.ok()) << agreed.status();
  const absl::Time sentinels_agreed = absl::Now();
  const std::string new_master = Port(set.node(*agreed).port());
  ASSERT_TRUE(WaitFor(
      [&] { return client->topology().master == new_master && client->connected(); },
      absl::Seconds(15)))
      << client->topology().master << " " << client->last_error();
  const absl::Time followed = absl::Now();
  absl::Time promoted_at;
  ASSERT_EQ(watch.promoted(&promoted_at), *agreed);
  // Writes go on, on the new master.
  ASSERT_TRUE(WaitFor([&] { return load.ok_since(followed) > 200; })) << client->last_error();
  std::vector<WriteLoad::Write> writes = load.Stop();

  std::cout << "[" << what << "] promotion " << (promoted_at - triggered)
            << " after the trigger; sentinels agreed after " << (sentinels_agreed - triggered)
            << "; client followed " << (followed - promoted_at) << " after the promotion ("
            << (followed - triggered) << " after the trigger)\n";
  EXPECT_LT(followed - promoted_at, absl::Seconds(5));

  // Meanwhile every call answered within the command timeout, and every
  // failure was UNAVAILABLE.
  absl::Duration slowest;
  int failed = 0;
  for (const auto& w : writes) {
    slowest = std::max(slowest, w.end - w.start);
    if (!w.status.ok()) {
      ++failed;
      EXPECT_TRUE(absl::IsUnavailable(w.status)) << w.status;
    }
  }
  std::cout << "[" << what << "] " << writes.size() << " writes, " << failed
            << " failed UNAVAILABLE, slowest call " << slowest << "\n";
  // The code bounds a call by the command timeout; the margin is the
  // scheduling of a loaded 2-core machine, not a latency target.
  EXPECT_LT(slowest, options.command_timeout + absl::Seconds(2));
  // One move: answers of sentinels that had not switched yet never take the
  // client back to the old master.
  EXPECT_EQ(client->stats().master_changes, 1u);
  EXPECT_EQ(metrics.changes.load(), 1);

  after();
  // The old master comes back as a replica of the new one.
  EXPECT_TRUE(WaitFor([&] { return set.Role(0) == "slave"; }, absl::Seconds(40)))
      << "old master role: " << set.Role(0);
  // Every write acknowledged once the client had followed is on the new
  // master; acknowledged writes of the switch window that the old master
  // took after the promotion are lost by Sentinel's asynchronous design
  // (counted, not asserted).
  auto direct = ConnectedClient(set.node(*agreed).url());
  ASSERT_NE(direct, nullptr);
  int missing_after = 0, lost_in_window = 0;
  for (const auto& w : writes) {
    if (!w.status.ok()) continue;
    absl::StatusOr<Reply> exists = direct->Call({"EXISTS", w.key});
    ASSERT_TRUE(exists.ok()) << exists.status();
    if (exists->integer == 1) continue;
    if (w.start >= followed) {
      ++missing_after;
    } else {
      ++lost_in_window;
    }
  }
  EXPECT_EQ(missing_after, 0);
  std::cout << "[" << what << "] acknowledged writes lost in the switch window: "
            << lost_in_window << "\n";
  // A write through the client now lands on the new master...
  ASSERT_TRUE(client->Call(RedisCommand({"SET", "after", "1"})).ok()) << client->last_error();
  EXPECT_EQ(set.node(*agreed).Cli({"GET", "after"}).out, "1\n");
  // ...and the old master only ever sees replication: no connection of ours,
  // the same keyspace as the new master once in sync.
  std::string clients;
  EXPECT_EQ(ForeignClients(set.node(0), &clients), 0) << clients;
  EXPECT_TRUE(WaitFor([&] { return DbSize(set.node(0)) == DbSize(set.node(*agreed)); },
                      absl::Seconds(10)))
      << DbSize(set.node(0)) << " vs " << DbSize(set.node(*agreed));
  client->SetMetrics(nullptr);
}

TEST(RedisSentinelTest, FindsTheMasterAndServesCommands) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  auto client = ConnectedClient(set->url(), SentinelOptions());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Call({"SET", "k", "v"}).ok());
  absl::StatusOr<Reply> got = client->Call({"GET", "k"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->str, "v");
  // The write is on the master (and replicated), not served by a replica.
  EXPECT_EQ(set->node(0).Cli({"GET", "k"}).out, "v\n");
  const redis::RedisTopologyInfo topology = client->topology();
  EXPECT_EQ(topology.mode, redis::RedisTopology::kSentinel);
  EXPECT_EQ(topology.master, Port(set->node(0).port()));
  int sentinels = 0;
  int masters = 0;
  for (const auto& node : topology.nodes) {
    masters += node.role == "master" ? 1 : 0;
    if (node.role == "sentinel") {
      ++sentinels;
      EXPECT_FALSE(node.mean_latency.has_value()) << "a sentinel's round trips are not measured";
    } else {
      // The master answered the GET: its round trips are measured.
      ASSERT_TRUE(node.mean_latency.has_value()) << node.address;
      EXPECT_GT(*node.mean_latency, absl::ZeroDuration());
      ASSERT_TRUE(node.last_latency.has_value());
    }
  }
  EXPECT_EQ(sentinels, 3);
  EXPECT_EQ(masters, 1);
  EXPECT_EQ(topology.nodes.size(), 4u);
  EXPECT_EQ(client->MasterAddresses(), std::vector<std::string>{Port(set->node(0).port())});
  EXPECT_EQ(client->stats().master_changes, 0u);
}

// Durable writes are the standalone path to wherever the master is: WAIT
// follows them on the master the sentinels name, and too few replicas is
// UNAVAILABLE with the write itself done. Keyless work names that master.
TEST(RedisSentinelTest, DurableWritesWaitOnTheMasterAndBatchesOnItByName) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(set->node(0).Cli({"INFO", "replication"}).out, "connected_slaves:1");
  })) << set->node(0).Cli({"INFO", "replication"}).out;
  RedisOptions one = SentinelOptions();
  one.wait_replicas = 1;
  one.wait_timeout = absl::Seconds(2);
  auto client = ConnectedClient(set->url(), one);
  ASSERT_NE(client, nullptr);
  RedisCommand write({"SET", "durable", "1"});
  write.durable = true;
  absl::StatusOr<Reply> ok = client->Call(write);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->str, "OK");
  EXPECT_TRUE(absl::StrContains(set->node(0).Cli({"INFO", "commandstats"}).out, "cmdstat_wait:"));
  EXPECT_EQ(client->stats().wait_failures, 0u);

  RedisOptions two = SentinelOptions();
  two.wait_replicas = 2;  // the set has one replica
  two.wait_timeout = absl::Milliseconds(200);
  auto strict = ConnectedClient(set->url(), two);
  ASSERT_NE(strict, nullptr);
  write.args = {"SET", "durable", "2"};
  absl::StatusOr<Reply> lost = strict->Call(write);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_TRUE(absl::StrContains(lost.status().message(), "write not confirmed by 2 replicas"))
      << lost.status();
  EXPECT_EQ(strict->stats().wait_failures, 1u);
  EXPECT_EQ(set->node(0).Cli({"GET", "durable"}).out, "2\n") << "the write itself happened";

  const std::string master = Port(set->node(0).port());
  std::vector<absl::StatusOr<Reply>> on = client->CallBatchOn(master, {{"DBSIZE"}});
  ASSERT_EQ(on.size(), 1u);
  ASSERT_TRUE(on[0].ok()) << on[0].status();
  EXPECT_EQ(on[0]->integer, 1);
  std::vector<absl::StatusOr<Reply>> elsewhere =
      client->CallBatchOn(Port(set->node(1).port()), {{"DBSIZE"}});
  ASSERT_EQ(elsewhere.size(), 1u);
  EXPECT_TRUE(absl::IsUnavailable(elsewhere[0].status())) << elsewhere[0].status();
}

TEST(RedisSentinelTest, RefusesANodeThatIsNotTheMaster) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  // A sentinel told that the replica is the master of "wrong" (it keeps
  // saying so for a while: it cannot fail over alone).
  RunResult added = set->SentinelCli(
      0, {"SENTINEL", "MONITOR", "wrong", "127.0.0.1", std::to_string(set->node(1).port()), "2"});
  ASSERT_EQ(added.out, "OK\n") << added.err;
  auto client = Client(absl::StrCat("redis://", Port(set->sentinel_port(0))), SentinelOptions("wrong"));
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(WaitFor([&] {
    return absl::StrContains(client->last_error().message(), "is not the master (ROLE: slave)");
  })) << client->last_error();
  EXPECT_FALSE(client->connected());
  absl::StatusOr<Reply> refused = client->Call({"SET", "x", "1"});
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "\"wrong\"")) << refused.status();
  // The client keeps connecting to check ROLE, but never sent it a write:
  // commandstats count even refused calls (rejected_calls).
  const std::string stats = set->node(1).Cli({"INFO", "commandstats"}).out;
  EXPECT_FALSE(absl::StrContains(stats, "cmdstat_set:")) << stats;
  EXPECT_TRUE(absl::StrContains(stats, "cmdstat_role:")) << stats;
  EXPECT_EQ(set->node(1).Cli({"EXISTS", "x"}).out, "0\n");
}

// The master is demoted behind the sentinels' back (they still name it):
// the first READONLY reply drops the connections, ROLE keeps them off it, and
// the client reports not connected instead of carrying on against a replica.
TEST(RedisSentinelTest, LeavesAMasterDemotedUnderIt) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  auto client = ConnectedClient(set->url(), SentinelOptions());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Call({"SET", "k", "v"}).ok());
  ASSERT_EQ(set->node(1).Cli({"REPLICAOF", "NO", "ONE"}).out, "OK\n");
  ASSERT_EQ(set->node(0).Cli({"REPLICAOF", "127.0.0.1", std::to_string(set->node(1).port())}).out,
            "OK\n");
  absl::StatusOr<Reply> refused = client->Call({"SET", "k", "w"});
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_TRUE(WaitFor([&] { return !client->connected(); }, absl::Seconds(3)));
  EXPECT_TRUE(WaitFor([&] {
    return absl::StrContains(client->last_error().message(), "is not the master");
  }, absl::Seconds(3))) << client->last_error();
  // From now on no write reaches it (commandstats count refused calls too).
  auto set_stats = [&] {
    for (absl::string_view line :
         absl::StrSplit(set->node(0).Cli({"INFO", "commandstats"}).out, '\n')) {
      if (absl::StartsWith(line, "cmdstat_set:")) return std::string(line);
    }
    return std::string();
  };
  const std::string before = set_stats();
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(absl::IsUnavailable(client->Call({"SET", "k", "x"}).status()));
  }
  EXPECT_EQ(set_stats(), before);
}

TEST(RedisSentinelTest, UnknownMasterNameIsAClearErrorAndNeverFallsBack) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  const RedisOptions options = SentinelOptions("nosuchmaster");
  auto client = Client(set->url(), options);
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->WaitConnected(absl::Seconds(2)));
  const absl::Status error = client->last_error();
  EXPECT_TRUE(absl::IsFailedPrecondition(error)) << error;
  EXPECT_TRUE(absl::StrContains(error.message(), "\"nosuchmaster\"")) << error;
  EXPECT_TRUE(absl::StrContains(error.message(), "REDIS_SENTINEL_MASTER")) << error;
  const absl::Time start = absl::Now();
  absl::StatusOr<Reply> refused = client->Call({"SET", "x", "1"});
  // Fails fast: refused at once, not after waiting the command timeout out.
  EXPECT_LT(absl::Now() - start, options.command_timeout / 2);
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "nosuchmaster")) << refused.status();
  EXPECT_TRUE(client->topology().master.empty());
  for (int i = 0; i < set->node_count(); ++i) EXPECT_EQ(ForeignClients(set->node(i)), 0) << i;
}

TEST(RedisSentinelTest, UnreachableSentinelsAreAClearError) {
  // Ports nothing listens on (picked free, never bound by us).
  const std::string url =
      absl::StrCat("redis://127.0.0.1:", PickFreePort(), ",127.0.0.1:", PickFreePort());
  auto client = Client(url, SentinelOptions());
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->WaitConnected(absl::Seconds(1)));
  EXPECT_TRUE(WaitFor([&] { return !client->last_error().ok(); }));
  const absl::Status error = client->last_error();
  EXPECT_TRUE(absl::IsUnavailable(error)) << error;
  EXPECT_TRUE(absl::StrContains(error.message(), "no sentinel answered")) << error;
  EXPECT_TRUE(absl::StrContains(error.message(), "REDIS_URL")) << error;
  absl::StatusOr<Reply> refused = client->Call({"PING"});
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "mymaster")) << refused.status();
}

TEST(RedisSentinelTest, SentinelPasswordRightAndWrong) {
  RedisSentinelOptions options;
  options.sentinel_password = "sentinel-secret";
  options.data_password = "data-secret";
  auto set = StartSet(options);
  ASSERT_NE(set, nullptr);

  auto good = ConnectedClient(set->url(), SentinelOptions("mymaster", "sentinel-secret"));
  ASSERT_NE(good, nullptr);
  EXPECT_TRUE(good->Call({"SET", "k", "v"}).ok());

  auto wrong = Client(set->url(), SentinelOptions("mymaster", "not-it"));
  ASSERT_NE(wrong, nullptr);
  EXPECT_FALSE(wrong->WaitConnected(absl::Seconds(1)));
  EXPECT_TRUE(WaitFor([&] { return !wrong->last_error().ok(); }));
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong->last_error())) << wrong->last_error();
  EXPECT_TRUE(absl::StrContains(wrong->last_error().message(), "REDIS_SENTINEL_PASSWORD"))
      << wrong->last_error();
  EXPECT_FALSE(absl::StrContains(wrong->last_error().message(), "not-it"));

  auto missing = Client(set->url(), SentinelOptions("mymaster", ""));
  ASSERT_NE(missing, nullptr);
  EXPECT_TRUE(WaitFor([&] { return !missing->last_error().ok(); }));
  EXPECT_TRUE(absl::StrContains(missing->last_error().message(), "REDIS_SENTINEL_PASSWORD"))
      << missing->last_error();
  EXPECT_FALSE(missing->connected());
}

TEST(RedisSentinelTest, FollowsAManualFailoverUnderLoad) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  FailoverUnderLoad(
      *set, "SENTINEL FAILOVER",
      [&] {
        RunResult r = set->SentinelCli(0, {"SENTINEL", "FAILOVER", "mymaster"});
        ASSERT_EQ(r.out, "OK\n") << r.out << r.err;
      },
      [] {});
}

TEST(RedisSentinelTest, FollowsAKilledMasterUnderLoad) {
  RedisSentinelOptions options;
  options.replicas = 2;
  auto set = StartSet(options);
  ASSERT_NE(set, nullptr);
  FailoverUnderLoad(
      *set, "SIGKILL master", [&] { set->node(0).Kill(); },
      // Back, empty, and still configured as a master: the sentinels turn
      // it into a replica; the client must never go there.
      [&] { ASSERT_TRUE(set->node(0).Restart().ok()); });
}

// The sentinel carrying the subscription dies: the client subscribes on
// another one and still follows a failover promptly.
TEST(RedisSentinelTest, SubscriptionMovesWhenItsSentinelDies) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  auto client = ConnectedClient(set->url(), SentinelOptions());
  ASSERT_NE(client, nullptr);
  auto subscribed = [&]() -> int {
    for (const auto& node : client->topology().nodes) {
      if (node.role != "sentinel" || !node.connected) continue;
      for (int i = 0; i < set->sentinel_count(); ++i) {
        if (node.address == Port(set->sentinel_port(i))) return i;
      }
    }
    return -1;
  };
  int first = -1;
  ASSERT_TRUE(WaitFor([&] { return (first = subscribed()) >= 0; }));
  set->KillSentinel(first);
  int second = -1;
  ASSERT_TRUE(WaitFor([&] { return (second = subscribed()) >= 0 && second != first; },
                      absl::Seconds(10)));
  EXPECT_TRUE(client->Call({"SET", "k", "v"}).ok());

  ASSERT_TRUE(set->WaitSettled(0, absl::Seconds(20)).ok());
  const int other = (first + 1) % set->sentinel_count();
  ASSERT_EQ(set->SentinelCli(other, {"SENTINEL", "FAILOVER", "mymaster"}).out, "OK\n");
  absl::StatusOr<int> now = set->WaitNewMaster(0, absl::Seconds(30));
  ASSERT_TRUE(now.ok()) << now.status();
  const absl::Time agreed = absl::Now();
  ASSERT_TRUE(WaitFor([&] {
    return client->topology().master == Port(set->node(*now).port()) && client->connected();
  }, absl::Seconds(10)));
  EXPECT_LT(absl::Now() - agreed, absl::Seconds(5));
  EXPECT_TRUE(client->Call({"SET", "k", "w"}).ok());
  EXPECT_EQ(set->node(*now).Cli({"GET", "k"}).out, "w\n");
}

// What a RedisSubscriber heard: its messages and the loss windows it reported.
class Heard {
 public:
  redis::RedisSubscriber::Callbacks Callbacks() {
    redis::RedisSubscriber::Callbacks callbacks;
    callbacks.on_message = [this](std::string_view, std::string_view payload) {
      absl::MutexLock lock(&mu_);
      got_.emplace_back(payload);
    };
    callbacks.on_restored = [this](absl::Time since, absl::Time until) {
      absl::MutexLock lock(&mu_);
      gaps_.emplace_back(since, until);
    };
    return callbacks;
  }
  bool Has(const std::string& payload) const {
    absl::MutexLock lock(&mu_);
    return std::find(got_.begin(), got_.end(), payload) != got_.end();
  }
  std::vector<std::pair<absl::Time, absl::Time>> gaps() const {
    absl::MutexLock lock(&mu_);
    return gaps_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> got_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<absl::Time, absl::Time>> gaps_ ABSL_GUARDED_BY(mu_);
};

// A subscriber on the set's master, following it through the sentinels,
// with `channel` subscribed and confirmed and the first window reported
// (nullptr + a failure otherwise).
std::unique_ptr<redis::RedisSubscriber> SubscribedOn(RedisSentinelSet& set, Heard& heard,
                                                     const std::string& channel) {
  absl::StatusOr<RedisOptions> options = redis::ParseRedisUrl(set.url(), SentinelOptions());
  EXPECT_TRUE(options.ok()) << options.status();
  if (!options.ok()) return nullptr;
  auto sub = redis::RedisSubscriber::Create(*options, heard.Callbacks());
  EXPECT_TRUE(sub.ok()) << sub.status();
  if (!sub.ok()) return nullptr;
  EXPECT_TRUE(WaitFor([&] { return (*sub)->connected(); }));
  absl::Notification subscribed;
  absl::Status status;
  (*sub)->Subscribe({channel}, [&](absl::Status s) {
    status = s;
    subscribed.Notify();
  });
  EXPECT_TRUE(subscribed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(status.ok()) << status;
  // The first subscription reports the window since Create() as well.
  EXPECT_TRUE(WaitFor([&] { return !heard.gaps().empty(); }));
  if (!status.ok() || !(*sub)->connected()) return nullptr;
  return *std::move(sub);
}

// The realtime subscriber's own connection follows the master too: after a
// failover it subscribes again on the new master, never on the demoted one.
TEST(RedisSentinelTest, SubscriberFollowsTheMaster) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  Heard heard;
  auto sub = SubscribedOn(*set, heard, "chan");
  ASSERT_NE(sub, nullptr);
  auto has = [&](const std::string& payload) { return heard.Has(payload); };
  EXPECT_EQ(set->node(0).Cli({"PUBSUB", "NUMSUB", "chan"}).out, "chan\n1\n");
  set->node(0).Cli({"PUBLISH", "chan", "before"});
  ASSERT_TRUE(WaitFor([&] { return has("before"); }));

  const size_t restored_before = heard.gaps().size();
  ASSERT_EQ(set->SentinelCli(0, {"SENTINEL", "FAILOVER", "mymaster"}).out, "OK\n");
  absl::StatusOr<int> now = set->WaitNewMaster(0, absl::Seconds(30));
  ASSERT_TRUE(now.ok()) << now.status();
  ASSERT_TRUE(WaitFor([&] { return heard.gaps().size() > restored_before && sub->connected(); },
                      absl::Seconds(10)));
  EXPECT_EQ(set->node(*now).Cli({"PUBSUB", "NUMSUB", "chan"}).out, "chan\n1\n");
  set->node(*now).Cli({"PUBLISH", "chan", "after"});
  EXPECT_TRUE(WaitFor([&] { return has("after"); }));
  ASSERT_TRUE(WaitFor([&] { return set->Role(0) == "slave"; }, absl::Seconds(40)));
  EXPECT_EQ(set->node(0).Cli({"PUBSUB", "NUMSUB", "chan"}).out, "chan\n0\n");
  std::string clients;
  EXPECT_EQ(ForeignClients(set->node(0), &clients), 0) << clients;
}

// Messages published through a client during a failover reach a subscriber
// that follows the master on its own, or fall inside a gap it reports: its
// gap starts when a sentinel last named the old master, not when it noticed
// the move, so the window in which the client already publishes on the new
// master while the subscriber still listens on the old one is covered.
TEST(RedisSentinelTest, SubscriberGapCoversTheSwitch) {
  auto set = StartSet();
  ASSERT_NE(set, nullptr);
  Heard heard;
  auto sub = SubscribedOn(*set, heard, "room");
  ASSERT_NE(sub, nullptr);
  auto client = ConnectedClient(set->url(), SentinelOptions());
  ASSERT_NE(client, nullptr);
  const size_t gaps_before = heard.gaps().size();

  struct Sent {
    std::string payload;
    absl::Time start, end;
  };
  std::vector<Sent> sent;
  const std::string old_master = Port(set->node(0).port());
  ASSERT_EQ(client->topology().master, old_master);
  ASSERT_EQ(set->SentinelCli(0, {"SENTINEL", "FAILOVER", "mymaster"}).out, "OK\n");
  // Publish from the trigger on until both sides have left the old master
  // and the subscriber has reported its gap (bounded by a deadline).
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (int i = 0; absl::Now() < deadline; ++i) {
    Sent s{absl::StrCat("m", i), absl::Now(), absl::Time()};
    absl::StatusOr<Reply> r = client->Call({"PUBLISH", "room", s.payload});
    s.end = absl::Now();
    if (r.ok()) sent.push_back(s);
    const bool settled = heard.gaps().size() > gaps_before;
    const std::string master = client->topology().master;
    if (settled && !master.empty() && master != old_master && sub->connected()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // publish pacing
  }
  ASSERT_FALSE(sent.empty());
  absl::StatusOr<int> now = set->WaitNewMaster(0, absl::Seconds(30));
  ASSERT_TRUE(now.ok()) << now.status();
  ASSERT_EQ(client->topology().master, Port(set->node(*now).port()));
  // The last messages were published with both on the new master.
  ASSERT_TRUE(client->Call({"PUBLISH", "room", "last"}).ok());
  ASSERT_TRUE(WaitFor([&] { return heard.Has("last"); }));
  const std::vector<std::pair<absl::Time, absl::Time>> gaps = heard.gaps();
  ASSERT_GT(gaps.size(), gaps_before);
  int received = 0, in_gap = 0;
  for (const Sent& s : sent) {
    if (heard.Has(s.payload)) {
      ++received;
      continue;
    }
    bool covered = false;
    for (size_t g = gaps_before; g < gaps.size(); ++g) {
      covered |= gaps[g].first <= s.end && s.start <= gaps[g].second;
    }
    EXPECT_TRUE(covered) << s.payload << " published " << s.start << ".." << s.end
                         << ", neither received nor inside a reported gap (first gap "
                         << gaps[gaps_before].first << ".." << gaps[gaps_before].second << ")";
    in_gap += covered ? 1 : 0;
  }
  std::cout << "[switch] " << sent.size() << " published, " << received << " received, "
            << in_gap << " lost inside a reported gap\n";
}

}  // namespace
}  // namespace stateside::testing

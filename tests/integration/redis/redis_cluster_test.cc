// RedisClient on a real six-node Redis Cluster (three masters, one replica
// each): routing by slot, batches split across nodes, MOVED after a slot
// migration, ASK during one, a killed master's failover, WAIT durability,
// a key rotation's rewrap sweep, the realtime subscriber; and the store
// conformance suites.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sidecar/redis/cluster_slots.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_opt_out_store.h"
#include "sidecar/redis/redis_request_store.h"
#include "sidecar/redis/redis_session_store.h"
#include "sidecar/redis/redis_subscriber.h"
#include "sidecar/redis/rewrap_sweep.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/integration/redis/rewrap_node.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_server.h"
#include "tests/support/request_store_conformance.h"
#include "tests/support/subprocess.h"
#include "tests/support/session_rules_conformance.h"
#include "tests/support/store_conformance.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using redis::RedisCommand;
using redis::RedisOptions;
using redis::Reply;

// One cluster per binary (starting six servers costs seconds); tests that
// kill or migrate restore it before they return.
RedisCluster* SharedCluster() {
  static std::unique_ptr<RedisCluster> cluster = [] {
    absl::StatusOr<std::unique_ptr<RedisCluster>> c = RedisCluster::Start();
    if (!c.ok()) std::cerr << "redis cluster: " << c.status() << "\n";
    return c.ok() ? *std::move(c) : nullptr;
  }();
  return cluster.get();
}

RedisOptions ClusterOptions() {
  RedisOptions o = FastRedisOptions();
  o.topology = redis::RedisTopology::kCluster;
  return o;
}

std::unique_ptr<RedisClient> ClusterClient(RedisOptions o = ClusterOptions()) {
  RedisCluster* cluster = SharedCluster();
  if (cluster == nullptr) return nullptr;
  return ConnectedClient(cluster->url(), std::move(o));
}

RedisClient* SharedClusterClient() {
  static std::unique_ptr<RedisClient> client = ClusterClient();
  return client.get();
}

TEST(RedisClusterTest, KeysLandOnEveryMaster) {
  RedisClient* client = SharedClusterClient();
  ASSERT_NE(client, nullptr);
  const std::string prefix = UniquePrefix();
  std::vector<RedisCommand> sets;
  for (int i = 0; i < 300; ++i) sets.push_back({"SET", absl::StrCat(prefix, i), "v"});
  for (const auto& r : client->CallBatch(std::move(sets))) ASSERT_TRUE(r.ok()) << r.status();
  const std::vector<std::string> masters = client->MasterAddresses();
  ASSERT_EQ(masters.size(), 3u);
  for (const std::string& master : masters) {
    std::vector<absl::StatusOr<Reply>> got = client->CallBatchOn(master, {RedisCommand({"DBSIZE"})});
    ASSERT_TRUE(got[0].ok()) << got[0].status();
    EXPECT_GT(got[0]->integer, 0) << master;
  }
  const redis::RedisTopologyInfo topology = client->topology();
  EXPECT_EQ(topology.slots_covered, 16384);
  EXPECT_EQ(topology.nodes.size(), 6u);
  int master_slots = 0;
  for (const auto& node : topology.nodes) {
    if (node.role == "master") {
      master_slots += node.slots;
      EXPECT_TRUE(node.connected) << node.address;
      // Each master answered (DBSIZE above): its round trips are measured.
      ASSERT_TRUE(node.mean_latency.has_value()) << node.address;
      ASSERT_TRUE(node.last_latency.has_value()) << node.address;
      EXPECT_GT(*node.mean_latency, absl::ZeroDuration()) << node.address;
      EXPECT_GT(*node.last_latency, absl::ZeroDuration()) << node.address;
    }
  }
  EXPECT_EQ(master_slots, 16384);
  EXPECT_TRUE(client->connected());
  EXPECT_GE(client->stats().topology_refreshes, 1u);
}

TEST(RedisClusterTest, BatchAcrossSlotsAnswersInTheCallersOrder) {
  RedisClient* client = SharedClusterClient();
  ASSERT_NE(client, nullptr);
  const std::string prefix = UniquePrefix();
  std::vector<RedisCommand> batch;
  for (int i = 0; i < 60; ++i) {
    batch.push_back({"SET", absl::StrCat(prefix, i), absl::StrCat("value", i)});
    batch.push_back({"GET", absl::StrCat(prefix, i)});
    batch.push_back({"INCR", absl::StrCat(prefix, "n", i % 7)});
  }
  batch.push_back({"PING"});
  std::vector<absl::StatusOr<Reply>> r = client->CallBatch(std::move(batch));
  ASSERT_EQ(r.size(), 181u);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(r[3 * i].ok() && r[3 * i + 1].ok() && r[3 * i + 2].ok());
    EXPECT_EQ(r[3 * i + 1]->str, absl::StrCat("value", i));
    EXPECT_EQ(r[3 * i + 2]->integer, ++counts[i % 7]) << "order within a node is kept";
  }
  EXPECT_EQ(r[180]->str, "PONG");
}

// Moves `slot` from its master to `to_port`, keys included.
void MigrateSlot(RedisCluster& cluster, int slot, int to_port, bool finish = true) {
  const int from_port = cluster.MasterOfSlot(slot);
  const std::string from_id = cluster.NodeId(from_port), to_id = cluster.NodeId(to_port);
  const std::string s = std::to_string(slot);
  ASSERT_EQ(cluster.Cli(to_port, {"CLUSTER", "SETSLOT", s, "IMPORTING", from_id}).out, "OK\n");
  ASSERT_EQ(cluster.Cli(from_port, {"CLUSTER", "SETSLOT", s, "MIGRATING", to_id}).out, "OK\n");
  RunResult keys = cluster.Cli(from_port, {"CLUSTER", "GETKEYSINSLOT", s, "1000"});
  std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(to_port), "", "0",
                                      "5000", "KEYS"};
  for (absl::string_view k : absl::StrSplit(keys.out, '\n', absl::SkipEmpty())) {
    migrate.emplace_back(k);
  }
  if (migrate.size() > 7) {
    RunResult moved = cluster.Cli(from_port, migrate);
    ASSERT_EQ(moved.out, "OK\n") << moved.err;
  }
  if (!finish) return;
  for (int port : cluster.MasterPorts()) {
    cluster.Cli(port, {"CLUSTER", "SETSLOT", s, "NODE", to_id});
  }
  ASSERT_TRUE(WaitFor([&] { return cluster.MasterOfSlot(slot) == to_port; }, absl::Seconds(10)));
}

// A fresh key holding `value`, its slot, its master and another master.
struct SlotMove {
  std::string key;
  int slot = 0;
  int from = 0;
  int to = 0;
};
SlotMove PrepareMove(RedisCluster& cluster, RedisClient& client, const std::string& value) {
  SlotMove m;
  m.key = UniquePrefix() + "moving";
  m.slot = redis::KeySlot(m.key);
  EXPECT_TRUE(client.Call({"SET", m.key, value}).ok());
  const std::vector<int> masters = cluster.MasterPorts();
  m.from = cluster.MasterOfSlot(m.slot);
  m.to = *std::find_if(masters.begin(), masters.end(), [&](int p) { return p != m.from; });
  return m;
}

TEST(RedisClusterTest, FollowsMovedAfterASlotMigration) {
  RedisCluster* cluster = SharedCluster();
  // A fresh client: it has just read the map and reads it again in 10 s, so
  // its map is still stale when the migration below completes (a periodic
  // refresh in between would route straight to the new owner, no MOVED).
  std::unique_ptr<RedisClient> fresh = ClusterClient();
  RedisClient* client = fresh.get();
  ASSERT_NE(client, nullptr);
  const auto [key, slot, from, to] = PrepareMove(*cluster, *client, "before");
  const uint64_t moved_before = client->stats().redirects_moved;
  MigrateSlot(*cluster, slot, to);
  // The client still sends to `from`, which answers MOVED: followed, no failure.
  absl::StatusOr<Reply> got = client->Call({"GET", key});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->str, "before");
  ASSERT_TRUE(client->Call({"SET", key, "after"}).ok());
  EXPECT_GE(client->stats().redirects_moved, moved_before + 1);
  // And the map learns the move: the next commands go straight to `to`.
  ASSERT_TRUE(WaitFor([&] {
    const uint64_t before = client->stats().redirects_moved;
    return client->Call({"GET", key}).ok() && client->stats().redirects_moved == before;
  }));
  const uint64_t settled = client->stats().redirects_moved;
  for (int i = 0; i < 20; ++i) ASSERT_EQ(client->Call({"GET", key})->str, "after");
  EXPECT_EQ(client->stats().redirects_moved, settled);
  MigrateSlot(*cluster, slot, from);  // put it back
}

TEST(RedisClusterTest, FollowsAskDuringAMigration) {
  RedisCluster* cluster = SharedCluster();
  RedisClient* client = SharedClusterClient();
  ASSERT_NE(client, nullptr);
  const auto [key, slot, from, to] = PrepareMove(*cluster, *client, "here");
  const uint64_t asks_before = client->stats().redirects_ask;
  // Half-way: the key already moved, the slot still belongs to `from`.
  MigrateSlot(*cluster, slot, to, /*finish=*/false);
  absl::StatusOr<Reply> got = client->Call({"GET", key});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->str, "here");
  EXPECT_GE(client->stats().redirects_ask, asks_before + 1);
  EXPECT_EQ(cluster->MasterOfSlot(slot), from) << "ASK does not move the slot";
  const std::string s = std::to_string(slot);
  const std::string to_id = cluster->NodeId(to);
  for (int port : cluster->MasterPorts()) cluster->Cli(port, {"CLUSTER", "SETSLOT", s, "NODE", to_id});
  ASSERT_TRUE(WaitFor([&] { return cluster->MasterOfSlot(slot) == to; }, absl::Seconds(10)));
  MigrateSlot(*cluster, slot, from);
  EXPECT_EQ(client->Call({"GET", key})->str, "here");
}

TEST(RedisClusterTest, DurableWritesWaitForAReplica) {
  RedisCluster* cluster = SharedCluster();
  RedisOptions o = ClusterOptions();
  o.wait_replicas = 1;
  o.wait_timeout = absl::Milliseconds(300);
  auto client = ClusterClient(o);
  ASSERT_NE(client, nullptr);
  const std::string key = UniquePrefix() + "durable";
  RedisCommand write({"SET", key, "1"});
  write.durable = true;
  absl::StatusOr<Reply> ok = client->Call(write);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->str, "OK");
  // Without its replica, the master cannot confirm: UNAVAILABLE, and a
  // non-durable write is not held to it.
  const int master = cluster->MasterOfSlot(redis::KeySlot(key));
  const std::vector<int> replicas = cluster->ReplicasOf(master);
  ASSERT_EQ(replicas.size(), 1u);
  cluster->Kill(replicas[0]);
  absl::StatusOr<Reply> lost = client->Call(write);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_TRUE(absl::StrContains(lost.status().message(), "write not confirmed by 1 replicas"))
      << lost.status();
  EXPECT_GE(client->stats().wait_failures, 1u);
  EXPECT_TRUE(client->Call({"SET", key, "2"}).ok());
  ASSERT_TRUE(cluster->Restart(replicas[0]).ok());
  ASSERT_TRUE(cluster->WaitHealthy().ok());
  EXPECT_TRUE(client->Call(write).ok());
}

TEST(RedisClusterTest, DurableWritesOnStandaloneWaitToo) {
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  RedisOptions o = FastRedisOptions();
  o.wait_replicas = 1;
  o.wait_timeout = absl::Milliseconds(100);
  auto client = ConnectedClient((*server)->url(), o);
  ASSERT_NE(client, nullptr);
  RedisCommand write({"SET", "k", "v"});
  write.durable = true;
  absl::StatusOr<Reply> r = client->Call(write);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "write not confirmed by 1 replicas"))
      << r.status();
  EXPECT_EQ(client->Call({"GET", "k"})->str, "v") << "the write itself happened";
  write.durable = false;
  EXPECT_TRUE(client->Call(write).ok());
}

// A classic RedisSubscriber on Cluster (realtime uses shard channels:
// redis_sharded_pubsub_test): the cluster broadcasts classic pub/sub, so one
// connection to any seed hears a PUBLISH sent to every master; a seed that
// does not answer is passed over for the next one.
TEST(RedisClusterTest, SubscriberHearsEveryMasterThroughTheNextSeed) {
  RedisCluster* cluster = SharedCluster();
  ASSERT_NE(cluster, nullptr);
  RedisClient* client = SharedClusterClient();
  ASSERT_NE(client, nullptr);
  const int dead = PickFreePort();  // nothing listens there
  ASSERT_GT(dead, 0);
  std::string url = cluster->url();
  ASSERT_TRUE(absl::StartsWith(url, "redis://127.0.0.1:")) << url;
  url.insert(std::string_view("redis://").size(), absl::StrCat("127.0.0.1:", dead, ","));
  absl::StatusOr<RedisOptions> options = redis::ParseRedisUrl(url, ClusterOptions());
  ASSERT_TRUE(options.ok()) << options.status();
  absl::Mutex mu;
  std::vector<std::string> heard;
  redis::RedisSubscriber::Callbacks callbacks;
  callbacks.on_message = [&](std::string_view, std::string_view payload) {
    absl::MutexLock lock(&mu);
    heard.emplace_back(payload);
  };
  absl::StatusOr<std::unique_ptr<redis::RedisSubscriber>> subscriber =
      redis::RedisSubscriber::Create(*options, std::move(callbacks));
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  const std::string channel = UniquePrefix() + "events";
  // Asked before the connection is up: subscribed once it is (connected()
  // turns true as Redis confirms the wanted channels).
  (*subscriber)->Subscribe({channel}, [](absl::Status) {});
  ASSERT_TRUE(WaitFor([&] { return (*subscriber)->connected(); }, absl::Seconds(10)));
  EXPECT_EQ((*subscriber)->stats().connects, 1u);

  const std::vector<std::string> masters = client->MasterAddresses();
  ASSERT_EQ(masters.size(), 3u);
  for (const std::string& master : masters) {
    std::vector<absl::StatusOr<Reply>> sent =
        client->CallBatchOn(master, {{"PUBLISH", channel, master}});
    ASSERT_TRUE(sent[0].ok()) << sent[0].status();
  }
  EXPECT_TRUE(WaitFor([&] {
    absl::MutexLock lock(&mu);
    return heard.size() == masters.size();
  }));
  absl::MutexLock lock(&mu);
  std::vector<std::string> want = masters;
  std::sort(want.begin(), want.end());
  std::sort(heard.begin(), heard.end());
  EXPECT_EQ(heard, want);
}

TEST(RedisClusterTest, KilledMasterFailsFastThenFailsOver) {
  RedisCluster* cluster = SharedCluster();
  RedisClient* client = SharedClusterClient();
  ASSERT_NE(client, nullptr);
  const std::string key = UniquePrefix() + "failover";
  ASSERT_TRUE(client->Call({"SET", key, "kept"}).ok());
  const int master = cluster->MasterOfSlot(redis::KeySlot(key));
  ASSERT_NE(master, 0);
  const std::vector<int> replicas = cluster->ReplicasOf(master);
  ASSERT_EQ(replicas.size(), 1u);
  // A key served by another master: the cluster answers CLUSTERDOWN for it
  // while a slot is unserved, which the client retries within the timeout.
  std::string other;
  for (int i = 0; other.empty(); ++i) {
    std::string k = absl::StrCat(key, "-other", i);
    if (cluster->MasterOfSlot(redis::KeySlot(k)) != master) other = k;
  }
  ASSERT_TRUE(client->Call({"SET", other, "there"}).ok());
  // The write reached the replica before the kill (WAIT on a raw connection).
  ASSERT_EQ(cluster->Cli(master, {"WAIT", "1", "2000"}).out, "1\n");
  const uint64_t retries_before = client->stats().retries;
  cluster->Kill(master);
  EXPECT_TRUE(WaitFor([&] { return !client->connected(); }, absl::Seconds(5)))
      << "readiness needs every slot's master";
  const absl::Duration timeout = client->options().command_timeout;
  int failures = 0;
  bool served = false;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (absl::Now() < until) {
    const absl::Time start = absl::Now();
    absl::StatusOr<Reply> elsewhere = client->Call({"GET", other});
    EXPECT_TRUE(elsewhere.ok() || absl::IsUnavailable(elsewhere.status())) << elsewhere.status();
    absl::StatusOr<Reply> got = client->Call({"GET", key});
    const absl::Duration took = absl::Now() - start;
    EXPECT_LE(took, 2 * timeout + absl::Milliseconds(500)) << "no call hangs past its timeout";
    if (got.ok()) {
      EXPECT_EQ(got->str, "kept");
      served = true;
      break;
    }
    EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
    ++failures;
  }
  ASSERT_TRUE(served) << "the replica was not promoted (or not found)";
  EXPECT_EQ(cluster->MasterOfSlot(redis::KeySlot(key)), replicas[0]);
  EXPECT_TRUE(client->Call({"SET", key, "after"}).ok());
  EXPECT_TRUE(WaitFor([&] { return client->connected(); }, absl::Seconds(10)));
  // The old master comes back as a replica; the cluster is whole again.
  ASSERT_TRUE(cluster->Restart(master).ok());
  ASSERT_TRUE(cluster->WaitHealthy().ok()) << cluster->logs();
  EXPECT_GE(client->stats().topology_refreshes, 2u);
  EXPECT_GT(client->stats().retries, retries_before);
  std::cout << "failover: " << failures << " calls failed UNAVAILABLE before the promotion\n";
}

TEST(RedisClusterTest, PasswordProtectedClusterAuthenticatesEveryNode) {
  RedisClusterOptions options;
  options.requirepass = "cluster-secret";
  absl::StatusOr<std::unique_ptr<RedisCluster>> cluster = RedisCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  RedisOptions o = ClusterOptions();
  auto client = ConnectedClient((*cluster)->url(), o);
  ASSERT_NE(client, nullptr);
  std::vector<RedisCommand> batch;
  for (int i = 0; i < 100; ++i) batch.push_back({"SET", absl::StrCat("auth", i), "v"});
  for (const auto& r : client->CallBatch(std::move(batch))) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(client->MasterAddresses().size(), 3u);
  // Without the password no node lets the client in.
  absl::StatusOr<std::unique_ptr<RedisClient>> anonymous = RedisClient::FromUrl(
      absl::StrReplaceAll((*cluster)->url(), {{":cluster-secret@", ""}}), o);
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  EXPECT_FALSE((*anonymous)->WaitConnected(absl::Seconds(1)));
  EXPECT_EQ((*anonymous)->Call({"GET", "auth1"}).status().code(), absl::StatusCode::kUnavailable);
}

// A key rotation on the cluster: the sweep scans every master in turn and
// re-files each opt-out across slots; afterwards the new key alone reads all.
TEST(RedisClusterTest, RewrapSweepCoversEveryMaster) {
  RedisClient* client = SharedClusterClient();
  ASSERT_NE(client, nullptr);
  SystemClock clock;
  std::unique_ptr<RandomSource> random = crypto::NewSecureRandom();
  absl::StatusOr<std::unique_ptr<crypto::CookieSigner>> signer =
      crypto::CookieSigner::Create({std::string(32, 's')});
  ASSERT_TRUE(signer.ok()) << signer.status();
  const std::string prefix = UniquePrefix();
  auto make_node = [&](const std::string& keys) {
    return MakeRewrapNode(client, prefix, keys, random.get(), signer->get(), &clock);
  };
  const std::string k1 = absl::StrCat("k1:", kTestKeyHex);
  const std::string k2 = absl::StrCat("k2:", kOtherTestKeyHex);
  constexpr int kSessions = 40;
  std::unique_ptr<RewrapNode> old_node = make_node(k1);
  std::vector<std::string> ids;
  for (int i = 0; i < kSessions; ++i) {
    session::CreateParams p;
    p.user_id = absl::StrCat("u", i);
    p.attributes = {{"theme", "dark"}};
    absl::StatusOr<session::Session> s = old_node->sessions->Create(p);
    ASSERT_TRUE(s.ok()) << s.status();
    ids.push_back(s->info.id);
    ASSERT_TRUE(old_node->opt_outs->Set(absl::StrCat("subject-", i), true, std::nullopt).ok());
  }
  std::unique_ptr<RewrapNode> rotated = make_node(absl::StrCat(k2, ",", k1));
  redis::RewrapOptions options;
  options.prefix = prefix;
  options.items_per_second = 100000;
  options.owner = "test";
  redis::RewrapSweep sweep(client, rotated->sealer.get(), &clock, std::move(options));
  ASSERT_TRUE(sweep.Start().ok());
  redis::RewrapProgress done;
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<redis::RewrapProgress> p = sweep.Progress();
        if (p.ok()) done = *p;
        return p.ok() && p->state != "running";
      },
      absl::Seconds(60)));
  EXPECT_EQ(done.state, "done") << done.last_error;
  EXPECT_EQ(done.errors, 0u) << done.last_error;
  ASSERT_EQ(done.keys.count("k1"), 1u);
  // Per session: one attribute, the sealed user id, the metadata seal; per
  // opt-out: one.
  EXPECT_EQ(done.keys.at("k1").found, kSessions * 3u + kSessions);
  EXPECT_EQ(done.keys.at("k1").left, 0u);
  std::unique_ptr<RewrapNode> k2_only = make_node(k2);
  for (int i = 0; i < kSessions; ++i) {
    absl::StatusOr<session::Session> got = k2_only->sessions->Get(session::SessionKey::Id(ids[i]));
    ASSERT_TRUE(got.ok()) << "session " << i << ": " << got.status();
    EXPECT_EQ(got->attributes.at("theme"), "dark");
    EXPECT_TRUE(k2_only->opt_outs->Get(absl::StrCat("subject-", i)).value_or(false)) << i;
  }
}

RedisClient* ConformanceClient() { return SharedClusterClient(); }

// A fresh store: the shared cluster, a prefix of its own.
SessionStoreFactory ClusterStores() {
  return {"redis_cluster", []() -> std::unique_ptr<session::SessionStore> {
            RedisClient* client = ConformanceClient();
            if (client == nullptr) return nullptr;
            return std::make_unique<redis::RedisSessionStore>(client, UniquePrefix());
          }};
}

INSTANTIATE_TEST_SUITE_P(
    RedisCluster, SessionStoreConformanceTest,
    ::testing::Values(ClusterStores()),
    SessionStoreFactoryName);

INSTANTIATE_TEST_SUITE_P(
    RedisCluster, SessionRulesConformanceTest,
    ::testing::Values(ClusterStores()),
    SessionStoreFactoryName);

INSTANTIATE_TEST_SUITE_P(
    RedisCluster, OptOutStoreConformanceTest,
    ::testing::Values(OptOutStoreFactory{
        "redis_cluster",
        []() -> std::unique_ptr<OptOutStore> {
          RedisClient* client = ConformanceClient();
          if (client == nullptr) return nullptr;
          return std::make_unique<redis::RedisOptOutStore>(client, UniquePrefix());
        }}),
    OptOutStoreFactoryName);

// Every script of the request-id store names one key: one slot.
RequestStoreFactory ClusterRequests() {
  return {"redis_cluster", []() -> std::unique_ptr<session::RequestStore> {
            RedisClient* client = ConformanceClient();
            if (client == nullptr) return nullptr;
            return std::make_unique<redis::RedisRequestStore>(client, UniquePrefix());
          }};
}

INSTANTIATE_TEST_SUITE_P(RedisCluster, RequestStoreConformanceTest,
                         ::testing::Values(ClusterRequests()), RequestStoreFactoryName);
INSTANTIATE_TEST_SUITE_P(RedisCluster, RequestLedgerConformanceTest,
                         ::testing::Values(ClusterRequests()), RequestStoreFactoryName);

}  // namespace
}  // namespace stateside::testing

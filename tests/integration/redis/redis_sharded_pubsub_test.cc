// Realtime on a real Redis Cluster (3 masters, 1 replica each), through three
// RedisBrokers (instances, each with its own client): events travel as shard
// channels (SPUBLISH, SSUBSCRIBE on the master of the channel's slot, no
// classic pub/sub at all), so a room event reaches only the k instances with
// members, user, connection and broadcast targets reach theirs, presence and
// History work across slots; a slot moved to another master, and a SIGKILLed
// master holding an instance's channel, are each a Gap{since, until}, after
// which delivery resumes on the slot's new master. A channel subscribed on a
// master whose connection dropped while it held none is a loss too, restored
// once that connection is back.
//
// "Receives nothing" is counted: each broker's `messages` (channel messages
// its subscriber delivered) moves only by what it should get, read once what
// should arrive has and a connection-targeted marker published afterwards
// is in too; and Redis itself counts the subscribers of each channel
// (PUBSUB SHARDNUMSUB) and the receivers of each SPUBLISH.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/redis/cluster_slots.h"
#include "sidecar/redis/shard_subscriber.h"
#include "tests/integration/redis/broker_node.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using broker_test::Node;
using broker_test::RoomEvent;
using broker_test::Targeted;
using realtime::TargetKind;

class ShardedPubSubTest : public broker_test::BrokerTest {
 protected:
  // One cluster for the suite (each test has its own prefix and instance
  // ids); the failover test, which leaves a shard without a replica, last.
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<RedisCluster>> cluster = RedisCluster::Start();
    if (!cluster.ok()) std::cerr << "redis cluster: " << cluster.status() << "\n";
    if (cluster.ok()) shared_ = cluster->release();
  }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(shared_, nullptr);
    cluster_ = shared_;
    BrokerTest::SetUp();
  }

  std::unique_ptr<Node> Start(const std::string& id) {
    redis::RedisOptions options = FastRedisOptions();
    options.topology = redis::RedisTopology::kCluster;
    return StartOn(cluster_->url(), Options(id), options);
  }

  // The shard channels' names (docs/REDIS_KEYS.md).
  std::string InstanceChannel(const std::string& id) const {
    return absl::StrCat(prefix_, "rt:{i:", id, "}:c");
  }
  std::string RoomChannel(const std::string& room) const {
    return absl::StrCat(prefix_, "rt:{r:", crypto::Keyring::Blind(keyring_->primary(), "room", room),
                        "}:c");
  }

  // Instance ids "<base>N" whose channels live on pairwise different masters.
  std::vector<std::string> IdsOnDistinctMasters(const std::string& base, size_t count) {
    std::vector<std::string> ids;
    std::vector<int> masters;
    for (int i = 0; ids.size() < count && i < 1000; ++i) {
      const std::string id = absl::StrCat(base, i);
      const int master = cluster_->MasterOfSlot(redis::KeySlot(InstanceChannel(id)));
      if (master == 0 || std::find(masters.begin(), masters.end(), master) != masters.end()) {
        continue;
      }
      masters.push_back(master);
      ids.push_back(id);
    }
    return ids;
  }

  // PUBSUB SHARDNUMSUB / NUMSUB of `channel` as the node on `port` counts it.
  int Subscribers(int port, const char* what, const std::string& channel) {
    RunResult r = cluster_->Cli(port, {"PUBSUB", what, channel});
    std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
    int n = -1;
    if (lines.size() != 2 || !absl::SimpleAtoi(lines[1], &n)) {
      ADD_FAILURE() << "PUBSUB " << what << " on " << port << ": " << r.out << r.err;
    }
    return n;
  }

  // Waits until each of `nodes` received `payload`.
  static void Arrived(const std::vector<Node*>& nodes, const std::string& payload) {
    for (Node* n : nodes) {
      ASSERT_TRUE(WaitFor([&] { return n->sink->Got(payload); }, absl::Seconds(20)))
          << n->id << " missed " << payload;
    }
  }

  // Publishes a connection-targeted marker to each node and waits for all:
  // whatever was published before on a node's instance channel is in by
  // then. (Channels on different shards are not ordered with each other:
  // callers first wait for what should arrive on the others.)
  void Markers(const std::vector<Node*>& nodes, const std::string& payload) {
    for (Node* n : nodes) {
      ASSERT_TRUE(nodes[0]->Publish(Targeted(TargetKind::kConnection, "x", payload, n->id)).ok());
    }
    Arrived(nodes, payload);
  }

  static std::vector<uint64_t> Counts(const std::vector<Node*>& nodes) {
    std::vector<uint64_t> out;
    for (Node* n : nodes) out.push_back(n->broker->stats().messages);
    return out;
  }

  static RedisCluster* shared_;
  RedisCluster* cluster_ = nullptr;
};

RedisCluster* ShardedPubSubTest::shared_ = nullptr;

TEST_F(ShardedPubSubTest, EveryTargetReachesOnlyItsInstancesThroughTheirShards) {
  const std::vector<std::string> ids = IdsOnDistinctMasters("pod-", 3);
  ASSERT_EQ(ids.size(), 3u);
  std::unique_ptr<Node> a = Start(ids[0]), b = Start(ids[1]), c = Start(ids[2]);
  ASSERT_TRUE(a && b && c);
  const std::vector<Node*> all = {a.get(), b.get(), c.get()};

  // Each instance channel is a shard channel, held on its slot's master and
  // nowhere else; nothing is subscribed the classic way.
  for (const std::string& id : ids) {
    const std::string channel = InstanceChannel(id);
    const int owner = cluster_->MasterOfSlot(redis::KeySlot(channel));
    for (int port : cluster_->MasterPorts()) {
      EXPECT_EQ(Subscribers(port, "SHARDNUMSUB", channel), port == owner ? 1 : 0) << id << port;
      EXPECT_EQ(Subscribers(port, "NUMSUB", channel), 0) << id << port;
    }
  }

  // Room: members on a and c (k = 2 of N = 3).
  ASSERT_TRUE(a->Add({"a1", "alice", {"lobby"}}).ok());
  ASSERT_TRUE(c->Add({"c1", "alice", {"lobby"}}).ok());
  ASSERT_TRUE(b->Add({"b1", "bob", {}}).ok());
  ASSERT_TRUE(a->Watch("lobby").ok());
  ASSERT_TRUE(c->Watch("lobby").ok());
  const std::string lobby = RoomChannel("lobby");
  EXPECT_EQ(Subscribers(cluster_->MasterOfSlot(redis::KeySlot(lobby)), "SHARDNUMSUB", lobby), 2);

  std::vector<uint64_t> before = Counts(all);
  absl::StatusOr<realtime::PublishResult> sent = b->Publish(RoomEvent("lobby", "room-1"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->instances, 2) << "SPUBLISH reached the two subscribed instances";
  EXPECT_EQ(sent->sequence, 1u);
  ASSERT_TRUE(b->Publish(RoomEvent("lobby", "room-2")).ok());
  ASSERT_NO_FATAL_FAILURE(Arrived({a.get(), c.get()}, "room-2"));
  ASSERT_NO_FATAL_FAILURE(Markers(all, "mark-room"));
  std::vector<uint64_t> after = Counts(all);
  EXPECT_EQ(after[0] - before[0], 3u) << "a: two room events and its marker";
  EXPECT_EQ(after[1] - before[1], 1u) << "b: its marker only";
  EXPECT_EQ(after[2] - before[2], 3u) << "c: two room events and its marker";
  for (Node* n : {a.get(), c.get()}) {
    std::vector<realtime::Event> got = n->sink->events(TargetKind::kRoom);
    ASSERT_EQ(got.size(), 2u) << n->id;
    EXPECT_EQ(got[0].payload, "room-1");
    EXPECT_EQ(got[0].sequence, 1u);
    EXPECT_EQ(got[1].sequence, 2u);
  }
  EXPECT_TRUE(b->sink->events(TargetKind::kRoom).empty());

  // User: alice on a and c.
  before = Counts(all);
  sent = b->Publish(Targeted(TargetKind::kUser, "alice", "to-alice"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->instances, 2);
  // Connection: b1 on b, from a.
  ASSERT_TRUE(a->Publish(Targeted(TargetKind::kConnection, "b1", "to-b1", b->id)).ok());
  ASSERT_NO_FATAL_FAILURE(Arrived({a.get(), c.get()}, "to-alice"));
  ASSERT_NO_FATAL_FAILURE(Arrived({b.get()}, "to-b1"));
  ASSERT_NO_FATAL_FAILURE(Markers(all, "mark-targets"));
  after = Counts(all);
  EXPECT_EQ(after[0] - before[0], 2u) << "a: the user event and its marker";
  EXPECT_EQ(after[1] - before[1], 2u) << "b: the connection event and its marker";
  EXPECT_EQ(after[2] - before[2], 2u) << "c: the user event and its marker";
  EXPECT_TRUE(a->sink->Got("to-alice") && c->sink->Got("to-alice"));
  EXPECT_FALSE(b->sink->Got("to-alice"));
  EXPECT_TRUE(b->sink->Got("to-b1"));
  EXPECT_FALSE(a->sink->Got("to-b1") || c->sink->Got("to-b1"));

  // Broadcast: a and b listen, c does not.
  ASSERT_TRUE(a->Broadcast(true).ok());
  ASSERT_TRUE(b->Broadcast(true).ok());
  const std::string broadcast = absl::StrCat(prefix_, "rt:{all}:c");
  EXPECT_EQ(
      Subscribers(cluster_->MasterOfSlot(redis::KeySlot(broadcast)), "SHARDNUMSUB", broadcast), 2);
  before = Counts(all);
  sent = c->Publish(Targeted(TargetKind::kAll, "", "to-all"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->instances, 2);
  ASSERT_NO_FATAL_FAILURE(Arrived({a.get(), b.get()}, "to-all"));
  ASSERT_NO_FATAL_FAILURE(Markers(all, "mark-all"));
  after = Counts(all);
  EXPECT_EQ(after[0] - before[0], 2u);
  EXPECT_EQ(after[1] - before[1], 2u);
  EXPECT_EQ(after[2] - before[2], 1u) << "c: its marker only";
  EXPECT_FALSE(c->sink->Got("to-all"));

  // Presence (room, user: hashes in their own slots) and History.
  const std::vector<std::string> members = {absl::StrCat(ids[0], "/a1"),
                                            absl::StrCat(ids[2], "/c1")};
  std::vector<std::string> want = members;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(b->MemberFields("lobby"), want);
  EXPECT_EQ(b->UserFields("alice"), want);
  absl::StatusOr<realtime::HistoryPage> history = b->History("lobby", 0);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->events.size(), 2u);
  EXPECT_EQ(history->events[0].payload, "room-1");
  EXPECT_EQ(history->events[1].sequence, 2u);

  // Unwatching drops the room's shard subscription.
  a->broker->UnwatchRoom("lobby");
  EXPECT_TRUE(WaitFor([&] {
    return Subscribers(cluster_->MasterOfSlot(redis::KeySlot(lobby)), "SHARDNUMSUB", lobby) == 1;
  }));
  for (Node* n : all) EXPECT_EQ(n->sink->gaps().size(), 1u) << n->id << ": no loss";
}

// A slot moved to another master (CLUSTER SETSLOT ... NODE, the last step of
// a resharding): the old owner unsubscribes the slot's shard channels
// itself (`sunsubscribe`); the subscriber reports a gap, finds the new owner
// and subscribes there, and the room's events flow again.
TEST_F(ShardedPubSubTest, AMigratedSlotIsAGapAndTheChannelFollowsIt) {
  const std::vector<std::string> ids = IdsOnDistinctMasters("mv-", 2);
  ASSERT_EQ(ids.size(), 2u);
  std::unique_ptr<Node> a = Start(ids[0]), b = Start(ids[1]);
  ASSERT_TRUE(a && b);
  // No key of the room exists yet, so its slot moves without MIGRATE.
  const std::string channel = RoomChannel("moving");
  const int slot = redis::KeySlot(channel);
  const int from = cluster_->MasterOfSlot(slot);
  int to = 0;
  for (int port : cluster_->MasterPorts()) {
    if (port != from) to = port;
  }
  ASSERT_NE(from, 0);
  ASSERT_NE(to, 0);
  ASSERT_TRUE(a->Watch("moving").ok());
  ASSERT_EQ(Subscribers(from, "SHARDNUMSUB", channel), 1);

  const std::string s = std::to_string(slot);
  ASSERT_EQ(cluster_->Cli(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", cluster_->NodeId(from)}).out,
            "OK\n");
  ASSERT_EQ(cluster_->Cli(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", cluster_->NodeId(to)}).out,
            "OK\n");
  for (int port : {to, from}) {
    ASSERT_EQ(cluster_->Cli(port, {"CLUSTER", "SETSLOT", s, "NODE", cluster_->NodeId(to)}).out,
              "OK\n");
  }
  for (int port : cluster_->MasterPorts()) {
    if (port != to && port != from) {
      cluster_->Cli(port, {"CLUSTER", "SETSLOT", s, "NODE", cluster_->NodeId(to)});
    }
  }

  ASSERT_TRUE(WaitFor([&] { return a->sink->gaps().size() == 2; }, absl::Seconds(30)))
      << "no gap after the slot moved";
  EXPECT_TRUE(WaitFor([&] { return Subscribers(to, "SHARDNUMSUB", channel) == 1; }));
  EXPECT_EQ(Subscribers(from, "SHARDNUMSUB", channel), 0);
  int n = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string payload = absl::StrCat("moved-", n++);
        if (!b->Publish(RoomEvent("moving", payload)).ok()) return false;
        return WaitFor([&] { return a->sink->Got(payload); }, absl::Seconds(2));
      },
      absl::Seconds(30), absl::Milliseconds(100)));
  EXPECT_EQ(b->sink->gaps().size(), 1u) << "b held nothing in that slot";
}

// The master holding an instance's channel is SIGKILLed; its replica is
// promoted (cluster-node-timeout 1 s).
// A shard connection holding no channel loses nothing when it drops (no
// on_down); a channel subscribed while it is down is lost from then on:
// Subscribe answers UNAVAILABLE, the subscriber is down at once, and
// on_restored follows once the connection is back with the channel (a
// caller relying on it, as the session change relay does, would otherwise
// never see its subscription confirmed).
TEST_F(ShardedPubSubTest, AChannelWantedWhereTheConnectionIsDownIsRestoredOnceItIsBack) {
  redis::RedisOptions options = FastRedisOptions();
  options.topology = redis::RedisTopology::kCluster;
  // The dropped connection waits a second or more before reconnecting.
  options.backoff_initial = absl::Seconds(2);
  options.backoff_max = absl::Seconds(2);
  std::unique_ptr<redis::RedisClient> client = ConnectedClient(cluster_->url(), options);
  ASSERT_NE(client, nullptr);
  std::atomic<int> downs{0}, restores{0};
  redis::RedisSubscriber::Callbacks callbacks;
  callbacks.on_down = [&](absl::Time) { downs.fetch_add(1); };
  callbacks.on_restored = [&](absl::Time, absl::Time) { restores.fetch_add(1); };
  auto sub = redis::ShardedSubscriber::Create(client.get(), std::move(callbacks));
  ASSERT_TRUE(sub.ok()) << sub.status();
  const std::string channel = absl::StrCat(prefix_, "idle");
  const int master = cluster_->MasterOfSlot(redis::KeySlot(channel));
  ASSERT_NE(master, 0);
  // The slot map known and the master's connection open: the channel was
  // held there once.
  (*sub)->Subscribe({channel}, nullptr);
  ASSERT_TRUE(WaitFor([&] { return restores.load() == 1 && (*sub)->connected(); },
                      absl::Seconds(20)));
  (*sub)->Unsubscribe({channel});
  ASSERT_TRUE(WaitFor([&] { return Subscribers(master, "SHARDNUMSUB", channel) == 0; },
                      absl::Seconds(10)));

  struct Answer {
    std::atomic<bool> answered{false};
    absl::Status status;
  };
  bool down_at_once = false;
  int before = 0;  // the losses reported before the round
  // The connection may not have read its end yet when Subscribe comes: the
  // SSUBSCRIBE goes out on it and fails (a loss of a held channel, as
  // before), and the next round drops it again.
  for (int round = 0; round < 5 && !down_at_once; ++round) {
    // The first on_restored (from the start) had no on_down before it.
    before = restores.load();
    ASSERT_EQ(downs.load() + 1, before);
    cluster_->Cli(master, {"CLIENT", "KILL", "TYPE", "normal"});
    cluster_->Cli(master, {"CLIENT", "KILL", "TYPE", "pubsub"});
    auto answer = std::make_shared<Answer>();
    (*sub)->Subscribe({channel}, [answer](absl::Status status) {
      answer->status = std::move(status);
      answer->answered.store(true);
    });
    if (answer->answered.load() && absl::IsUnavailable(answer->status)) {
      down_at_once = true;
      EXPECT_FALSE((*sub)->connected()) << "down from the Subscribe on";
      break;
    }
    ASSERT_TRUE(WaitFor([&] { return answer->answered.load(); }, absl::Seconds(10)));
    (*sub)->Unsubscribe({channel});
    ASSERT_TRUE(WaitFor([&] { return (*sub)->connected() && downs.load() + 1 == restores.load(); },
                        absl::Seconds(20)));
  }
  ASSERT_TRUE(down_at_once) << "no Subscribe met the connection down";
  EXPECT_TRUE(WaitFor([&] { return restores.load() == before + 1 && (*sub)->connected(); },
                      absl::Seconds(20)))
      << "no on_restored after the UNAVAILABLE answer";
  EXPECT_EQ(downs.load(), before);
  EXPECT_EQ(Subscribers(master, "SHARDNUMSUB", channel), 1);
}

TEST_F(ShardedPubSubTest, AShardFailoverIsAGapAndDeliveryResumesOnThePromotedReplica) {
  const std::vector<std::string> ids = IdsOnDistinctMasters("fo-", 2);
  ASSERT_EQ(ids.size(), 2u);
  std::unique_ptr<Node> a = Start(ids[0]), b = Start(ids[1]);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Add({"a1", "alice", {"lobby"}}).ok());
  ASSERT_TRUE(a->Watch("lobby").ok());
  ASSERT_TRUE(b->Publish(Targeted(TargetKind::kConnection, "a1", "before", a->id)).ok());
  ASSERT_TRUE(WaitFor([&] { return a->sink->Got("before"); }));

  // SIGKILL the master of a's instance channel; its replica takes over.
  const int master = cluster_->MasterOfSlot(redis::KeySlot(InstanceChannel(a->id)));
  ASSERT_NE(master, 0);
  const std::vector<int> replicas = cluster_->ReplicasOf(master);
  ASSERT_EQ(replicas.size(), 1u);
  const absl::Time killed_at = absl::Now();
  cluster_->Kill(master);

  // The loss is reported as it happens: down, then once every channel is
  // confirmed on the new master, one gap covering the kill.
  ASSERT_TRUE(WaitFor([&] { return a->sink->gaps().size() == 2; }, absl::Seconds(45)))
      << "no gap after the failover\n" << cluster_->logs();
  const auto [since, until] = a->sink->gaps()[1];
  EXPECT_LE(since, until);
  EXPECT_GE(until, killed_at);
  EXPECT_LE(since - killed_at, absl::Seconds(10)) << "the gap opens at the loss";
  EXPECT_TRUE(WaitFor([&] {
    return cluster_->MasterOfSlot(redis::KeySlot(InstanceChannel(a->id))) == replicas[0];
  })) << "the replica took the slot over";
  const std::vector<std::string> log = a->sink->log();
  ASSERT_GE(log.size(), 4u);
  EXPECT_EQ(log[log.size() - 2], "gap");
  EXPECT_EQ(log.back(), "lost") << "presence is written again after a gap";

  // Delivery resumes: to a's connection (its channel now on the promoted
  // replica) and to its room. b's client may still be catching up with the
  // new map, so a publish that fails is tried again.
  int n = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string payload = absl::StrCat("after-", n++);
        if (!b->Publish(Targeted(TargetKind::kConnection, "a1", payload, a->id)).ok()) return false;
        return WaitFor([&] { return a->sink->Got(payload); }, absl::Seconds(2));
      },
      absl::Seconds(30), absl::Milliseconds(100)));
  ASSERT_TRUE(b->Publish(RoomEvent("lobby", "room-after")).ok());
  EXPECT_TRUE(WaitFor([&] { return a->sink->Got("room-after"); }));
  // b, whose own shard did not move, saw no loss.
  EXPECT_EQ(b->sink->gaps().size(), 1u);
}

}  // namespace
}  // namespace stateside::testing

// Redis Cluster addressing: CRC16 and key slots against the specification's
// vectors, routing keys, redirect parsing and slot-map replies.
#include "sidecar/redis/cluster_slots.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace stateside::redis {
namespace {

Reply Str(std::string s) { return Reply::String(std::move(s)); }
Reply Int(int64_t v) { return Reply::Integer(v); }

TEST(ClusterSlotsTest, Crc16MatchesTheSpecificationVector) {
  EXPECT_EQ(Crc16("123456789"), 0x31C3);
  EXPECT_EQ(Crc16(""), 0);
}

TEST(ClusterSlotsTest, KeySlotKnownValues) {
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("bar"), 5061);
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 % 16384);
}

TEST(ClusterSlotsTest, HashTagsFollowTheSpecification) {
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  // Only the first {...} counts; an empty tag hashes the whole key.
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), static_cast<int>(Crc16("foo{}{bar}") % 16384));
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("foo{bar"), static_cast<int>(Crc16("foo{bar") % 16384));
}

TEST(ClusterSlotsTest, CommandKeyPicksTheRoutingKey) {
  EXPECT_EQ(CommandKey({"GET", "k"}), "k");
  EXPECT_EQ(CommandKey({"hgetall", "h"}), "h");
  EXPECT_EQ(CommandKey({"EVALSHA", "abc", "2", "k1", "k2", "arg"}), "k1");
  EXPECT_EQ(CommandKey({"EVALSHA", "abc", "0", "arg"}), std::nullopt);
  EXPECT_EQ(CommandKey({"EVALSHA", "abc", "x", "arg"}), std::nullopt);
  EXPECT_EQ(CommandKey({"PING"}), std::nullopt);
  EXPECT_EQ(CommandKey({"SCRIPT", "LOAD", "return 1"}), std::nullopt);
  EXPECT_EQ(CommandKey({"PUBLISH", "chan", "msg"}), std::nullopt);
  EXPECT_EQ(CommandKey({"SCAN", "0", "MATCH", "x*"}), std::nullopt);
  EXPECT_EQ(CommandKey({"DBSIZE"}), std::nullopt);
}

TEST(ClusterSlotsTest, ParsesRedirects) {
  std::optional<Redirect> moved = ParseRedirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved.has_value());
  EXPECT_FALSE(moved->ask);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->host, "127.0.0.1");
  EXPECT_EQ(moved->port, 6381);
  std::optional<Redirect> ask = ParseRedirect("ASK 12182 [::1]:7001");
  ASSERT_TRUE(ask.has_value());
  EXPECT_TRUE(ask->ask);
  EXPECT_EQ(ask->host, "::1");
  std::optional<Redirect> unknown_host = ParseRedirect("MOVED 1 :7002");
  ASSERT_TRUE(unknown_host.has_value());
  EXPECT_EQ(unknown_host->host, "");
  EXPECT_FALSE(ParseRedirect("MOVED 16384 h:1").has_value());
  EXPECT_FALSE(ParseRedirect("MOVED x h:1").has_value());
  EXPECT_FALSE(ParseRedirect("ERR wrong").has_value());
  EXPECT_FALSE(ParseRedirect("ASKING").has_value());
}

Reply ShardNode(std::string ip, int port, std::string role, std::string health = "online") {
  return Reply::Array({Str("id"), Str("abc"), Str("port"), Int(port), Str("ip"), Str(ip),
                       Str("endpoint"), Str(ip), Str("role"), Str(role),
                       Str("replication-offset"), Int(1), Str("health"), Str(health)});
}

TEST(ClusterSlotsTest, ParsesClusterShards) {
  Reply shards = Reply::Array({
      Reply::Array({Str("slots"), Reply::Array({Int(0), Int(5460), Int(10923), Int(10923)}),
                    Str("nodes"),
                    Reply::Array({ShardNode("127.0.0.1", 7001, "replica"),
                                  ShardNode("127.0.0.1", 7000, "master")})}),
      Reply::Array({Str("slots"), Reply::Array({Int(5461), Int(10922), Int(10924), Int(16383)}),
                    Str("nodes"), Reply::Array({ShardNode("127.0.0.1", 7002, "master", "failed")})}),
  });
  absl::StatusOr<ClusterMap> map = ParseClusterShards(shards, false);
  ASSERT_TRUE(map.ok()) << map.status();
  ASSERT_EQ(map->nodes.size(), 3u);
  const ClusterMap::Node& m0 = map->nodes[map->slot_owner[0]];
  EXPECT_EQ(m0.address(), "127.0.0.1:7000");
  EXPECT_TRUE(m0.master);
  EXPECT_EQ(m0.slots, 5462);
  EXPECT_EQ(map->nodes[map->slot_owner[10923]].port, 7000);
  EXPECT_EQ(map->nodes[map->slot_owner[16383]].port, 7002);
  EXPECT_FALSE(map->nodes[map->slot_owner[16383]].healthy);
  EXPECT_FALSE(map->nodes[0].master);
}

TEST(ClusterSlotsTest, RefusesMalformedShards) {
  EXPECT_FALSE(ParseClusterShards(Str("x"), false).ok());
  EXPECT_FALSE(ParseClusterShards(Reply::Array({Reply::Array({Str("slots")})}), false).ok());
  Reply bad_range = Reply::Array({Reply::Array(
      {Str("slots"), Reply::Array({Int(10), Int(20000)}), Str("nodes"),
       Reply::Array({ShardNode("127.0.0.1", 7000, "master")})})});
  EXPECT_FALSE(ParseClusterShards(bad_range, false).ok());
}

TEST(ClusterSlotsTest, TlsTakesTheTlsPortsAndRefusesNodesWithoutAny) {
  auto with_tls = [](int port, int tls_port) {
    Reply node = ShardNode("127.0.0.1", port, "master");
    node.elements.push_back(Str("tls-port"));
    node.elements.push_back(Int(tls_port));
    return node;
  };
  auto shards = [](Reply node) {
    return Reply::Array({Reply::Array({Str("slots"), Reply::Array({Int(0), Int(16383)}),
                                       Str("nodes"), Reply::Array({std::move(node)})})});
  };
  absl::StatusOr<ClusterMap> map = ParseClusterShards(shards(with_tls(7000, 8000)), true);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->nodes[map->slot_owner[0]].port, 8000);
  // tls-cluster off: plain ports alone, never used by a TLS client.
  absl::StatusOr<ClusterMap> plain =
      ParseClusterShards(shards(ShardNode("127.0.0.1", 7000, "master")), true);
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(plain.status().message(), "tls-cluster yes")) << plain.status();
  EXPECT_TRUE(ParseClusterShards(shards(ShardNode("127.0.0.1", 7000, "master")), false).ok());
}

TEST(ClusterSlotsTest, ParsesClusterSlots) {
  Reply slots = Reply::Array({
      Reply::Array({Int(0), Int(8191), Reply::Array({Str("127.0.0.1"), Int(7000), Str("id0")}),
                    Reply::Array({Str("127.0.0.1"), Int(7003), Str("id3")})}),
      Reply::Array({Int(8192), Int(16383),
                    Reply::Array({Str("127.0.0.1"), Int(7001), Str("id1")})}),
  });
  absl::StatusOr<ClusterMap> map = ParseClusterSlots(slots);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->nodes[map->slot_owner[0]].port, 7000);
  EXPECT_EQ(map->nodes[map->slot_owner[16383]].port, 7001);
  EXPECT_EQ(map->nodes.size(), 3u);
}

}  // namespace
}  // namespace stateside::redis

// REDIS_URL parsing, the redacted description and the backoff formula.
#include <string>

#include "gtest/gtest.h"
#include "sidecar/redis/redis_options.h"

namespace stateside::redis {
namespace {

RedisOptions MustParse(const std::string& url) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl(url);
  EXPECT_TRUE(o.ok()) << url << ": " << o.status();
  return o.value_or(RedisOptions());
}

TEST(RedisUrlTest, PlainHostTakesDefaults) {
  RedisOptions o = MustParse("redis://cache.internal");
  EXPECT_EQ(o.host, "cache.internal");
  EXPECT_EQ(o.port, 6379);
  EXPECT_EQ(o.db, 0);
  EXPECT_TRUE(o.password.empty());
  EXPECT_TRUE(o.username.empty());
  EXPECT_FALSE(o.tls.enabled);
  EXPECT_TRUE(o.unix_path.empty());
}

TEST(RedisUrlTest, PortAndDatabase) {
  RedisOptions o = MustParse("redis://127.0.0.1:7001/5");
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 7001);
  EXPECT_EQ(o.db, 5);
  EXPECT_EQ(MustParse("redis://h:1/").db, 0);
  EXPECT_EQ(MustParse("redis://h:1?db=4").db, 4);
}

TEST(RedisUrlTest, AclUserAndPercentEncodedPassword) {
  RedisOptions o = MustParse("redis://alice:p%40ss%3Aw0rd@h:6380/1");
  EXPECT_EQ(o.username, "alice");
  EXPECT_EQ(o.password, "p@ss:w0rd");
  EXPECT_EQ(o.port, 6380);
}

TEST(RedisUrlTest, PasswordWithoutUser) {
  RedisOptions o = MustParse("redis://:secret@h");
  EXPECT_EQ(o.username, "");
  EXPECT_EQ(o.password, "secret");
}

TEST(RedisUrlTest, RedissEnablesTlsAndNamesTheServer) {
  RedisOptions base;
  base.tls.ca_file = "/etc/ca.pem";
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("rediss://redis.example.com:6380", base);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->tls.enabled);
  EXPECT_EQ(o->tls.server_name, "redis.example.com");
  EXPECT_EQ(o->tls.ca_file, "/etc/ca.pem") << "options outside the URL are kept";
}

TEST(RedisUrlTest, ExplicitServerNameWinsOverHost) {
  RedisOptions base;
  base.tls.server_name = "other.example";
  EXPECT_EQ(ParseRedisUrl("rediss://10.0.0.1", base)->tls.server_name, "other.example");
}

TEST(RedisUrlTest, Ipv6Host) {
  RedisOptions o = MustParse("redis://[::1]:7000/2");
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 7000);
  EXPECT_EQ(o.db, 2);
  EXPECT_EQ(o.Describe(), "redis://[::1]:7000/2");
}

TEST(RedisUrlTest, UnixSocketWithDatabaseAndCredentials) {
  RedisOptions o = MustParse("unix:///run/redis/redis.sock?db=3");
  EXPECT_EQ(o.unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(o.db, 3);
  RedisOptions c = MustParse("unix://bob:pw@/run/redis.sock");
  EXPECT_EQ(c.unix_path, "/run/redis.sock");
  EXPECT_EQ(c.username, "bob");
  EXPECT_EQ(c.password, "pw");
}

TEST(RedisUrlTest, SchemeIsCaseInsensitive) {
  EXPECT_TRUE(MustParse("REDISS://h").tls.enabled);
}

struct BadUrl {
  const char* url;
  const char* mentions;  // part of the message
};

class RedisBadUrlTest : public ::testing::TestWithParam<BadUrl> {};

TEST_P(RedisBadUrlTest, IsInvalidArgumentNamingTheProblemWithoutThePassword) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl(GetParam().url);
  ASSERT_FALSE(o.ok()) << GetParam().url;
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(o.status().message().find(GetParam().mentions), absl::string_view::npos)
      << o.status();
  EXPECT_EQ(o.status().message().find("hunter2"), absl::string_view::npos) << o.status();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RedisBadUrlTest,
    ::testing::Values(BadUrl{"localhost:6379", "missing scheme"},
                      BadUrl{"http://:hunter2@h", "unsupported scheme \"http\""},
                      BadUrl{"redis://:hunter2@h:99999", "bad port \"99999\""},
                      BadUrl{"redis://:hunter2@h:0", "bad port"},
                      BadUrl{"redis://:hunter2@h:abc", "bad port \"abc\""},
                      BadUrl{"redis://:hunter2@h:", "empty port"},
                      BadUrl{"redis://:hunter2@h/x", "bad database number \"x\""},
                      BadUrl{"redis://:hunter2@h/-1", "bad database number"},
                      BadUrl{"redis://:hunter2@", "missing host"},
                      BadUrl{"redis://", "missing host"},
                      BadUrl{"redis://hunter2@h", "user:password"},
                      BadUrl{"redis://u:hunter2%zz@h", "percent-escape in the password"},
                      BadUrl{"redis://u:hunter2%4@h", "percent-escape in the password"},
                      BadUrl{"redis://u:@h", "empty password"},
                      BadUrl{"redis://:hunter2@[::1", "IPv6"},
                      BadUrl{"redis://:hunter2@h?timeout=3", "unsupported query parameter \"timeout\""},
                      BadUrl{"redis://:hunter2@h/1?db=2", "database given twice"},
                      BadUrl{"unix://relative/path", "absolute"},
                      BadUrl{"unix://", "absolute"},
                      BadUrl{"unix:///tmp/r.sock?db=x", "bad database number"}));

TEST(RedisUrlTest, DescribeNeverShowsThePassword) {
  EXPECT_EQ(MustParse("redis://alice:hunter2@h:1/2").Describe(), "redis://alice:***@h:1/2");
  EXPECT_EQ(MustParse("rediss://:hunter2@h").Describe(), "rediss://:***@h:6379/0");
  EXPECT_EQ(MustParse("unix://:hunter2@/s.sock?db=1").Describe(), "unix://:***@/s.sock?db=1");
  EXPECT_EQ(MustParse("unix:///s.sock").Describe(), "unix:///s.sock");
}

TEST(RedisBackoffTest, DoublesFromTheInitialDelayUpToTheCap) {
  const absl::Duration initial = absl::Milliseconds(100), cap = absl::Seconds(2);
  // Jitter 1.0 (its supremum) shows the undisturbed curve.
  EXPECT_EQ(BackoffDelay(0, initial, cap, 1.0), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(1, initial, cap, 1.0), absl::Milliseconds(200));
  EXPECT_EQ(BackoffDelay(3, initial, cap, 1.0), absl::Milliseconds(800));
  EXPECT_EQ(BackoffDelay(5, initial, cap, 1.0), cap);
  EXPECT_EQ(BackoffDelay(1000, initial, cap, 1.0), cap);
}

RedisOptions WithTopology(RedisTopology topology) {
  RedisOptions base;
  base.topology = topology;
  return base;
}

TEST(RedisUrlTest, ClusterSeedsAreANodeList) {
  auto o = ParseRedisUrl("redis://app:s3cret@10.0.0.1:7000,10.0.0.2,[::1]:7002",
                         WithTopology(RedisTopology::kCluster));
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->nodes.size(), 3u);
  EXPECT_EQ(o->nodes[0], (RedisNode{"10.0.0.1", 7000}));
  EXPECT_EQ(o->nodes[1], (RedisNode{"10.0.0.2", 6379}));
  EXPECT_EQ(o->nodes[2], (RedisNode{"::1", 7002}));
  EXPECT_EQ(o->host, "10.0.0.1");
  EXPECT_EQ(o->port, 7000);
  EXPECT_EQ(o->username, "app");
  EXPECT_EQ(o->Describe(), "redis://app:***@10.0.0.1:7000,10.0.0.2:6379,[::1]:7002/0 (cluster)");
  // One seed is a list of one.
  auto one = ParseRedisUrl("rediss://h:7000", WithTopology(RedisTopology::kCluster));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->nodes.size(), 1u);
  EXPECT_TRUE(one->tls.enabled);
  // Each node's certificate is checked against that node's own name.
  EXPECT_EQ(one->tls.server_name, "");
  RedisOptions named = WithTopology(RedisTopology::kSentinel);
  named.tls.server_name = "redis.internal";
  EXPECT_EQ(ParseRedisUrl("rediss://s1,s2", named)->tls.server_name, "redis.internal");
}

TEST(RedisUrlTest, SentinelsAreANodeList) {
  RedisOptions base = WithTopology(RedisTopology::kSentinel);
  base.sentinel_master = "mymaster";
  auto o = ParseRedisUrl("redis://s1:26379,s2:26380/2", base);
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->nodes.size(), 2u);
  EXPECT_EQ(o->db, 2);
  EXPECT_EQ(o->Describe(), "redis://s1:26379,s2:26380/2 (sentinel, master mymaster)");
}

TEST(RedisUrlTest, NodeListsAreRefusedWhereTheyCannotWork) {
  auto standalone = ParseRedisUrl("redis://h1:1,h2:2");
  ASSERT_FALSE(standalone.ok());
  EXPECT_NE(standalone.status().message().find("STATESIDE_REDIS_TOPOLOGY"), std::string::npos);
  for (const char* url : {"redis://h1:1,,h2:2", "redis://,h1:1", "redis://h1:1,"}) {
    auto o = ParseRedisUrl(url, WithTopology(RedisTopology::kCluster));
    ASSERT_FALSE(o.ok()) << url;
    EXPECT_NE(o.status().message().find("empty node"), std::string::npos) << o.status();
  }
  EXPECT_FALSE(ParseRedisUrl("redis://h1:1,h2:99999", WithTopology(RedisTopology::kCluster)).ok());
  auto db = ParseRedisUrl("redis://h1:1,h2:2/3", WithTopology(RedisTopology::kCluster));
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("only database 0"), std::string::npos);
  auto unix_cluster = ParseRedisUrl("unix:///r.sock", WithTopology(RedisTopology::kCluster));
  ASSERT_FALSE(unix_cluster.ok());
  EXPECT_NE(unix_cluster.status().message().find("node list"), std::string::npos);
}

TEST(RedisBackoffTest, JitterScalesIntoTheUpperHalf) {
  const absl::Duration initial = absl::Milliseconds(100), cap = absl::Seconds(2);
  EXPECT_EQ(BackoffDelay(2, initial, cap, 0.0), absl::Milliseconds(200));
  EXPECT_EQ(BackoffDelay(2, initial, cap, 0.5), absl::Milliseconds(300));
  EXPECT_LT(BackoffDelay(9, initial, cap, 0.999), cap);
  EXPECT_GE(BackoffDelay(9, initial, cap, 0.0), cap / 2);
  // Out-of-range jitter is clamped, never negative or above the cap.
  EXPECT_EQ(BackoffDelay(9, initial, cap, -3.0), cap / 2);
  EXPECT_EQ(BackoffDelay(9, initial, cap, 7.0), cap);
}

}  // namespace
}  // namespace stateside::redis

// Redis Cluster over TLS with an ACL user: six nodes whose certificates one
// CA signed, tls-cluster and tls-replication on, so every address the
// cluster announces is a TLS port. With the right CA and credentials the
// client learns the map and reaches every master over TLS only, sessions
// and sharded pub/sub work; a wrong password is UNAVAILABLE naming the
// refused AUTH; a CA that did not sign the nodes is a certificate
// verification error, never a plaintext connection.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/redis/redis_client.h"
#include "tests/integration/redis/broker_node.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/integration/redis/tls_topology.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using redis::RedisTopology;
using tls_topology::kPassword;
using tls_topology::kUser;

class RedisClusterTlsTest : public broker_test::BrokerTest {
 protected:
  // One PKI and one cluster for the suite: no test changes the cluster.
  static void SetUpTestSuite() {
    pki_ = tls_topology::Pki::Create();
    if (pki_ == nullptr) return;
    RedisClusterOptions options;
    options.requirepass = "admin-secret";  // the default user: the tests' redis-cli
    cluster_ = tls_topology::StartWithTls<RedisCluster>(*pki_, std::move(options));
  }
  static void TearDownTestSuite() {
    cluster_.reset();
    pki_.reset();
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    BrokerTest::SetUp();
  }

  static redis::RedisOptions ClientOptions(const std::string& ca) {
    return pki_->ClientOptions(RedisTopology::kCluster, ca);
  }

  static std::unique_ptr<RedisClient> Refused(const std::string& url, const std::string& ca) {
    return tls_topology::RefusedClient(url, ClientOptions(ca));
  }

  inline static std::unique_ptr<tls_topology::Pki> pki_;
  inline static std::unique_ptr<RedisCluster> cluster_;
};

TEST_F(RedisClusterTlsTest, RightCaAndUserServeSessionsAndShardedPubSubOverTls) {
  const std::string url = cluster_->url_as(kUser, kPassword);
  ASSERT_TRUE(absl::StartsWith(url, "rediss://app:app-secret@")) << url;
  std::unique_ptr<RedisClient> client = ConnectedClient(url, ClientOptions("ca"));
  ASSERT_NE(client, nullptr);
  tls_topology::Sessions sessions(client.get());
  EXPECT_EQ(sessions.RoundTrip(), absl::OkStatus());

  // The map named the masters by their TLS ports (CLUSTER SHARDS tls-port);
  // the tests' redis-cli, on the plain ports, sees the plain ones.
  const std::vector<int> plain = cluster_->ports(), tls = cluster_->tls_ports();
  std::vector<std::string> expected;
  for (int master : cluster_->MasterPorts()) {
    const size_t i = std::find(plain.begin(), plain.end(), master) - plain.begin();
    ASSERT_LT(i, plain.size()) << master;
    expected.push_back(absl::StrCat("127.0.0.1:", tls[i]));
  }
  ASSERT_EQ(expected.size(), 3u);
  std::vector<std::string> used = client->MasterAddresses();
  std::sort(used.begin(), used.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(used, expected);

  // Shard channels over TLS: an event to another instance's connection.
  std::unique_ptr<broker_test::Node> a = StartOn(url, Options("pod-a"), ClientOptions("ca"));
  std::unique_ptr<broker_test::Node> b = StartOn(url, Options("pod-b"), ClientOptions("ca"));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Publish(broker_test::Targeted(realtime::TargetKind::kConnection, "conn-1",
                                               "over-tls", "pod-b"))
                  .ok());
  EXPECT_TRUE(WaitFor([&] { return b->sink->Got("over-tls"); }, absl::Seconds(10)));

  // Every connection of the application's user came in on a TLS port.
  int nodes_with_app = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    const std::set<int> local =
        tls_topology::LocalPortsOf(cluster_->Cli(plain[i], {"CLIENT", "LIST"}), kUser);
    if (local.empty()) continue;
    ++nodes_with_app;
    EXPECT_EQ(local, std::set<int>{tls[i]}) << "node " << plain[i];
  }
  EXPECT_GE(nodes_with_app, 3);
}

TEST_F(RedisClusterTlsTest, AWrongPasswordIsUnavailableNamingTheRefusedAuth) {
  std::unique_ptr<RedisClient> client = Refused(cluster_->url_as(kUser, "not-it"), "ca");
  ASSERT_NE(client, nullptr);
  tls_topology::ExpectRefused(*client, absl::StatusCode::kUnavailable,
                              "redis: AUTH failed: WRONGPASS", "not-it");
}

TEST_F(RedisClusterTlsTest, ACaThatDidNotSignTheNodesIsAVerificationError) {
  std::unique_ptr<RedisClient> client = Refused(cluster_->url_as(kUser, kPassword), "other-ca");
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(absl::StrContains(client->last_error().message(), "TLS handshake with 127.0.0.1:"))
      << client->last_error();
  tls_topology::ExpectRefused(*client, absl::StatusCode::kUnavailable, "certificate verify failed",
                              kPassword);
}

}  // namespace
}  // namespace stateside::testing

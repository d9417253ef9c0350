// Sentinel over TLS with an ACL user: a master, a replica and three
// sentinels, all with certificates one CA signed and tls-replication on, so
// the sentinels name the master by its TLS port; the sentinels have their
// own password. With the right CA and credentials sessions work over TLS
// only; a wrong data password is UNAVAILABLE naming the refused AUTH, a
// wrong sentinel password names REDIS_SENTINEL_PASSWORD, and a CA that did
// not sign the certificates is a certificate verification error, never a
// plaintext connection.
#include <memory>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/redis/redis_client.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/integration/redis/tls_topology.h"
#include "tests/support/redis_sentinel.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using tls_topology::kPassword;
using tls_topology::kUser;

constexpr char kSentinelPassword[] = "sentinel-secret";
// The sidecar's ACL user on the sentinels: only what it sends them.
constexpr char kSentinelUser[] = "watcher";
constexpr char kSentinelUserPassword[] = "watcher-secret";
constexpr char kSentinelAclRule[] =
    "watcher on >watcher-secret &* -@all +auth +ping +subscribe +sentinel|get-master-addr-by-name";

class RedisSentinelTlsTest : public ::testing::Test {
 protected:
  // One PKI and one deployment for the suite: no test changes it.
  static void SetUpTestSuite() {
    pki_ = tls_topology::Pki::Create();
    if (pki_ == nullptr) return;
    RedisSentinelOptions options;
    options.data_password = "admin-secret";  // the default user: replication, sentinels, redis-cli
    options.sentinel_password = kSentinelPassword;
    options.sentinel_acl_users = {kSentinelAclRule};
    set_ = tls_topology::StartWithTls<RedisSentinelSet>(*pki_, std::move(options));
  }
  static void TearDownTestSuite() {
    set_.reset();
    pki_.reset();
  }

  void SetUp() override { ASSERT_NE(set_, nullptr); }

  // With the sentinels' default user unless `sentinel_user` is given.
  static redis::RedisOptions ClientOptions(const std::string& ca,
                                           const std::string& sentinel_password,
                                           const std::string& sentinel_user = "") {
    redis::RedisOptions o = pki_->ClientOptions(redis::RedisTopology::kSentinel, ca);
    o.sentinel_master = set_->options().master_name;
    o.sentinel_username = sentinel_user;
    o.sentinel_password = sentinel_password;
    return o;
  }

  inline static std::unique_ptr<tls_topology::Pki> pki_;
  inline static std::unique_ptr<RedisSentinelSet> set_;
};

TEST_F(RedisSentinelTlsTest, RightCaAndCredentialsServeSessionsOverTls) {
  const std::string url = set_->url_as(kUser, kPassword);
  ASSERT_TRUE(absl::StartsWith(url, "rediss://app:app-secret@")) << url;
  // The sentinels' default user, and their ACL user with its narrow rule.
  for (const redis::RedisOptions& options :
       {ClientOptions("ca", kSentinelPassword),
        ClientOptions("ca", kSentinelUserPassword, kSentinelUser)}) {
    SCOPED_TRACE(options.sentinel_username);
    std::unique_ptr<RedisClient> client = ConnectedClient(url, options);
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(tls_topology::Sessions(client.get()).RoundTrip(), absl::OkStatus());
    // The sentinels named the master by its TLS port, and every connection
    // of the application's user came in there.
    RedisServer& master = set_->node(0);
    EXPECT_EQ(client->topology().master, absl::StrCat("127.0.0.1:", master.tls_port()));
    EXPECT_EQ(tls_topology::LocalPortsOf(master.Cli({"CLIENT", "LIST"}), kUser),
              std::set<int>{master.tls_port()});
  }
  // The last client's sentinel subscription is gone with it; a new one
  // subscribes as the ACL user, on a sentinel's TLS port.
  std::unique_ptr<RedisClient> watcher =
      ConnectedClient(url, ClientOptions("ca", kSentinelUserPassword, kSentinelUser));
  ASSERT_NE(watcher, nullptr);
  int watched = 0;
  ASSERT_TRUE(WaitFor([&] {
    watched = 0;
    for (int i = 0; i < set_->sentinel_count(); ++i) {
      const std::set<int> local =
          tls_topology::LocalPortsOf(set_->SentinelCli(i, {"CLIENT", "LIST"}), kSentinelUser);
      EXPECT_TRUE(local.empty() || local == std::set<int>{set_->sentinel_tls_port(i)}) << i;
      watched += local.empty() ? 0 : 1;
    }
    return watched > 0;
  }));
}

TEST_F(RedisSentinelTlsTest, AWrongDataPasswordIsUnavailableNamingTheRefusedAuth) {
  std::unique_ptr<RedisClient> client = tls_topology::RefusedClient(
      set_->url_as(kUser, "not-it"), ClientOptions("ca", kSentinelPassword));
  ASSERT_NE(client, nullptr);
  tls_topology::ExpectRefused(*client, absl::StatusCode::kUnavailable,
                              "redis: AUTH failed: WRONGPASS", "not-it");
}

TEST_F(RedisSentinelTlsTest, AWrongSentinelPasswordNamesItsSettings) {
  std::unique_ptr<RedisClient> client = tls_topology::RefusedClient(
      set_->url_as(kUser, kPassword), ClientOptions("ca", "not-it", kSentinelUser));
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(absl::StrContains(client->last_error().message(), "refused AUTH: WRONGPASS"))
      << client->last_error();
  tls_topology::ExpectRefused(*client, absl::StatusCode::kFailedPrecondition,
                              "(check REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD)",
                              "not-it");
}

TEST_F(RedisSentinelTlsTest, ACaThatDidNotSignTheCertificatesIsAVerificationError) {
  std::unique_ptr<RedisClient> client = tls_topology::RefusedClient(
      set_->url_as(kUser, kPassword), ClientOptions("other-ca", kSentinelPassword));
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(absl::StrContains(client->last_error().message(), "no sentinel answered at"))
      << client->last_error();
  EXPECT_TRUE(absl::StrContains(client->last_error().message(), "TLS handshake with 127.0.0.1:"))
      << client->last_error();
  tls_topology::ExpectRefused(*client, absl::StatusCode::kUnavailable, "certificate verify failed",
                              kPassword);
}

}  // namespace
}  // namespace stateside::testing

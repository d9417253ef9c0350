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

namespace stateside::testing {
namespace {

using redis::RedisClient;
using tls_topology::kPassword;
using tls_topology::kUser;

constexpr char kSentinelPassword[] = "sentinel-secret";

class RedisSentinelTlsTest : public ::testing::Test {
 protected:
  // One PKI and one deployment for the suite: no test changes it.
  static void SetUpTestSuite() {
    pki_ = tls_topology::Pki::Create();
    if (pki_ == nullptr) return;
    RedisSentinelOptions options;
    options.data_password = "admin-secret";  // the default user: replication, sentinels, redis-cli
    options.sentinel_password = kSentinelPassword;
    set_ = tls_topology::StartWithTls<RedisSentinelSet>(*pki_, std::move(options));
  }
  static void TearDownTestSuite() {
    set_.reset();
    pki_.reset();
  }

  void SetUp() override { ASSERT_NE(set_, nullptr); }

  static redis::RedisOptions ClientOptions(const std::string& ca,
                                           const std::string& sentinel_password) {
    redis::RedisOptions o = pki_->ClientOptions(redis::RedisTopology::kSentinel, ca);
    o.sentinel_master = set_->options().master_name;
    o.sentinel_password = sentinel_password;
    return o;
  }

  inline static std::unique_ptr<tls_topology::Pki> pki_;
  inline static std::unique_ptr<RedisSentinelSet> set_;
};

TEST_F(RedisSentinelTlsTest, RightCaAndCredentialsServeSessionsOverTls) {
  const std::string url = set_->url_as(kUser, kPassword);
  ASSERT_TRUE(absl::StartsWith(url, "rediss://app:app-secret@")) << url;
  std::unique_ptr<RedisClient> client =
      ConnectedClient(url, ClientOptions("ca", kSentinelPassword));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(tls_topology::Sessions(client.get()).RoundTrip(), absl::OkStatus());
  // The sentinels named the master by its TLS port, and every connection of
  // the application's user came in there.
  RedisServer& master = set_->node(0);
  EXPECT_EQ(client->topology().master, absl::StrCat("127.0.0.1:", master.tls_port()));
  EXPECT_EQ(tls_topology::LocalPortsOf(master.Cli({"CLIENT", "LIST"}), kUser),
            std::set<int>{master.tls_port()});
}

TEST_F(RedisSentinelTlsTest, AWrongDataPasswordIsUnavailableNamingTheRefusedAuth) {
  std::unique_ptr<RedisClient> client = tls_topology::RefusedClient(
      set_->url_as(kUser, "not-it"), ClientOptions("ca", kSentinelPassword));
  ASSERT_NE(client, nullptr);
  tls_topology::ExpectRefused(*client, absl::StatusCode::kUnavailable,
                              "redis: AUTH failed: WRONGPASS", "not-it");
}

TEST_F(RedisSentinelTlsTest, AWrongSentinelPasswordNamesItsSetting) {
  std::unique_ptr<RedisClient> client =
      tls_topology::RefusedClient(set_->url_as(kUser, kPassword), ClientOptions("ca", "not-it"));
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(absl::StrContains(client->last_error().message(), "refused AUTH: WRONGPASS"))
      << client->last_error();
  tls_topology::ExpectRefused(*client, absl::StatusCode::kFailedPrecondition,
                              "(check REDIS_SENTINEL_PASSWORD)", "not-it");
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

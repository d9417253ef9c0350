// rediss:// against a real redis-server with TLS: certificates made by the
// openssl CLI for each run; CA verification, server-name checks and client
// certificates.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/redis/redis_client.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using redis::RedisOptions;

class RedisTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pki_.MakeCa("ca"), absl::OkStatus());
    ASSERT_EQ(pki_.MakeCa("other-ca"), absl::OkStatus());
    ASSERT_EQ(pki_.MakeLeaf("server", "ca", "DNS:localhost,IP:127.0.0.1"), absl::OkStatus());
    ASSERT_EQ(pki_.MakeLeaf("client", "ca", "DNS:client", "clientAuth"), absl::OkStatus());
  }

  std::unique_ptr<RedisServer> Start(bool require_client_cert, std::string password = "") {
    RedisServerOptions o;
    o.requirepass = std::move(password);
    o.tls.enabled = true;
    o.tls.cert_file = pki_.Path("server.crt");
    o.tls.key_file = pki_.Path("server.key");
    o.tls.ca_file = pki_.Path("ca.crt");
    o.tls.require_client_cert = require_client_cert;
    absl::StatusOr<std::unique_ptr<RedisServer>> s = RedisServer::Start(std::move(o));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  RedisOptions Tls(const std::string& ca) const {
    RedisOptions o = FastRedisOptions();
    o.tls.ca_file = pki_.Path(ca + ".crt");
    return o;
  }

  std::unique_ptr<RedisClient> Client(const std::string& url, RedisOptions o) {
    absl::StatusOr<std::unique_ptr<RedisClient>> c = RedisClient::FromUrl(url, std::move(o));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  TempDir dir_;
  TestPki pki_{dir_};
};

TEST_F(RedisTlsTest, TalksRedissWithTheRightCa) {
  auto server = Start(false, "tlspass");
  ASSERT_NE(server, nullptr);
  auto client = ConnectedClient(server->tls_url(), Tls("ca"));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Call({"SET", "over-tls", "yes"}).ok());
  EXPECT_EQ(server->Cli({"GET", "over-tls"}).out, "yes\n");
  // The connection really is TLS: the plain port would not have been used.
  EXPECT_EQ(client->options().port, server->tls_port());
}

TEST_F(RedisTlsTest, ServerNameIsCheckedAgainstTheCertificate) {
  auto server = Start(false);
  ASSERT_NE(server, nullptr);
  // "localhost" is in the certificate: fine, and sent as SNI.
  EXPECT_NE(ConnectedClient(absl::StrCat("rediss://localhost:", server->tls_port()), Tls("ca")),
            nullptr);
  RedisOptions wrong = Tls("ca");
  wrong.tls.server_name = "redis.example.com";
  auto client = Client(server->tls_url(), wrong);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(WaitFor([&] { return !client->last_error().ok(); }));
  EXPECT_TRUE(absl::StrContains(client->last_error().message(), "TLS handshake"))
      << client->last_error();
  EXPECT_TRUE(absl::StrContains(client->last_error().message(),
                                "does not match the name \"redis.example.com\""))
      << client->last_error();
  EXPECT_FALSE(client->connected());
}

TEST_F(RedisTlsTest, AWrongCaIsAClearError) {
  auto server = Start(false);
  ASSERT_NE(server, nullptr);
  auto client = Client(server->tls_url(), Tls("other-ca"));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(WaitFor([&] { return !client->last_error().ok(); }));
  const std::string error(client->last_error().message());
  EXPECT_TRUE(absl::StrContains(error, "TLS handshake with 127.0.0.1:")) << error;
  EXPECT_TRUE(absl::StrContains(error, "certificate verify failed")) << error;
  EXPECT_FALSE(client->connected());
  absl::StatusOr<redis::Reply> r = client->Call({"PING"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "certificate verify failed")) << r.status();
}

TEST_F(RedisTlsTest, PlainClientOnTheTlsPortDoesNotConnect) {
  auto server = Start(false);
  ASSERT_NE(server, nullptr);
  RedisOptions o = FastRedisOptions();
  o.connect_timeout = absl::Milliseconds(300);
  auto client = Client(absl::StrCat("redis://127.0.0.1:", server->tls_port()), o);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(WaitFor([&] { return !client->last_error().ok(); }));
  EXPECT_FALSE(client->connected());
}

TEST_F(RedisTlsTest, ClientCertificateWhenTheServerRequiresOne) {
  auto server = Start(/*require_client_cert=*/true);
  ASSERT_NE(server, nullptr);
  auto without = Client(server->tls_url(), Tls("ca"));
  ASSERT_NE(without, nullptr);
  ASSERT_TRUE(WaitFor([&] { return !without->last_error().ok(); }));
  EXPECT_FALSE(without->connected()) << "the server refuses a client without a certificate";

  RedisOptions with = Tls("ca");
  with.tls.cert_file = pki_.Path("client.crt");
  with.tls.key_file = pki_.Path("client.key");
  auto client = ConnectedClient(server->tls_url(), with);
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->Call({"PING"}).ok());
}

TEST_F(RedisTlsTest, UnreadableTlsFilesFailAtCreation) {
  RedisOptions o = Tls("ca");
  o.tls.cert_file = pki_.Path("client.crt");  // key missing
  EXPECT_EQ(RedisClient::FromUrl("rediss://localhost:1", o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.tls.key_file = pki_.Path("nope.key");
  absl::StatusOr<std::unique_ptr<RedisClient>> c = RedisClient::FromUrl("rediss://localhost:1", o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(c.status().message(), "nope.key")) << c.status();
}

}  // namespace
}  // namespace stateside::testing

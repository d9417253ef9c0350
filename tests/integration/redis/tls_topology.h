// What the TLS + ACL tests of Cluster and Sentinel share: one PKI for the
// suite (the CA "ca" that signed every node's certificate "node", and an
// unrelated "other-ca"), client options trusting either CA, a session
// created and read back through the real store, and the local ports of a
// node's connections of one ACL user. Header-only; test thread only.
#ifndef STATESIDE_TESTS_INTEGRATION_REDIS_TLS_TOPOLOGY_H_
#define STATESIDE_TESTS_INTEGRATION_REDIS_TLS_TOPOLOGY_H_

#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/random.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/integration/redis/rewrap_node.h"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"

namespace stateside::testing::tls_topology {

// The application's ACL user on the data nodes: every command, key and
// (shard) channel; Redis 7 grants no channel unless told (&*).
inline constexpr char kUser[] = "app";
inline constexpr char kPassword[] = "app-secret";
inline constexpr char kAclRule[] = "app on >app-secret ~* &* +@all";

struct Pki {
  TempDir dir;
  TestPki pki{dir};

  // CAs "ca" and "other-ca"; "node" signed by "ca" for 127.0.0.1/localhost,
  // as server and as client (the cluster bus, replication, sentinels).
  // nullptr (the reason printed) if openssl failed.
  static std::unique_ptr<Pki> Create() {
    auto out = std::make_unique<Pki>();
    absl::Status s = out->pki.MakeCa("ca");
    if (s.ok()) s = out->pki.MakeCa("other-ca");
    if (s.ok()) {
      s = out->pki.MakeLeaf("node", "ca", "DNS:localhost,IP:127.0.0.1", "serverAuth,clientAuth");
    }
    if (s.ok()) return out;
    std::cerr << "certificates: " << s << "\n";
    return nullptr;
  }

  // The nodes' TLS settings: the "node" certificate, clients unverified.
  RedisServerOptions::Tls ServerTls() const {
    RedisServerOptions::Tls tls;
    tls.enabled = true;
    tls.cert_file = pki.Path("node.crt");
    tls.key_file = pki.Path("node.key");
    tls.ca_file = pki.Path("ca.crt");
    return tls;
  }

  // Client options for `topology` trusting the CA `ca` alone.
  redis::RedisOptions ClientOptions(redis::RedisTopology topology, const std::string& ca) const {
    redis::RedisOptions o = FastRedisOptions();
    o.topology = topology;
    o.tls.ca_file = pki.Path(ca + ".crt");
    return o;
  }
};

// Starts a Topology (RedisCluster or RedisSentinelSet) from `options` with
// the application's ACL user and TLS on the "node" certificate; nullptr (the
// reason printed) if it did not start.
template <typename Topology, typename Options>
std::unique_ptr<Topology> StartWithTls(const Pki& pki, Options options) {
  options.acl_users = {kAclRule};
  options.tls = pki.ServerTls();
  absl::StatusOr<std::unique_ptr<Topology>> started = Topology::Start(std::move(options));
  if (started.ok()) return *std::move(started);
  std::cerr << "cannot start the Redis topology: " << started.status() << "\n";
  return nullptr;
}

// A session manager over a RedisSessionStore on `client`.
class Sessions {
 public:
  explicit Sessions(redis::RedisClient* client)
      : random_(crypto::NewSecureRandom()),
        signer_(*crypto::CookieSigner::Create({std::string(32, 's')})),
        node_(MakeRewrapNode(client, UniquePrefix(), absl::StrCat("k1:", kTestKeyHex),
                             random_.get(), signer_.get(), &clock_)) {}

  session::SessionManager& manager() { return *node_->sessions; }

  // Create, then Get by id: the attribute comes back. OK or the first error.
  absl::Status RoundTrip() {
    session::CreateParams p;
    p.user_id = "alice";
    p.attributes = {{"theme", "dark"}};
    absl::StatusOr<session::Session> created = manager().Create(p);
    if (!created.ok()) return created.status();
    absl::StatusOr<session::Session> got = manager().Get(session::SessionKey::Id(created->info.id));
    if (!got.ok()) return got.status();
    if (got->attributes["theme"] != "dark") return absl::InternalError("attribute lost");
    return absl::OkStatus();
  }

 private:
  SystemClock clock_;
  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::CookieSigner> signer_;
  std::unique_ptr<RewrapNode> node_;
};

// A client for `url` that must not connect: returned once it has an error.
inline std::unique_ptr<redis::RedisClient> RefusedClient(const std::string& url,
                                                         redis::RedisOptions options) {
  absl::StatusOr<std::unique_ptr<redis::RedisClient>> client =
      redis::RedisClient::FromUrl(url, std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  if (!client.ok()) return nullptr;
  EXPECT_FALSE((*client)->WaitConnected(absl::Seconds(1)));
  EXPECT_TRUE(WaitFor([&] { return !(*client)->last_error().ok(); }));
  return *std::move(client);
}

// A client that is refused: not connected, its last error (of code `code`)
// and a session round trip through the store (UNAVAILABLE) both naming
// `why`, and the password in neither.
inline void ExpectRefused(redis::RedisClient& client, absl::StatusCode code, const std::string& why,
                          const std::string& password) {
  const absl::Status error = client.last_error();
  EXPECT_EQ(error.code(), code) << error;
  EXPECT_TRUE(absl::StrContains(error.message(), why)) << error;
  const absl::Status refused = Sessions(&client).RoundTrip();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), why)) << refused;
  for (const absl::Status& s : {error, refused}) {
    EXPECT_FALSE(absl::StrContains(s.message(), password)) << s;
  }
  EXPECT_FALSE(client.connected());
}

// The local ports ("laddr") of the client connections logged in as `user`
// in a node's CLIENT LIST: which listener, plain or TLS, they came through.
inline std::set<int> LocalPortsOf(const RunResult& r, const std::string& user) {
  EXPECT_EQ(r.exit_status, 0) << r.err;
  std::set<int> ports;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    if (!absl::StrContains(line, absl::StrCat(" user=", user, " "))) continue;
    for (absl::string_view field : absl::StrSplit(line, ' ')) {
      if (!absl::StartsWith(field, "laddr=")) continue;
      int port = 0;
      if (absl::SimpleAtoi(field.substr(field.rfind(':') + 1), &port)) ports.insert(port);
    }
  }
  return ports;
}

}  // namespace stateside::testing::tls_topology

#endif  // STATESIDE_TESTS_INTEGRATION_REDIS_TLS_TOPOLOGY_H_

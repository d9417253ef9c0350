// One sidecar's view of a shared Redis under one keyring, for the rewrap
// sweep tests (standalone and Cluster): stores, session and opt-out managers.
// Header-only: only the test binaries that link the session, analytics and
// crypto modules include it. Not thread-safe: one test owns each node.
#ifndef STATESIDE_TESTS_INTEGRATION_REDIS_REWRAP_NODE_H_
#define STATESIDE_TESTS_INTEGRATION_REDIS_REWRAP_NODE_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/redis/redis_opt_out_store.h"
#include "sidecar/redis/redis_session_store.h"
#include "sidecar/session/session_manager.h"

namespace stateside::testing {

struct RewrapNode {
  std::unique_ptr<crypto::Keyring> keyring;
  std::unique_ptr<crypto::Sealer> sealer;
  std::unique_ptr<redis::RedisSessionStore> store;
  std::unique_ptr<redis::RedisOptOutStore> opt_out_store;
  std::unique_ptr<session::SessionManager> sessions;
  std::unique_ptr<OptOutManager> opt_outs;
};

// `keys`: "k2:<hex>,k1:<hex>" as SESSION_ENCRYPTION_KEYS. Idle TTL 1 h,
// absolute 8 h, opt-outs for a year. `sealing` (seal_version 1) makes a node
// that writes as earlier releases did.
inline std::unique_ptr<RewrapNode> MakeRewrapNode(redis::RedisClient* client,
                                                  const std::string& prefix,
                                                  const std::string& keys,
                                                  RandomSource* random,
                                                  const crypto::CookieSigner* signer,
                                                  const Clock* clock,
                                                  crypto::SealerOptions sealing = {}) {
  auto node = std::make_unique<RewrapNode>();
  absl::StatusOr<std::vector<crypto::KeySpec>> specs = crypto::Keyring::ParseKeyList(keys);
  EXPECT_TRUE(specs.ok()) << specs.status();
  absl::StatusOr<std::unique_ptr<crypto::Keyring>> keyring =
      crypto::Keyring::Create(*std::move(specs));
  EXPECT_TRUE(keyring.ok()) << keyring.status();
  node->keyring = *std::move(keyring);
  node->sealer = std::make_unique<crypto::Sealer>(node->keyring.get(), random,
                                                 nullptr, sealing);
  node->store = std::make_unique<redis::RedisSessionStore>(client, prefix);
  node->opt_out_store = std::make_unique<redis::RedisOptOutStore>(client, prefix);
  session::SessionPolicy policy;
  policy.idle_ttl = absl::Hours(1);
  policy.absolute_ttl = absl::Hours(8);
  node->sessions = std::make_unique<session::SessionManager>(node->store.get(), node->sealer.get(), signer,
                                                    random, clock, policy);
  node->opt_outs = std::make_unique<OptOutManager>(node->opt_out_store.get(), node->keyring.get(),
                                                   clock, absl::Hours(24 * 365),
                                                   node->sealer.get());
  return node;
}

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_INTEGRATION_REDIS_REWRAP_NODE_H_

// The store conformance suites (tests/support/store_conformance.h) and the
// session rules' suite (session_rules_conformance.h) on a real redis-server:
// every rule the memory store keeps, Redis keeps too.
#include <memory>

#include "sidecar/redis/redis_opt_out_store.h"
#include "sidecar/redis/redis_request_store.h"
#include "sidecar/redis/redis_session_store.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/request_store_conformance.h"
#include "tests/support/session_rules_conformance.h"
#include "tests/support/store_conformance.h"

namespace stateside::testing {
namespace {

// A fresh store: the shared server, a prefix of its own.
SessionStoreFactory RedisStores() {
  return {"redis", []() -> std::unique_ptr<session::SessionStore> {
            redis::RedisClient* client = SharedRedisClient();
            if (client == nullptr) return nullptr;
            return std::make_unique<redis::RedisSessionStore>(client, UniquePrefix());
          }};
}

INSTANTIATE_TEST_SUITE_P(
    Redis, SessionStoreConformanceTest,
    ::testing::Values(RedisStores()),
    SessionStoreFactoryName);

INSTANTIATE_TEST_SUITE_P(
    Redis, SessionRulesConformanceTest,
    ::testing::Values(RedisStores()),
    SessionStoreFactoryName);

INSTANTIATE_TEST_SUITE_P(
    Redis, OptOutStoreConformanceTest,
    ::testing::Values(OptOutStoreFactory{
        "redis",
        []() -> std::unique_ptr<OptOutStore> {
          redis::RedisClient* client = SharedRedisClient();
          if (client == nullptr) return nullptr;
          return std::make_unique<redis::RedisOptOutStore>(client, UniquePrefix());
        }}),
    OptOutStoreFactoryName);

RequestStoreFactory RedisRequests() {
  return {"redis", []() -> std::unique_ptr<session::RequestStore> {
            redis::RedisClient* client = SharedRedisClient();
            if (client == nullptr) return nullptr;
            return std::make_unique<redis::RedisRequestStore>(client, UniquePrefix());
          }};
}

INSTANTIATE_TEST_SUITE_P(Redis, RequestStoreConformanceTest, ::testing::Values(RedisRequests()),
                         RequestStoreFactoryName);
INSTANTIATE_TEST_SUITE_P(Redis, RequestLedgerConformanceTest,
                         ::testing::Values(RedisRequests()), RequestStoreFactoryName);

}  // namespace
}  // namespace stateside::testing

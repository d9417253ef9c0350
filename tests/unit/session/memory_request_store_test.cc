// The request-id store conformance suite and the request ledger's, on the
// embedded memory store, and the memory store's own bound.
#include "sidecar/session/memory_request_store.h"

#include <memory>

#include "gtest/gtest.h"
#include "tests/support/request_store_conformance.h"

namespace stateside::testing {
namespace {

RequestStoreFactory MemoryRequests() {
  return {"memory", [] { return std::make_unique<session::MemoryRequestStore>(1000); }};
}

INSTANTIATE_TEST_SUITE_P(Memory, RequestStoreConformanceTest, ::testing::Values(MemoryRequests()),
                         RequestStoreFactoryName);
INSTANTIATE_TEST_SUITE_P(Memory, RequestLedgerConformanceTest,
                         ::testing::Values(MemoryRequests()), RequestStoreFactoryName);

TEST(MemoryRequestStoreTest, AFullStoreDropsExpiredEntriesThenRefuses) {
  session::MemoryRequestStore store(2);
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  ASSERT_TRUE(store.Claim("a", "P", now, now + absl::Seconds(1)).ok());
  ASSERT_TRUE(store.Claim("b", "P", now, now + absl::Seconds(10)).ok());
  EXPECT_EQ(store.Claim("c", "P", now, now + absl::Seconds(10)).status().code(),
            absl::StatusCode::kResourceExhausted);
  // "a" has expired by then: it makes room.
  const absl::Time later = now + absl::Seconds(2);
  absl::StatusOr<std::optional<std::string>> c = store.Claim("c", "P", later, later + absl::Seconds(10));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->has_value());
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.Sweep(now + absl::Hours(1)), 2u);
  EXPECT_EQ(store.size(), 0u);
}

}  // namespace
}  // namespace stateside::testing

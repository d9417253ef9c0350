// MemoryOptOutStore: the shared OptOutStore conformance suite, plus its own
// memory bound and Sweep.
#include "sidecar/analytics/memory_opt_out_store.h"

#include <memory>

#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"
#include "tests/support/store_conformance.h"

namespace stateside::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Memory, OptOutStoreConformanceTest,
    ::testing::Values(OptOutStoreFactory{
        "memory", [] { return std::make_unique<MemoryOptOutStore>(1000); }}),
    OptOutStoreFactoryName);

TEST(MemoryOptOutStoreTest, AFullStoreIsResourceExhaustedUntilFlagsExpire) {
  FakeClock clock;
  MemoryOptOutStore store(2);
  const absl::Time t0 = clock.Now();
  ASSERT_TRUE(store.Set("a", true, t0, t0 + absl::Hours(1)).ok());
  ASSERT_TRUE(store.Set("b", true, t0, t0 + absl::Hours(2)).ok());
  EXPECT_EQ(store.Set("c", true, t0, t0 + absl::Hours(1)).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(store.Get("c", t0).value_or(true));
  // Updating or clearing a flag already held needs no room.
  EXPECT_TRUE(store.Set("a", true, t0, t0 + absl::Hours(3)).ok());
  EXPECT_TRUE(store.Set("b", false, t0, t0).ok());
  EXPECT_TRUE(store.Set("c", true, t0, t0 + absl::Hours(1)).ok());
  // Once a flag has expired, a Set makes room by itself.
  const absl::Time later = t0 + absl::Hours(1);
  EXPECT_TRUE(store.Set("d", true, later, later + absl::Hours(1)).ok());
  EXPECT_EQ(store.size(), 2u);
}

TEST(MemoryOptOutStoreTest, SweepDropsExpiredFlags) {
  FakeClock clock;
  MemoryOptOutStore store(10);
  const absl::Time t0 = clock.Now();
  ASSERT_TRUE(store.Set("a", true, t0, t0 + absl::Hours(1)).ok());
  ASSERT_TRUE(store.Set("b", true, t0, t0 + absl::Hours(2)).ok());
  EXPECT_EQ(store.Sweep(t0), 0u);
  EXPECT_EQ(store.Sweep(t0 + absl::Hours(1)), 1u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_TRUE(store.Get("b", t0 + absl::Hours(1)).value_or(false));
}

TEST(MemoryOptOutStoreTest, AFlagAlreadyExpiredIsNotKept) {
  FakeClock clock;
  MemoryOptOutStore store(10);
  const absl::Time t0 = clock.Now();
  ASSERT_TRUE(store.Set("a", true, t0, t0).ok());
  EXPECT_FALSE(store.Get("a", t0).value_or(true));
  EXPECT_EQ(store.size(), 0u);
}

}  // namespace
}  // namespace stateside::testing

// LoadLimit: the cap, release on destruction and on move, and a Slot that
// outlives its limit (at exit, handlers that never ran hold connections
// until the io_context goes, after the server that owns the limits).
#include "app/load_limit.h"

#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace radar {
namespace {

TEST(LoadLimitTest, TheCapRefusesAndAReleaseMakesRoom) {
  LoadLimit limit(2);
  LoadLimit::Slot a = limit.TryAcquire();
  LoadLimit::Slot b = limit.TryAcquire();
  LoadLimit::Slot c = limit.TryAcquire();
  EXPECT_TRUE(a.held());
  EXPECT_TRUE(b.held());
  EXPECT_FALSE(c.held());
  EXPECT_EQ(limit.in_use(), 2u);
  b.Release();
  EXPECT_EQ(limit.in_use(), 1u);
  EXPECT_TRUE(limit.TryAcquire().held());  // taken and given back at once
  EXPECT_EQ(limit.in_use(), 1u);
}

TEST(LoadLimitTest, AMovedSlotCountsOnce) {
  LoadLimit limit(1);
  LoadLimit::Slot a = limit.TryAcquire();
  LoadLimit::Slot b = std::move(a);
  EXPECT_FALSE(a.held());  // NOLINT(bugprone-use-after-move): what a move leaves
  EXPECT_TRUE(b.held());
  EXPECT_EQ(limit.in_use(), 1u);
  LoadLimit::Slot c;
  c = std::move(b);
  EXPECT_EQ(limit.in_use(), 1u);
  c = LoadLimit::Slot();
  EXPECT_EQ(limit.in_use(), 0u);
}

TEST(LoadLimitTest, ASlotMayOutliveItsLimit) {
  auto limit = std::make_unique<LoadLimit>(4);
  std::vector<LoadLimit::Slot> slots;
  slots.push_back(limit->TryAcquire());
  slots.push_back(limit->TryAcquire());
  limit.reset();
  slots.clear();  // under ASan, a release into the freed limit would be caught
  SUCCEED();
}

}  // namespace
}  // namespace radar

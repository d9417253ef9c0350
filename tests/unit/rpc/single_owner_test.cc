// SingleOwner's debug-build checks: a field group handed on in order passes;
// a second Acquire, a use or a Release while nobody holds it fails.
#include "sidecar/common/single_owner.h"

#include "gtest/gtest.h"

namespace stateside {
namespace {

TEST(SingleOwnerTest, HandOversInOrderPass) {
  SingleOwner owner;
  for (int i = 0; i < 3; ++i) {
    owner.Acquire();
    owner.AssertHeld();
    owner.Release();
  }
}

#ifdef NDEBUG
TEST(SingleOwnerTest, BrokenRulesFailInDebugBuilds) {
  GTEST_SKIP() << "release build: the checks compile to nothing";
}
#else
TEST(SingleOwnerTest, BrokenRulesFailInDebugBuilds) {
  EXPECT_DEATH(
      {
        SingleOwner owner;
        owner.Acquire();
        owner.Acquire();
      },
      "already held");
  EXPECT_DEATH(
      {
        SingleOwner owner;
        owner.AssertHeld();
      },
      "used while not held");
  EXPECT_DEATH(
      {
        SingleOwner owner;
        owner.Release();
      },
      "released while not held");
}
#endif

}  // namespace
}  // namespace stateside

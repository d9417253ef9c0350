// ReadinessDebounce: a blip shorter than the debounce keeps the dependency
// up, a longer outage takes it down exactly at the debounce, and a
// dependency never seen up is down at once.
#include "sidecar/server/readiness_debounce.h"

#include "gtest/gtest.h"

namespace stateside {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

TEST(ReadinessDebounceTest, NeverUpIsDownAtOnce) {
  ReadinessDebounce d(absl::Seconds(2));
  EXPECT_FALSE(d.Up(kT0));
  d.Report(false, kT0);
  EXPECT_FALSE(d.Up(kT0));
  EXPECT_FALSE(d.Pending(kT0));
  d.Report(true, kT0 + absl::Seconds(1));
  EXPECT_TRUE(d.Up(kT0 + absl::Seconds(1)));
}

TEST(ReadinessDebounceTest, DownTurnsDownOnlyAfterTheDebounce) {
  ReadinessDebounce d(absl::Seconds(2));
  d.Report(true, kT0);
  d.Report(false, kT0 + absl::Seconds(10));
  EXPECT_TRUE(d.Up(kT0 + absl::Seconds(10)));
  EXPECT_TRUE(d.Pending(kT0 + absl::Seconds(10)));
  EXPECT_TRUE(d.Up(kT0 + absl::Seconds(12) - absl::Milliseconds(1)));
  EXPECT_FALSE(d.Up(kT0 + absl::Seconds(12)));
  EXPECT_FALSE(d.Pending(kT0 + absl::Seconds(12)));
  EXPECT_EQ(d.DownFor(kT0 + absl::Seconds(13)), absl::Seconds(3));
}

TEST(ReadinessDebounceTest, RepeatedDownReportsDoNotRestartTheDebounce) {
  ReadinessDebounce d(absl::Seconds(2));
  d.Report(true, kT0);
  d.Report(false, kT0);
  d.Report(false, kT0 + absl::Seconds(1));  // e.g. a failed reconnect
  EXPECT_FALSE(d.Up(kT0 + absl::Seconds(2)));
}

TEST(ReadinessDebounceTest, ABlipWithinTheDebounceNeverTurnsDown) {
  ReadinessDebounce d(absl::Seconds(2));
  d.Report(true, kT0);
  d.Report(false, kT0 + absl::Seconds(1));
  d.Report(true, kT0 + absl::Milliseconds(2500));
  EXPECT_TRUE(d.Up(kT0 + absl::Seconds(60)));
  EXPECT_EQ(d.DownFor(kT0 + absl::Seconds(60)), absl::ZeroDuration());
  // The next outage counts from its own start.
  d.Report(false, kT0 + absl::Seconds(100));
  EXPECT_TRUE(d.Up(kT0 + absl::Seconds(101)));
  EXPECT_FALSE(d.Up(kT0 + absl::Seconds(102)));
}

TEST(ReadinessDebounceTest, ZeroDebounceIsDownAtOnce) {
  ReadinessDebounce d(absl::ZeroDuration());
  d.Report(true, kT0);
  d.Report(false, kT0);
  EXPECT_FALSE(d.Up(kT0));
  EXPECT_FALSE(d.Pending(kT0));
}

}  // namespace
}  // namespace stateside

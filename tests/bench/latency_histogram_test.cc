#include "tests/bench/latency_histogram.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace stateside::bench {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(90), 90u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(100), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogramTest, EveryBucketHoldsItsValueWithinOnePercent) {
  for (uint64_t v : {255ull, 256ull, 257ull, 1000ull, 123456ull, 999999ull,
                     1ull << 30, (1ull << 40) - 1}) {
    const int bucket = LatencyHistogram::BucketOf(v);
    const uint64_t highest = LatencyHistogram::BucketHighest(bucket);
    EXPECT_GE(highest, v) << v;
    EXPECT_LE(static_cast<double>(highest - v), 0.008 * static_cast<double>(v))
        << v;
    // The bucket is contiguous: its highest value maps back to it.
    EXPECT_EQ(LatencyHistogram::BucketOf(highest), bucket) << v;
    EXPECT_EQ(LatencyHistogram::BucketOf(highest + 1), bucket + 1) << v;
  }
}

TEST(LatencyHistogramTest, PercentilesOfMicrosecondLatenciesAreWithinOnePercent) {
  LatencyHistogram h;
  // 1..10000 µs, in ns.
  for (uint64_t us = 1; us <= 10000; ++us) h.Record(us * 1000);
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double exact = p * 100 * 1000;  // p% of 10000 µs, in ns
    EXPECT_NEAR(static_cast<double>(h.Percentile(p)), exact, exact * 0.01) << p;
    EXPECT_GE(static_cast<double>(h.Percentile(p)), exact) << p;
  }
  EXPECT_EQ(h.max(), 10000u * 1000);
  EXPECT_EQ(h.Percentile(100), h.max());
}

TEST(LatencyHistogramTest, OutliersDoNotMovePercentilesButSetMax) {
  LatencyHistogram h;
  for (int i = 0; i < 999; ++i) h.Record(100000);  // 100 µs
  h.Record(50'000'000'000'000ull);  // past the last bucket
  EXPECT_LE(h.Percentile(99), 100800u);
  EXPECT_EQ(h.max(), 50'000'000'000'000ull);
  EXPECT_EQ(h.Percentile(100), h.max());
}

TEST(LatencyHistogramTest, MergeAddsCountsAndExtremes) {
  LatencyHistogram a, b;
  a.Record(10);
  a.Record(20);
  b.Record(5);
  b.Record(1'000'000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 4u);
  EXPECT_EQ(a.min(), 5u);
  EXPECT_EQ(a.max(), 1'000'000u);
  EXPECT_EQ(a.Percentile(50), 10u);
  EXPECT_EQ(a.Percentile(75), 20u);
}

}  // namespace
}  // namespace stateside::bench

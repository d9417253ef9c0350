// Log-linear bucketing of latencies (see latency_histogram.h).
#include "tests/bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace stateside::bench {
namespace {

// Values below 2^kExactBits are their own bucket; above, the top
// kExactBits bits of a value pick the bucket inside its power of two, i.e.
// 2^(kExactBits-1) = 128 buckets per octave.
constexpr int kExactBits = 8;
constexpr uint64_t kExactLimit = uint64_t{1} << kExactBits;
constexpr int kSubBuckets = 1 << (kExactBits - 1);
// Highest power of two with its own buckets: 2^40 ns ~ 18 minutes, far beyond
// any call deadline of the benchmark.
constexpr int kMaxExponent = 40;
constexpr int kNumBuckets =
    static_cast<int>(kExactLimit) + (kMaxExponent - kExactBits + 1) * kSubBuckets;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kNumBuckets, 0) {}

int LatencyHistogram::BucketOf(uint64_t nanos) {
  if (nanos < kExactLimit) return static_cast<int>(nanos);
  const int exponent = std::bit_width(nanos) - 1;  // >= kExactBits
  if (exponent > kMaxExponent) return kNumBuckets - 1;
  const int shift = exponent - (kExactBits - 1);
  const int mantissa = static_cast<int>(nanos >> shift);  // in [128, 256)
  return static_cast<int>(kExactLimit) + (exponent - kExactBits) * kSubBuckets +
         (mantissa - kSubBuckets);
}

uint64_t LatencyHistogram::BucketHighest(int bucket) {
  if (bucket < static_cast<int>(kExactLimit)) return static_cast<uint64_t>(bucket);
  const int above = bucket - static_cast<int>(kExactLimit);
  const int exponent = above / kSubBuckets + kExactBits;
  const uint64_t mantissa = static_cast<uint64_t>(above % kSubBuckets + kSubBuckets);
  const int shift = exponent - (kExactBits - 1);
  return ((mantissa + 1) << shift) - 1;
}

void LatencyHistogram::Record(uint64_t nanos) {
  ++counts_[BucketOf(nanos)];
  ++count_;
  min_ = std::min(min_, nanos);
  max_ = std::max(max_, nanos);
  sum_ += static_cast<long double>(nanos);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kNumBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / count_);
}

uint64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // Rank of the wanted value (1-based); at least the first value.
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_))));
  // The highest rank is the maximum, kept exactly (it may lie past the last
  // bucket's range).
  if (rank >= count_) return max_;
  uint64_t seen = 0;
  for (int i = 0; i < kNumBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      return i == kNumBuckets - 1 ? max_  // the overflow bucket has no bound
                                  : std::clamp(BucketHighest(i), min(), max_);
    }
  }
  return max_;
}

}  // namespace stateside::bench

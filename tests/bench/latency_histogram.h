// A latency histogram with bounded relative error, laid out like HdrHistogram
// (log-linear buckets): values below 256 ns are counted exactly; above, each
// power of two is split into 128 buckets, so a percentile is off by less than
// 0.8%. Memory is fixed (~35 KiB) however many values are recorded, which is
// why it is used instead of keeping and sorting every latency. The maximum and
// minimum are kept exactly.
//
// Thread-compatible: one writer at a time (LoadRunner shards them).
#ifndef STATESIDE_TESTS_BENCH_LATENCY_HISTOGRAM_H_
#define STATESIDE_TESTS_BENCH_LATENCY_HISTOGRAM_H_

#include <cstdint>
#include <vector>

namespace stateside::bench {

class LatencyHistogram {
 public:
  LatencyHistogram();

  // Records one value in nanoseconds. Values past ~18 minutes share the last
  // bucket (the exact maximum is still kept).
  void Record(uint64_t nanos);
  // Adds every value recorded in `other`.
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const;

  // The value at percentile `p` (0 < p <= 100): the smallest recorded value v
  // such that at least p% of the values are <= v, rounded up to the end of its
  // bucket (never above max()). 0 when empty.
  uint64_t Percentile(double p) const;

  // Bucket geometry, exposed for the tests.
  static int BucketOf(uint64_t nanos);
  static uint64_t BucketHighest(int bucket);

 private:
  std::vector<uint64_t> counts_;  // one per bucket
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;  // for the mean; long double keeps ns sums exact enough
};

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_LATENCY_HISTOGRAM_H_

// Lock-free counts and histograms, drained by the scrape (see
// sharded_metrics.h).
#include "sidecar/admin/sharded_metrics.h"

namespace stateside::admin::internal {

size_t ThisThreadShard() {
  static std::atomic<size_t> next{0};
  thread_local const size_t shard =
      next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

ShardedCounts::ShardedCounts(size_t n)
    : n_(n),
      lines_per_shard_((n + kPerLine - 1) / kPerLine),
      lines_(kShards * lines_per_shard_) {}

std::vector<uint64_t> ShardedCounts::Drain() {
  std::vector<uint64_t> totals(n_, 0);
  for (size_t shard = 0; shard < kShards; ++shard) {
    for (size_t i = 0; i < n_; ++i) {
      totals[i] += Cell(shard, i).exchange(0, std::memory_order_relaxed);
    }
  }
  return totals;
}

ShardedHistogram::ShardedHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1), sums_(kShards) {}

ShardedHistogram::Drained ShardedHistogram::Drain() {
  Drained drained;
  // Counts, then sums, each cell drained by one exchange: an observation
  // that races a Drain may have its count in this Drain and its sum in the
  // next, or the other way round (the cells are relaxed), but neither is
  // counted twice or lost, and _count and _sum each only grow.
  const std::vector<uint64_t> counts = counts_.Drain();
  drained.buckets.reserve(counts.size());
  for (uint64_t c : counts) {
    drained.buckets.push_back(static_cast<double>(c));
    drained.count += c;
  }
  for (Sum& sum : sums_) {
    drained.sum += sum.v.exchange(0, std::memory_order_relaxed);
  }
  return drained;
}

}  // namespace stateside::admin::internal

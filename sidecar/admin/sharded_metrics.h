// Recording for the metrics of the data path without a lock: counts and
// histograms kept in kShards copies of their own cache lines, each thread
// adding to the copy its thread number picks (relaxed atomic adds, so two
// threads sharing a copy never lose an increment), and summed and zeroed by
// the scrape (Drain), which feeds the totals into the prometheus-cpp metric
// that /metrics exports (metrics.cc). A recording is seen by exactly one
// Drain: the next one to reach its cell.
//
// Internal to sidecar/admin (and its tests). Thread-safe: any number of
// threads record while one drains.
#ifndef STATESIDE_SIDECAR_ADMIN_SHARDED_METRICS_H_
#define STATESIDE_SIDECAR_ADMIN_SHARDED_METRICS_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace stateside::admin::internal {

inline constexpr size_t kShards = 16;

// The calling thread's copy: threads are numbered as they first record, so
// up to kShards of them never share one.
size_t ThisThreadShard();

// `n` counts, each in kShards copies.
class ShardedCounts {
 public:
  explicit ShardedCounts(size_t n);

  void Add(size_t i, uint64_t v = 1) {
    Cell(ThisThreadShard(), i).fetch_add(v, std::memory_order_relaxed);
  }
  // Each count summed over its copies, which are reset to 0.
  std::vector<uint64_t> Drain();
  size_t size() const { return n_; }

 private:
  struct alignas(64) Line {
    std::atomic<uint64_t> v[8] = {};
  };
  static constexpr size_t kPerLine = 8;
  std::atomic<uint64_t>& Cell(size_t shard, size_t i) {
    return lines_[shard * lines_per_shard_ + i / kPerLine].v[i % kPerLine];
  }
  const size_t n_;
  const size_t lines_per_shard_;
  std::vector<Line> lines_;  // kShards * lines_per_shard_
};

// A histogram with prometheus-cpp's buckets: an observation counts in the
// first bucket whose upper bound is >= it, or in the last (+Inf) one.
class ShardedHistogram {
 public:
  explicit ShardedHistogram(std::vector<double> bounds);

  void Observe(double value) {
    const size_t bucket = static_cast<size_t>(
        std::lower_bound(bounds_.begin(), bounds_.end(), value) -
        bounds_.begin());
    const size_t shard = ThisThreadShard();
    sums_[shard].v.fetch_add(value, std::memory_order_relaxed);
    counts_.Add(bucket);
  }

  struct Drained {
    std::vector<double> buckets;  // per bucket (not cumulative), +Inf last
    double sum = 0;
    uint64_t count = 0;
  };
  // What was observed since the last Drain, in the form of prometheus-cpp's
  // Histogram::ObserveMultiple.
  Drained Drain();

 private:
  struct alignas(64) Sum {
    std::atomic<double> v{0};
  };
  const std::vector<double> bounds_;
  ShardedCounts counts_;  // bounds_.size() + 1
  std::vector<Sum> sums_;  // kShards
};

// The series of a labelled family, by label value, found without a lock:
// a series is created under the table's lock the first time its label is
// seen, published by a release store of the size, and never moved or
// removed. At most `capacity` series; Find answers null past that.
template <typename V>
class SeriesTable {
 public:
  using Make = std::unique_ptr<V> (*)();
  SeriesTable(size_t capacity, Make make) : slots_(capacity), make_(make) {}

  V* Find(std::string_view label) {
    const size_t n = size_.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) {
      if (slots_[i]->label == label) return slots_[i]->value.get();
    }
    absl::MutexLock lock(&mu_);
    const size_t m = size_.load(std::memory_order_relaxed);
    for (size_t i = n; i < m; ++i) {
      if (slots_[i]->label == label) return slots_[i]->value.get();
    }
    if (m == slots_.size()) return nullptr;
    slots_[m] = std::make_unique<Slot>(Slot{std::string(label), make_()});
    size_.store(m + 1, std::memory_order_release);
    return slots_[m]->value.get();
  }

  // f(label, value) for every series created so far.
  template <typename F>
  void ForEach(F&& f) {
    const size_t n = size_.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) f(slots_[i]->label, *slots_[i]->value);
  }

 private:
  struct Slot {
    std::string label;
    std::unique_ptr<V> value;
  };
  // slots_[i] is written once, under mu_, before size_ passes i; read
  // without the lock below size_.
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<size_t> size_{0};
  const Make make_;
  absl::Mutex mu_;  // serialises creation
};

}  // namespace stateside::admin::internal

#endif  // STATESIDE_SIDECAR_ADMIN_SHARDED_METRICS_H_

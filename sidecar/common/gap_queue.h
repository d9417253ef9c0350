// GapQueue: one reader's bounded queue of shared values, with the losses it
// must be told of in their place (a realtime Subscribe stream's events, a
// session event watcher's changes). Bounded by a number of values and of
// bytes: when the reader is too slow, new values are dropped for this
// reader only, counted, and one overflow notice takes their place, so
// memory never grows without bound and the reader learns what it lost.
// Loss windows of the producer (a lost Redis subscription) are queued as
// notices too, back-to-back ones of one reason merged.
//
// Thread-safe. `wake` runs (on the pushing or closing thread, without the
// queue's lock) whenever the queue turns non-empty or closes; the consumer
// then Pop()s until empty.
#ifndef STATESIDE_SIDECAR_COMMON_GAP_QUEUE_H_
#define STATESIDE_SIDECAR_COMMON_GAP_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stateside {

// Values may have been lost.
template <typename Reason>
struct LossNotice {
  Reason reason{};
  uint64_t dropped = 0;  // the overflow reason: values dropped for this reader
  absl::Time from;
  absl::Time to;
};

// Value: a cheap-to-copy handle (a shared_ptr); kOverflow: the Reason of the
// notices Push makes.
template <typename Value, typename Reason, Reason kOverflow>
class GapQueue {
 public:
  using Notice = LossNotice<Reason>;
  // Exactly one of the two is set.
  struct Item {
    Value value{};
    std::optional<Notice> gap;
  };

  // max_values >= 1 (0 is taken as 1).
  GapQueue(size_t max_values, size_t max_bytes, std::function<void()> wake)
      : max_values_(std::max<size_t>(max_values, 1)),
        max_bytes_(max_bytes),
        wake_(std::move(wake)) {}
  GapQueue(const GapQueue&) = delete;
  GapQueue& operator=(const GapQueue&) = delete;

  // Queues `value` (of `bytes`); false if it was dropped (full or closed).
  // An empty queue takes one value of any size, so a single large value is
  // never refused for its size alone.
  bool Push(Value value, size_t bytes, absl::Time now) {
    bool was_empty;
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return false;
      if (values_ >= max_values_ || (values_ > 0 && bytes_ + bytes > max_bytes_)) {
        if (dropped_ == 0) first_drop_ = now;
        last_drop_ = now;
        ++dropped_;
        ++dropped_total_;
        return false;
      }
      was_empty = !ReadyLocked();
      if (dropped_ > 0) items_.push_back(Entry{Item{Value{}, TakeOverflowLocked()}, 0});
      items_.push_back(Entry{Item{std::move(value), std::nullopt}, bytes});
      bytes_ += bytes;
      ++values_;
    }
    if (was_empty && wake_) wake_();
    return true;
  }

  // Queues a loss window; one right after another of the same reason merges.
  void PushGap(const Notice& gap) {
    bool was_empty;
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      was_empty = !ReadyLocked();
      if (!items_.empty() && items_.back().item.gap.has_value() &&
          items_.back().item.gap->reason == gap.reason) {
        Notice& last = *items_.back().item.gap;
        last.dropped += gap.dropped;
        last.from = std::min(last.from, gap.from);
        last.to = std::max(last.to, gap.to);
      } else {
        items_.push_back(Entry{Item{Value{}, gap}, 0});
      }
    }
    if (was_empty && wake_) wake_();
  }

  // The next item, or nullopt when empty. Drops since the last queued value
  // come out as one overflow notice, in the place the values would have had.
  std::optional<Item> Pop() {
    absl::MutexLock lock(&mu_);
    if (items_.empty()) {
      if (dropped_ == 0) return std::nullopt;
      // Everything queued went out; what was dropped came after it.
      return Item{Value{}, TakeOverflowLocked()};
    }
    Entry entry = std::move(items_.front());
    items_.pop_front();
    if (!entry.item.gap.has_value()) {
      bytes_ -= entry.bytes;
      --values_;
    }
    return std::move(entry.item);
  }

  // Pushes are refused from now on; Pop still drains what is queued. Wakes
  // the consumer, which ends its stream once the queue is empty.
  void Close() {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      closed_ = true;
    }
    if (wake_) wake_();
  }
  bool closed() const {
    absl::MutexLock lock(&mu_);
    return closed_;
  }
  // Values queued.
  size_t depth() const {
    absl::MutexLock lock(&mu_);
    return values_;
  }
  uint64_t dropped_total() const {
    absl::MutexLock lock(&mu_);
    return dropped_total_;
  }

 private:
  struct Entry {
    Item item;
    size_t bytes;  // of a value; 0 for a notice
  };

  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !items_.empty() || dropped_ > 0;
  }
  Notice TakeOverflowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Notice gap{kOverflow, dropped_, first_drop_, last_drop_};
    dropped_ = 0;
    return gap;
  }

  // Constant after construction.
  const size_t max_values_;
  const size_t max_bytes_;
  const std::function<void()> wake_;

  mutable absl::Mutex mu_;
  std::deque<Entry> items_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;   // of the values in items_
  size_t values_ ABSL_GUARDED_BY(mu_) = 0;  // values (not notices) in items_
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;  // since the last queued value
  absl::Time first_drop_ ABSL_GUARDED_BY(mu_);
  absl::Time last_drop_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_total_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_GAP_QUEUE_H_

// LoadLimit: a count with a cap, for radar-app's open connections and its
// queued work. TryAcquire() takes one unit, or fails at the cap (the caller
// answers 503); the Slot gives the unit back when it goes. Thread-safe
// (one atomic); a Slot has one owner and may move between threads.
//
// A Slot shares the count with its LoadLimit, so it may outlive the limit:
// at exit, handlers that never ran (a sidecar answer posted to the stopped
// I/O context, a timer's wait) hold connections with their slots until the
// io_context is destroyed, after the server that owns the limits.
#ifndef STATESIDE_APP_LOAD_LIMIT_H_
#define STATESIDE_APP_LOAD_LIMIT_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>

namespace radar {

class LoadLimit {
  struct Count {
    explicit Count(size_t max) : max(max) {}
    const size_t max;
    std::atomic<size_t> in_use{0};
  };

 public:
  class Slot {
   public:
    Slot() = default;  // holds nothing
    Slot(Slot&& other) noexcept = default;
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        Release();
        count_ = std::move(other.count_);
      }
      return *this;
    }
    ~Slot() { Release(); }
    bool held() const { return count_ != nullptr; }
    void Release() {
      if (count_ != nullptr) count_->in_use.fetch_sub(1, std::memory_order_relaxed);
      count_.reset();
    }

   private:
    friend class LoadLimit;
    explicit Slot(std::shared_ptr<Count> count) : count_(std::move(count)) {}
    std::shared_ptr<Count> count_;
  };

  explicit LoadLimit(size_t max) : count_(std::make_shared<Count>(max)) {}
  LoadLimit(const LoadLimit&) = delete;
  LoadLimit& operator=(const LoadLimit&) = delete;

  // A held Slot, or an empty one at the cap.
  Slot TryAcquire() {
    // Add first, then check: two racing callers cannot both pass the cap.
    if (count_->in_use.fetch_add(1, std::memory_order_relaxed) >= count_->max) {
      count_->in_use.fetch_sub(1, std::memory_order_relaxed);
      return Slot();
    }
    return Slot(count_);
  }
  size_t in_use() const { return count_->in_use.load(std::memory_order_relaxed); }

 private:
  const std::shared_ptr<Count> count_;
};

}  // namespace radar

#endif  // STATESIDE_APP_LOAD_LIMIT_H_

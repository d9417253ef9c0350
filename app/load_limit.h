// LoadLimit: a count with a cap, for radar-app's open connections and its
// queued work. TryAcquire() takes one unit, or fails at the cap (the caller
// answers 503); the Slot gives the unit back when it goes. Thread-safe
// (one atomic); a Slot has one owner and may move between threads.
#ifndef STATESIDE_APP_LOAD_LIMIT_H_
#define STATESIDE_APP_LOAD_LIMIT_H_

#include <atomic>
#include <cstddef>
#include <utility>

namespace radar {

class LoadLimit {
 public:
  class Slot {
   public:
    Slot() = default;  // holds nothing
    Slot(Slot&& other) noexcept : limit_(std::exchange(other.limit_, nullptr)) {}
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        Release();
        limit_ = std::exchange(other.limit_, nullptr);
      }
      return *this;
    }
    ~Slot() { Release(); }
    bool held() const { return limit_ != nullptr; }
    void Release() {
      if (limit_ != nullptr) limit_->in_use_.fetch_sub(1, std::memory_order_relaxed);
      limit_ = nullptr;
    }

   private:
    friend class LoadLimit;
    explicit Slot(LoadLimit* limit) : limit_(limit) {}
    LoadLimit* limit_ = nullptr;
  };

  explicit LoadLimit(size_t max) : max_(max) {}
  LoadLimit(const LoadLimit&) = delete;
  LoadLimit& operator=(const LoadLimit&) = delete;

  // A held Slot, or an empty one at the cap. The limit must outlive it.
  Slot TryAcquire() {
    // Add first, then check: two racing callers cannot both pass the cap.
    if (in_use_.fetch_add(1, std::memory_order_relaxed) >= max_) {
      in_use_.fetch_sub(1, std::memory_order_relaxed);
      return Slot();
    }
    return Slot(this);
  }
  size_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  const size_t max_;
  std::atomic<size_t> in_use_{0};
};

}  // namespace radar

#endif  // STATESIDE_APP_LOAD_LIMIT_H_

// CallPool: a bounded free list of per-call objects, so a transport's
// connection or stream makes one object per call in flight at its busiest,
// not one per call. Take reuses a released object (or makes one); Release
// keeps it for the next Take, up to `max_kept`, and deletes the rest, so a
// burst does not stay in memory once it is over.
//
// Not thread-safe: the owner serializes Take and Release (the lock it
// already holds around a call's start and end, or its single thread). An
// object taken and not released belongs to its caller; the pool deletes only
// the ones it keeps.
#ifndef STATESIDE_SIDECAR_COMMON_CALL_POOL_H_
#define STATESIDE_SIDECAR_COMMON_CALL_POOL_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace stateside {

template <typename T>
class CallPool {
 public:
  // `made` (may be null) counts the objects this pool makes (for tests and
  // the benchmarks: a pool that reuses makes none after its first calls).
  explicit CallPool(size_t max_kept, std::atomic<size_t>* made = nullptr)
      : max_kept_(max_kept), made_(made) {}
  CallPool(const CallPool&) = delete;
  CallPool& operator=(const CallPool&) = delete;

  // A kept object, or a new T(args...).
  template <typename... Args>
  T* Take(Args&&... args) {
    if (free_.empty()) {
      if (made_ != nullptr) made_->fetch_add(1, std::memory_order_relaxed);
      return new T(std::forward<Args>(args)...);
    }
    T* object = free_.back().release();
    free_.pop_back();
    return object;
  }

  void Release(T* object) {
    if (free_.size() >= max_kept_) {
      delete object;
      return;
    }
    free_.emplace_back(object);
  }

  size_t kept() const { return free_.size(); }

 private:
  const size_t max_kept_;
  std::atomic<size_t>* const made_;
  std::vector<std::unique_ptr<T>> free_;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_CALL_POOL_H_

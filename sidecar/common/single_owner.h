// SingleOwner: the rule behind a field group that is owned, not locked. One
// party at a time holds the fields and hands them on explicitly — e.g. a
// stream's write buffer, filled by whichever thread decided on a write and
// untouched by anyone else until that write's completion. Acquire() and
// Release() mark the hand-overs and AssertHeld() the uses; in debug builds a
// broken rule (a second Acquire before the Release, a use or a Release while
// nobody holds the fields) fails an assert. Release builds: no state, no
// cost. Thread-safe.
#ifndef STATESIDE_SIDECAR_COMMON_SINGLE_OWNER_H_
#define STATESIDE_SIDECAR_COMMON_SINGLE_OWNER_H_

#include <atomic>
#include <cassert>

namespace stateside {

class SingleOwner {
 public:
  void Acquire() {
    assert(!held_.exchange(true, std::memory_order_acq_rel) && "already held");
  }
  void Release() {
    assert(held_.exchange(false, std::memory_order_acq_rel) && "released while not held");
  }
  void AssertHeld() const {
    assert(held_.load(std::memory_order_acquire) && "used while not held");
  }

 private:
#ifndef NDEBUG
  std::atomic<bool> held_{false};
#endif
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_SINGLE_OWNER_H_

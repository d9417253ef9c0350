// A Clock that moves only when a test advances it. Thread-safe.
#ifndef STATESIDE_TESTS_SUPPORT_FAKE_CLOCK_H_
#define STATESIDE_TESTS_SUPPORT_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "sidecar/common/clock.h"

namespace stateside::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_FAKE_CLOCK_H_

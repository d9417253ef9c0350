// Deterministic RandomSource for crypto tests: a byte counter that can be
// told to fail. Thread-safe.
#ifndef STATESIDE_TESTS_UNIT_CRYPTO_FAKE_RANDOM_H_
#define STATESIDE_TESTS_UNIT_CRYPTO_FAKE_RANDOM_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "sidecar/crypto/random.h"

namespace stateside::testing {

class CountingRandom final : public RandomSource {
 public:
  // Writes next, next + 1, ... (mod 256); or UNAVAILABLE while failing.
  absl::Status Fill(char* out, size_t n) override {
    absl::MutexLock lock(&mu_);
    if (fail_) return absl::UnavailableError("fake random source failure");
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(next_++);
    return absl::OkStatus();
  }
  void set_fail(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_ = fail;
  }
  void Reset(uint8_t next = 0) {
    absl::MutexLock lock(&mu_);
    next_ = next;
  }

 private:
  absl::Mutex mu_;
  uint8_t next_ ABSL_GUARDED_BY(mu_) = 0;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_CRYPTO_FAKE_RANDOM_H_

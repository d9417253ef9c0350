// The time source. Everything that reads the time (TTLs, drain deadlines,
// backoff, heartbeats) takes a Clock so tests can advance a fake one instead of
// sleeping. Thread-safe: implementations must allow concurrent Now().
#ifndef STATESIDE_SIDECAR_COMMON_CLOCK_H_
#define STATESIDE_SIDECAR_COMMON_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace stateside {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// Wall-clock time.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_CLOCK_H_

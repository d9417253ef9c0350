// A dependency's up/down state as readiness should see it: still up until it
// has been down continuously for the debounce, so that one blip (a Redis
// restart, a dropped connection that comes right back) does not take every
// pod out of its Service at once. A dependency that was never up is down at
// once: a sidecar that starts without Redis is not ready.
//
// A pure function of the reports and the times given: no clock, no thread.
// Thread-compatible (the Server guards it with its mutex).
#ifndef STATESIDE_SIDECAR_SERVER_READINESS_DEBOUNCE_H_
#define STATESIDE_SIDECAR_SERVER_READINESS_DEBOUNCE_H_

#include "absl/time/time.h"

namespace stateside {

class ReadinessDebounce {
 public:
  // REQUIRES: debounce >= 0 (zero: down at once).
  explicit ReadinessDebounce(absl::Duration debounce) : debounce_(debounce) {}

  // The dependency's state as observed at `now`. A down report while already
  // down keeps the outage's start: the debounce counts from the first one.
  void Report(bool up, absl::Time now) {
    if (up) {
      up_ = true;
      return;
    }
    if (up_) {
      up_ = false;
      was_up_ = true;
      down_since_ = now;
    }
  }

  // Whether readiness counts the dependency as up at `now`.
  bool Up(absl::Time now) const {
    return up_ || (was_up_ && now - down_since_ < debounce_);
  }

  // Whether Up() will turn false later without another report (an outage
  // within its debounce): someone must look again by down_since + debounce.
  bool Pending(absl::Time now) const { return !up_ && Up(now); }

  // How long the current outage has lasted at `now` (zero while up).
  absl::Duration DownFor(absl::Time now) const {
    return up_ || !was_up_ ? absl::ZeroDuration() : now - down_since_;
  }

 private:
  const absl::Duration debounce_;
  bool up_ = false;
  bool was_up_ = false;  // the current outage began after an up report
  absl::Time down_since_ = absl::InfinitePast();
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_READINESS_DEBOUNCE_H_

// WaitFor: polling with a deadline.
#include "tests/support/wait.h"

#include "absl/time/clock.h"

namespace stateside::testing {

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
             absl::Duration poll) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(poll);
  }
}

}  // namespace stateside::testing

// Waiting on a condition with a deadline: the only way tests wait.
#ifndef STATESIDE_TESTS_SUPPORT_WAIT_H_
#define STATESIDE_TESTS_SUPPORT_WAIT_H_

#include <functional>

#include "absl/time/time.h"

namespace stateside::testing {

// Polls `condition` (every `poll`, starting immediately) until it is true or
// `timeout` passes. Returns the last result. For conditions on other
// processes, which cannot notify us.
bool WaitFor(const std::function<bool()>& condition,
             absl::Duration timeout = absl::Seconds(10),
             absl::Duration poll = absl::Milliseconds(5));

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_WAIT_H_

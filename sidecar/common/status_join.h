// StatusJoin: one answer for several asynchronous parts. Each part gets a
// copy of the callable JoinStatuses returns and calls it once; `done` runs
// once, on the thread of the last part to answer, with the first error any
// part reported (else `initial`). Thread-safe: parts may answer on any
// threads, in any order.
#ifndef STATESIDE_SIDECAR_COMMON_STATUS_JOIN_H_
#define STATESIDE_SIDECAR_COMMON_STATUS_JOIN_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace stateside {

// REQUIRES: parts > 0, and exactly `parts` calls of the result.
inline std::function<void(absl::Status)> JoinStatuses(
    size_t parts, absl::AnyInvocable<void(absl::Status) &&> done,
    absl::Status initial = absl::OkStatus()) {
  struct Join {
    absl::Mutex mu;
    size_t pending ABSL_GUARDED_BY(mu) = 0;
    absl::Status status ABSL_GUARDED_BY(mu);
    absl::AnyInvocable<void(absl::Status) &&> done ABSL_GUARDED_BY(mu);
  };
  auto join = std::make_shared<Join>();
  {
    absl::MutexLock lock(&join->mu);
    join->pending = parts;
    join->status = std::move(initial);
    join->done = std::move(done);
  }
  return [join](absl::Status status) {
    absl::AnyInvocable<void(absl::Status) &&> done;
    absl::Status result;
    {
      absl::MutexLock lock(&join->mu);
      if (join->status.ok() && !status.ok()) join->status = std::move(status);
      if (--join->pending > 0) return;
      done = std::move(join->done);
      result = join->status;
    }
    if (done) std::move(done)(std::move(result));
  };
}

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_STATUS_JOIN_H_

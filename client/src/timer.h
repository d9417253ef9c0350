// A thread that runs tasks at given times: the deadline sweeps of the Pipe
// lanes and the frame socket (deadline_sweep.h: one entry per transport, not
// per call) and the waits between retries of Async calls.
// Thread-safe. Tasks run one at a time on the timer's thread (after Stop, on
// the caller's), never under the timer's lock: a task may Schedule or Cancel.
#ifndef STATESIDE_CLIENT_SRC_TIMER_H_
#define STATESIDE_CLIENT_SRC_TIMER_H_

#include <cstdint>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stateside::client_internal {

class Timer {
 public:
  using TaskId = uint64_t;
  using Task = absl::AnyInvocable<void()>;

  Timer();
  ~Timer();  // Stop()
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Runs `task` at `when` (at once if it has passed). After Stop, runs it
  // on this thread before returning (and returns 0).
  TaskId Schedule(absl::Time when, Task task);
  // true if the task was still waiting (it will not run); false if it has
  // run, is running, or is unknown.
  bool Cancel(TaskId id);
  // Ends the thread, then runs every task still waiting, in time order, on
  // this thread: each runs exactly once whatever happens. Idempotent.
  void Stop();

 private:
  void Run();

  absl::Mutex mu_;
  // (when, id) orders the tasks; ids break ties in scheduling order.
  std::map<std::pair<absl::Time, TaskId>, Task> tasks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TaskId, absl::Time> when_ ABSL_GUARDED_BY(mu_);
  TaskId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::CondVar cv_;  // a sooner task, or Stop
  // What Run sleeps until (InfinitePast while it runs tasks, InfiniteFuture
  // while there are none).
  absl::Time wake_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_TIMER_H_

// One timer entry for the deadlines of every call in flight on a transport
// (a frame socket connection, a Pipe lane), instead of one entry per call:
// a call answered in time then costs the timer nothing, neither a schedule
// nor a cancel, and no task is allocated per call.
//
// The entry waits for a time no later than the earliest deadline that may
// still be pending. When it fires, the owner's sweep ends the calls that are
// due and reports the earliest deadline left (Fired), for which the entry is
// scheduled again, but never sooner than kSlack from now: when many calls
// expire (a sidecar that stalls with thousands in flight, their deadlines
// a few microseconds apart), one sweep ends all those due within kSlack
// instead of one sweep, each looking at every call in flight, per call. So a
// call ends at most kSlack after its deadline. Answered calls simply leave
// the owner's table: under a steady load the entry fires about once per
// call timeout (the earliest pending deadline keeps moving on).
//
// Not thread-safe on its own: every method runs under the owner's lock,
// which the sweep task takes itself (lock order: the owner's lock, then the
// timer's). REQUIRES: the timer is stopped only after the owner stopped
// calling Add (a Schedule after Stop would run the sweep at once, under the
// owner's lock).
#ifndef STATESIDE_CLIENT_SRC_DEADLINE_SWEEP_H_
#define STATESIDE_CLIENT_SRC_DEADLINE_SWEEP_H_

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "client/src/timer.h"

namespace stateside::client_internal {

class DeadlineSweep {
 public:
  static constexpr absl::Duration kSlack = absl::Milliseconds(1);

  // `sweep` runs on the timer's thread, without the owner's lock: it takes
  // it, ends the calls due and calls Fired.
  DeadlineSweep(Timer* timer, absl::AnyInvocable<void()> sweep);
  DeadlineSweep(const DeadlineSweep&) = delete;
  DeadlineSweep& operator=(const DeadlineSweep&) = delete;

  // A call with this deadline is now in flight.
  void Add(absl::Time deadline);
  // From the sweep: `next` is the earliest deadline still pending
  // (InfiniteFuture: none, and the entry rests until the next Add).
  void Fired(absl::Time next);
  // Cancels the entry (a sweep already running still takes the owner's
  // lock and finds what is left).
  void Cancel();

  // The sweep's scan, for an owner whose `pending` maps ids to entries with
  // a `deadline` and a `done`: moves the `done` of each entry due by `now`
  // into `due` and erases the entry (its id may stay in the owner's queues,
  // which skip ids no longer pending); returns the earliest deadline left
  // (InfiniteFuture: none), for Fired.
  template <typename Pending, typename Done>
  static absl::Time TakeDue(Pending& pending, absl::Time now, std::vector<Done>* due) {
    absl::Time next = absl::InfiniteFuture();
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second.deadline <= now) {
        due->push_back(std::move(it->second.done));
        pending.erase(it++);
      } else {
        next = std::min(next, it->second.deadline);
        ++it;
      }
    }
    return next;
  }

  // When the entry fires (InfiniteFuture: not scheduled). For tests.
  absl::Time scheduled_at() const { return at_; }

 private:
  void ScheduleAt(absl::Time when);

  Timer* const timer_;
  absl::AnyInvocable<void()> sweep_;
  Timer::TaskId id_ = 0;
  absl::Time at_ = absl::InfiniteFuture();
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_DEADLINE_SWEEP_H_

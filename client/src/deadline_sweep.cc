#include "client/src/deadline_sweep.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace stateside::client_internal {

DeadlineSweep::DeadlineSweep(Timer* timer, absl::AnyInvocable<void()> sweep)
    : timer_(timer), sweep_(std::move(sweep)) {}

void DeadlineSweep::Add(absl::Time deadline) {
  if (deadline < at_) ScheduleAt(deadline);
}

void DeadlineSweep::Fired(absl::Time next) {
  // The entry that ran is spent, but a sweep may also come from an entry
  // replaced meanwhile: cancel whichever is current (a no-op for one that
  // has run) so that exactly one stays.
  Cancel();
  if (next != absl::InfiniteFuture()) ScheduleAt(std::max(next, absl::Now() + kSlack));
}

void DeadlineSweep::Cancel() {
  if (id_ != 0) timer_->Cancel(id_);
  id_ = 0;
  at_ = absl::InfiniteFuture();
}

void DeadlineSweep::ScheduleAt(absl::Time when) {
  if (id_ != 0) timer_->Cancel(id_);
  at_ = when;
  id_ = timer_->Schedule(when, [this] { sweep_(); });
}

}  // namespace stateside::client_internal

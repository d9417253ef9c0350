// WatchDrainReactor: the write queue of one WatchDrain stream.
#include "sidecar/rpc/watch_drain.h"

#include <grpcpp/support/status.h>

#include <utility>

#include "sidecar/rpc/convert.h"

namespace stateside::rpc {
namespace {

v1::DrainState ToProtoState(DrainState state) {
  switch (state) {
    case DrainState::kServing: return v1::DRAIN_STATE_SERVING;
    case DrainState::kDraining: return v1::DRAIN_STATE_DRAINING;
    // HOLDING and STOPPED are not in the proto: for the app, "drained".
    case DrainState::kDrained:
    case DrainState::kHolding:
    case DrainState::kStopped: return v1::DRAIN_STATE_DRAINED;
  }
  return v1::DRAIN_STATE_UNSPECIFIED;
}

}  // namespace

WatchDrainReactor::WatchDrainReactor(DrainController* controller)
    : controller_(controller), shared_(std::make_shared<Shared>()) {}

WatchDrainReactor* WatchDrainReactor::Start(DrainController* controller,
                                            bool observer) {
  auto* reactor = new WatchDrainReactor(controller);
  std::shared_ptr<Shared> shared = reactor->shared_;
  {
    absl::MutexLock lock(&shared->mu);
    shared->reactor = reactor;
  }
  // AddWatcher calls back at once with the current state; later calls come
  // from whichever thread moved the drain on. The reactor is alive until
  // OnDone, which clears shared->reactor under the same mutex first. From
  // here on `reactor` may be gone: only `shared` is used.
  const uint64_t id = controller->AddWatcher(
      [shared](DrainState state, absl::Time deadline) {
        WatchDrainReactor* self = nullptr;
        Next next = Next::kNothing;
        {
          absl::MutexLock lock(&shared->mu);
          self = shared->reactor;
          if (self == nullptr) return;
          self->shared_->mu.AssertHeld();  // the same Shared: tells the analysis
          self->OnState(state, deadline);
          next = self->NextLocked();
        }
        // An action decided under the lock keeps the reactor alive: OnDone
        // comes only after our Finish, and after OnWriteDone of our write.
        self->Do(next);
      },
      observer);
  bool already_done = false;
  {
    absl::MutexLock lock(&shared->mu);
    already_done = shared->done;
    shared->watcher_id = id;
  }
  // The stream ended before we knew the id: OnDone could not remove it.
  if (already_done) controller->RemoveWatcher(id);
  return reactor;
}

void WatchDrainReactor::OnState(DrainState state, absl::Time deadline) {
  const int proto_state = ToProtoState(state);
  if (finished_ || terminal_written_ || proto_state <= last_state_) return;
  last_state_ = proto_state;
  v1::DrainEvent event;
  event.set_state(static_cast<v1::DrainState>(proto_state));
  if (proto_state != v1::DRAIN_STATE_SERVING && deadline != absl::InfinitePast() &&
      deadline != absl::InfiniteFuture()) {
    ToProto(deadline, event.mutable_deadline());
  }
  pending_ = std::move(event);  // coalesce: the latest state wins
}

WatchDrainReactor::Next WatchDrainReactor::NextLocked() {
  if (writing_ || finished_) return Next::kNothing;
  if (!cancelled_ && !terminal_written_ && pending_.has_value()) {
    current_ = *std::move(pending_);
    pending_.reset();
    writing_ = true;
    terminal_written_ = current_.state() == v1::DRAIN_STATE_DRAINED;
    return Next::kWrite;
  }
  if (cancelled_ || terminal_written_) {
    finished_ = true;
    return cancelled_ ? Next::kFinishCancelled : Next::kFinishOk;
  }
  return Next::kNothing;
}

void WatchDrainReactor::Do(Next next) {
  switch (next) {
    case Next::kNothing: return;
    case Next::kWrite: return StartWrite(&current_);
    case Next::kFinishOk: return Finish(grpc::Status::OK);
    case Next::kFinishCancelled: return Finish(grpc::Status::CANCELLED);
  }
}

void WatchDrainReactor::OnWriteDone(bool ok) {
  Next next;
  {
    absl::MutexLock lock(&shared_->mu);
    writing_ = false;
    if (!ok) cancelled_ = true;  // the stream is broken: end it
    next = NextLocked();
  }
  Do(next);
}

void WatchDrainReactor::OnCancel() {
  Next next;
  {
    absl::MutexLock lock(&shared_->mu);
    cancelled_ = true;
    next = NextLocked();  // finishes now, or after the write in flight
  }
  Do(next);
}

void WatchDrainReactor::OnDone() {
  uint64_t id = 0;
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->reactor = nullptr;
    shared_->done = true;
    id = shared_->watcher_id;
  }
  // May end the app drain (no watcher left); never blocks.
  if (id != 0) controller_->RemoveWatcher(id);
  delete this;
}

}  // namespace stateside::rpc

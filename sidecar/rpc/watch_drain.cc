// WatchDrainReactor: the write queue of one WatchDrain stream.
#include "sidecar/rpc/watch_drain.h"

#include <grpcpp/support/status.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "sidecar/crypto/random.h"
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

// A fresh drain token, "" if the system's random source fails (the watcher
// then reports without one, as before API revision 3).
std::string NewDrainToken() {
  static RandomSource* const random = crypto::NewSecureRandom().release();
  absl::StatusOr<std::string> bytes = RandomBytes(*random, 16);
  return bytes.ok() ? absl::BytesToHexString(*bytes) : std::string();
}

}  // namespace

WatchDrainReactor::WatchDrainReactor(DrainController* controller, std::string token)
    : controller_(controller), token_(std::move(token)) {}

WatchDrainReactor* WatchDrainReactor::Start(DrainController* controller,
                                            bool observer) {
  auto* reactor = new WatchDrainReactor(controller, observer ? std::string() : NewDrainToken());
  std::shared_ptr<Shared> shared = reactor->shared_;
  // AddWatcher calls back at once with the current state; later calls come
  // from whichever thread moved the drain on. From here on `reactor` may be
  // gone: only `shared` is used.
  const uint64_t id = controller->AddWatcher(
      [shared](DrainState state, absl::Time deadline) {
        Wake(shared, [&](StreamReactor* base) {
          auto* self = static_cast<WatchDrainReactor*>(base);
          self->shared_->mu.AssertHeld();  // Wake holds it
          self->OnState(state, deadline);
        });
      },
      observer, reactor->token_);
  bool already_done = false;
  {
    absl::MutexLock lock(&shared->mu);
    already_done = shared->extra.done;
    shared->extra.watcher_id = id;
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
  if (proto_state == v1::DRAIN_STATE_DRAINING) event.set_drain_token(token_);
  pending_ = std::move(event);  // coalesce: the latest state wins
}

WatchDrainReactor::Step WatchDrainReactor::NextLocked() {
  Step step;
  if (writing_ || finished_) return step;
  if (!cancelled_ && !terminal_written_ && pending_.has_value()) {
    terminal_written_ = pending_->state() == v1::DRAIN_STATE_DRAINED;
    *BeginWriteLocked() = *std::move(pending_);
    pending_.reset();
    step.write = true;
    return step;
  }
  if (cancelled_ || terminal_written_) {
    finished_ = true;
    step.finish = true;
    step.status = cancelled_ ? grpc::Status::CANCELLED : grpc::Status::OK;
  }
  return step;
}

void WatchDrainReactor::OnDone() {
  uint64_t id = 0;
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->reactor = nullptr;  // Detach, with the slot under the same lock
    shared_->extra.done = true;
    id = shared_->extra.watcher_id;
  }
  // May end the app drain (no watcher left); never blocks.
  if (id != 0) controller_->RemoveWatcher(id);
  delete this;
}

}  // namespace stateside::rpc

// LifecycleService.WatchDrain: one server-streaming reactor per watcher. It
// registers with the DrainController on start and streams each state change
// (SERVING first, DRAINING with the deadline, then DRAINED), then finishes
// the stream with OK. At most one write is in flight; states only move
// forward, so a change that arrives during a write replaces any queued one
// (the app always sees the latest). Never blocks a gRPC or controller thread.
//
// Thread-safety: controller callbacks, OnWriteDone and OnCancel may race;
// all shared fields are under the Shared mutex. OnDone deletes the reactor.
#ifndef STATESIDE_SIDECAR_RPC_WATCH_DRAIN_H_
#define STATESIDE_SIDECAR_RPC_WATCH_DRAIN_H_

#include <grpcpp/support/server_callback.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/lifecycle/drain_controller.h"
#include "stateside/v1/lifecycle.pb.h"

namespace stateside::rpc {

class WatchDrainReactor final : public grpc::ServerWriteReactor<v1::DrainEvent> {
 public:
  // Registers with `controller` (which must outlive the call) and writes
  // the current state at once.
  // An observer is not waited for by the drain (see lifecycle.proto).
  static WatchDrainReactor* Start(DrainController* controller, bool observer = false);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Outlives the reactor when the controller still holds a copy of the
  // callback: `reactor` is cleared (under `mu`) before the reactor goes.
  struct Shared {
    absl::Mutex mu;
    WatchDrainReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    uint64_t watcher_id ABSL_GUARDED_BY(mu) = 0;  // once AddWatcher returned
    bool done ABSL_GUARDED_BY(mu) = false;        // OnDone ran
  };

  // What to do once the lock is released (gRPC may run reactions inline).
  enum class Next { kNothing, kWrite, kFinishOk, kFinishCancelled };

  explicit WatchDrainReactor(DrainController* controller);
  ~WatchDrainReactor() override = default;

  // From the controller: queue `state`, start a write if none is in flight.
  void OnState(DrainState state, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);
  // Decides (under the lock) what to do next after a write or a change.
  Next NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);
  // Carries out `next` (outside the lock).
  void Do(Next next);

  DrainController* const controller_;
  const std::shared_ptr<Shared> shared_;

  v1::DrainEvent current_;  // alive until OnWriteDone
  std::optional<v1::DrainEvent> pending_ ABSL_GUARDED_BY(shared_->mu);
  bool writing_ ABSL_GUARDED_BY(shared_->mu) = false;
  bool terminal_written_ ABSL_GUARDED_BY(shared_->mu) = false;
  bool cancelled_ ABSL_GUARDED_BY(shared_->mu) = false;
  bool finished_ ABSL_GUARDED_BY(shared_->mu) = false;
  int last_state_ ABSL_GUARDED_BY(shared_->mu) = -1;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_WATCH_DRAIN_H_

// LifecycleService.WatchDrain: one server-streaming reactor per watcher. It
// registers with the DrainController on start and streams each state change
// (SERVING first, DRAINING with the deadline, then DRAINED), then finishes
// the stream with OK. At most one write is in flight; states only move
// forward, so a change that arrives during a write replaces any queued one
// (the app always sees the latest). Never blocks a gRPC or controller thread.
//
// Thread-safety: controller callbacks, OnWriteDone and OnCancel may race;
// all shared fields are under the Shared mutex (stream_reactor.h). OnDone
// deletes the reactor.
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
#include "sidecar/rpc/stream_reactor.h"
#include "stateside/v1/lifecycle.pb.h"

namespace stateside::rpc {

// Kept past the reactor's life: the controller's id for it, known only once
// AddWatcher returned, maybe after the stream ended.
struct WatcherSlot {
  uint64_t watcher_id = 0;  // once AddWatcher returned
  bool done = false;        // OnDone ran
};

class WatchDrainReactor final
    : public StreamReactor<grpc::ServerWriteReactor<v1::DrainEvent>, v1::DrainEvent,
                           WatcherSlot> {
 public:
  // Registers with `controller` (which must outlive the call) and writes
  // the current state at once.
  // An observer is not waited for by the drain (see lifecycle.proto).
  static WatchDrainReactor* Start(DrainController* controller, bool observer = false);

  void OnDone() override;

 private:
  WatchDrainReactor(DrainController* controller, std::string token);
  ~WatchDrainReactor() override = default;

  // From the controller: queue `state` (the write starts in NextLocked).
  void OnState(DrainState state, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);
  Step NextLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);

  DrainController* const controller_;
  // An app watcher's drain_token (128 random bits, hex), sent with DRAINING;
  // "" for an observer.
  const std::string token_;

  std::optional<v1::DrainEvent> pending_ ABSL_GUARDED_BY(shared_->mu);
  bool terminal_written_ ABSL_GUARDED_BY(shared_->mu) = false;
  int last_state_ ABSL_GUARDED_BY(shared_->mu) = -1;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_WATCH_DRAIN_H_

// The drain sequence as a state machine driven by an injected Clock:
//
//   SERVING ──OnSignal / StartDrain──► DRAINING (pre-stop: not ready, fully serving)
//           ──prestop delay──► DRAINING (watchers told, with a deadline)
//           ──all watchers reported / none watching / drain timeout──► DRAINED
//           ──shutdown work done──► STOPPED (Stopped(): exit 0)
//                             or ──► HOLDING, when the drain was asked to hold
//   HOLDING ──OnSignal──► STOPPED (at once: no second pre-stop delay)
//   past shutdown_timeout from the start, in any state but SERVING and
//   STOPPED (HOLDING included): forced exit, status 1.
//   A second signal skips the waiting (fast shutdown); a signal during the
//   shutdown work forces the exit.
//
// Holding: a drain requested with AfterDrain::kHoldUntilSignal (a Kubernetes
// preStop hook, `statesidectl drain --no-follow`) leaves the sidecar up
// after its shutdown work (deregistered, gRPC stopped, not ready) until its
// own SIGTERM: a native sidecar that exited before the app would be
// restarted mid-termination. The hold applies only while no signal has come:
// a signal that arrives first or during the drain (the classic layout, an
// operator) means the process is already being stopped, so it exits once
// drained, as without the hold. Which way the drain started changes nothing
// else: the pre-stop delay applies whether or not an app watches.
//
// The controller never sleeps and owns no thread: Tick() advances it to the
// clock's now and returns when it next needs a Tick. Production runs a small
// thread that calls Tick() at those times (server/drain_ticker.h); tests
// advance a fake clock and call Tick() themselves.
//
// Thread-safe. Actions and watcher callbacks run outside the lock, on the
// thread that caused them; they must not block.
#ifndef STATESIDE_SIDECAR_LIFECYCLE_DRAIN_CONTROLLER_H_
#define STATESIDE_SIDECAR_LIFECYCLE_DRAIN_CONTROLLER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/common/clock.h"

namespace stateside {

enum class DrainState { kServing, kDraining, kDrained, kHolding, kStopped };
std::string_view DrainStateName(DrainState state);

// What a drain request asks for once the drain is done (see the top).
enum class AfterDrain { kExit, kHoldUntilSignal };

struct DrainOptions {
  absl::Duration prestop_delay = absl::ZeroDuration();
  absl::Duration drain_timeout = absl::Seconds(10);
  absl::Duration shutdown_timeout = absl::Seconds(30);
};

// What the drain asks of the rest of the sidecar.
class DrainActions {
 public:
  virtual ~DrainActions() = default;
  // Readiness turns false (the first thing a drain does).
  virtual void SetReady(bool ready) = 0;
  // Flush pending writes, deregister, close Redis; then call
  // DrainController::ShutdownComplete(). Runs the work elsewhere: must not
  // block the caller. `fast`: a second signal asked to hurry.
  virtual void BeginShutdown(bool fast) = 0;
  // Exit the process now with this status (the hard timeout, or a signal
  // during shutdown).
  virtual void ForceExit(int status) = 0;
  // The drain is over (STOPPED): the process may exit, status 0. After the
  // shutdown work, or later, on the signal that ends a hold.
  virtual void Stopped() = 0;
  // For metrics and logs: the app drain ended after `waited`; `timed_out` if
  // the sidecar stopped waiting for ReportDrained.
  virtual void AppDrainFinished(absl::Duration waited, bool timed_out) {}
};

class DrainController {
 public:
  // Called with each state change (and once with the current state on
  // AddWatcher). `deadline` is set with kDraining once watchers are told.
  using WatchFn = std::function<void(DrainState state, absl::Time deadline)>;

  // REQUIRES: clock and actions outlive the controller.
  DrainController(const Clock* clock, DrainOptions options, DrainActions* actions);

  // A drain request from SIGTERM/SIGINT. The first starts the drain; the
  // second skips to a fast shutdown; one during the shutdown forces exit 1.
  void OnSignal(std::string_view name);
  // A drain request from LifecycleService.Drain or POST /drain (idempotent).
  // kHoldUntilSignal, from any request of the drain before its shutdown
  // work is done, makes it hold (unless a signal came already).
  void StartDrain(std::string_view reason, AfterDrain after = AfterDrain::kExit);
  // An app reports it has drained. With the token its watcher was added
  // with: counts once for that watcher however often it comes, and a token
  // no app watcher of this controller had is FAILED_PRECONDITION (reason
  // DRAIN_TOKEN_UNKNOWN) and counts for nothing. Without one ("", a client
  // before API revision 3): one more report each time.
  absl::Status ReportDrained(std::string_view token = {});
  // The shutdown work requested by BeginShutdown is done.
  void ShutdownComplete();

  // An app watcher is waited for (its ReportDrained ends the app drain); an
  // observer (statesidectl watch-drain, a dashboard) only follows the states.
  // `token` (an app watcher's; unique, non-empty) is what its
  // ReportDrained may carry; it stays valid after the watcher goes.
  uint64_t AddWatcher(WatchFn fn, bool observer = false, std::string token = {});
  void RemoveWatcher(uint64_t id);

  // Applies every timed transition due at clock->Now(). Returns the next time
  // Tick must run (absl::InfiniteFuture() if nothing is pending).
  absl::Time Tick();

  DrainState state() const;
  // The drain deadline told to watchers (InfinitePast before that).
  absl::Time deadline() const;
  bool draining() const { return state() != DrainState::kServing; }
  const DrainOptions& options() const { return options_; }

 private:
  // Deferred work collected under the lock and run after releasing it.
  struct Effects;
  void StartLocked(std::string_view why, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceLocked(absl::Time now, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnterDrainedLocked(bool timed_out, bool fast, absl::Time now, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetStateLocked(DrainState s, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(Effects& fx);

  // Constant after construction.
  const Clock* const clock_;
  const DrainOptions options_;
  DrainActions* const actions_;

  mutable absl::Mutex mu_;
  DrainState state_ ABSL_GUARDED_BY(mu_) = DrainState::kServing;
  int signals_ ABSL_GUARDED_BY(mu_) = 0;
  bool watchers_told_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time started_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time notify_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time hard_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Watchers present when they were told to drain; the app drain is over
  // when as many reports came (early ones count) or no watcher is left.
  int told_count_ ABSL_GUARDED_BY(mu_) = 0;
  int reports_ ABSL_GUARDED_BY(mu_) = 0;
  bool forced_ ABSL_GUARDED_BY(mu_) = false;  // ForceExit requested once
  // A request asked to hold after the drain; honoured while signals_ == 0.
  bool hold_requested_ ABSL_GUARDED_BY(mu_) = false;
  struct Watcher {
    WatchFn fn;
    bool observer = false;
    std::string token;
  };
  uint64_t next_watcher_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Watcher> watchers_ ABSL_GUARDED_BY(mu_);
  int app_watchers_ ABSL_GUARDED_BY(mu_) = 0;  // watchers_ that are not observers
  // The tokens of app watchers -> whether one reported: those present, and
  // those gone after they were told to drain (a report may follow).
  absl::flat_hash_map<std::string, bool> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_LIFECYCLE_DRAIN_CONTROLLER_H_

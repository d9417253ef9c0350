// DrainController: the drain sequence of docs/OPERATIONS.md as a clock-driven state
// machine. See the header for the transitions.
#include "sidecar/lifecycle/drain_controller.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "sidecar/common/error_reason.h"
#include "sidecar/common/string_view.h"

namespace stateside {

std::string_view DrainStateName(DrainState state) {
  switch (state) {
    case DrainState::kServing: return "serving";
    case DrainState::kDraining: return "draining";
    case DrainState::kDrained: return "drained";
    case DrainState::kHolding: return "holding";
    case DrainState::kStopped: return "stopped";
  }
  return "unknown";
}

struct DrainController::Effects {
  bool not_ready = false;
  std::vector<std::pair<WatchFn, DrainState>> notify;
  absl::Time deadline = absl::InfinitePast();
  std::optional<std::pair<absl::Duration, bool>> app_drain_finished;
  std::optional<bool> begin_shutdown;  // value: fast
  std::optional<int> force_exit;
  bool stopped = false;
};

DrainController::DrainController(const Clock* clock, DrainOptions options,
                                 DrainActions* actions)
    : clock_(clock), options_(options), actions_(actions) {}

void DrainController::OnSignal(std::string_view name) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    ++signals_;
    if (state_ == DrainState::kHolding) {
      // The signal the hold waited for: the work is done, exit now.
      SetStateLocked(DrainState::kStopped, fx);
      fx.stopped = true;
    } else if (signals_ == 1 || state_ == DrainState::kServing) {
      // Starts the drain, or joins the one a request started (that drain
      // then no longer holds: this is the signal it would wait for).
      StartLocked(name, fx);
    } else if (state_ == DrainState::kDraining) {
      // A second signal: stop waiting for the app, shut down now.
      EnterDrainedLocked(/*timed_out=*/false, /*fast=*/true, clock_->Now(), fx);
    } else if (state_ == DrainState::kDrained && !forced_) {
      // The shutdown work itself is stuck or too slow for the operator.
      forced_ = true;
      fx.force_exit = 1;
    }
    AdvanceLocked(clock_->Now(), fx);
  }
  Run(fx);
}

void DrainController::StartDrain(std::string_view reason, AfterDrain after) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    // Too late once the shutdown work is done: the process is exiting.
    if (after == AfterDrain::kHoldUntilSignal &&
        (state_ == DrainState::kServing || state_ == DrainState::kDraining ||
         state_ == DrainState::kDrained)) {
      hold_requested_ = true;
    }
    StartLocked(reason, fx);
    AdvanceLocked(clock_->Now(), fx);
  }
  Run(fx);
}

void DrainController::StartLocked(std::string_view why, Effects& fx) {
  if (state_ != DrainState::kServing) return;
  const absl::Time now = clock_->Now();
  state_ = DrainState::kDraining;
  started_ = now;
  notify_at_ = now + options_.prestop_delay;
  hard_deadline_ = now + options_.shutdown_timeout;
  fx.not_ready = true;
}

absl::Status DrainController::ReportDrained(std::string_view token) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    if (!token.empty()) {
      auto it = tokens_.find(Sv(token));
      if (it == tokens_.end()) {
        return WithReason(absl::FailedPreconditionError(
                              "drain_token: not a token of this sidecar's drain (a report "
                              "for another drain or another sidecar); nothing counted"),
                          "DRAIN_TOKEN_UNKNOWN", "drain_token");
      }
      if (it->second) return absl::OkStatus();  // a retry: counted already
      if (state_ == DrainState::kServing) return absl::OkStatus();
      it->second = true;
    } else if (state_ == DrainState::kServing) {
      return absl::OkStatus();  // nothing asked for it
    }
    ++reports_;
    AdvanceLocked(clock_->Now(), fx);
  }
  Run(fx);
  return absl::OkStatus();
}

void DrainController::ShutdownComplete() {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != DrainState::kDrained) return;
    if (hold_requested_ && signals_ == 0) {
      SetStateLocked(DrainState::kHolding, fx);
    } else {
      SetStateLocked(DrainState::kStopped, fx);
      fx.stopped = true;
    }
  }
  Run(fx);
}

uint64_t DrainController::AddWatcher(WatchFn fn, bool observer, std::string token) {
  Effects fx;
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = next_watcher_id_++;
    if (observer) token.clear();
    if (!token.empty()) tokens_.emplace(token, false);
    watchers_.emplace(id, Watcher{fn, observer, std::move(token)});
    if (!observer) ++app_watchers_;
    // During the pre-stop delay the app is told nothing yet: SERVING.
    DrainState visible = state_;
    if (state_ == DrainState::kDraining && !watchers_told_) visible = DrainState::kServing;
    fx.notify.emplace_back(std::move(fn), visible);
    fx.deadline = watchers_told_ ? deadline_ : absl::InfinitePast();
  }
  Run(fx);
  return id;
}

void DrainController::RemoveWatcher(uint64_t id) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    auto it = watchers_.find(id);
    if (it == watchers_.end()) return;
    if (!it->second.observer) --app_watchers_;
    // Its token was never handed out (it goes with DRAINING): forgotten, so
    // watchers that come and go while serving hold no memory.
    if (!watchers_told_ && !it->second.token.empty()) tokens_.erase(it->second.token);
    watchers_.erase(it);
    // A watcher that went away (its app exited or crashed) cannot report:
    // with no watcher left, nobody is waited for.
    AdvanceLocked(clock_->Now(), fx);
  }
  Run(fx);
}

absl::Time DrainController::Tick() {
  Effects fx;
  absl::Time next;
  {
    absl::MutexLock lock(&mu_);
    AdvanceLocked(clock_->Now(), fx);
    next = absl::InfiniteFuture();
    if (state_ == DrainState::kDraining) {
      next = watchers_told_ ? deadline_ : notify_at_;
    }
    if (state_ != DrainState::kServing && state_ != DrainState::kStopped && !forced_) {
      next = std::min(next, hard_deadline_);
    }
  }
  Run(fx);
  return next;
}

void DrainController::AdvanceLocked(absl::Time now, Effects& fx) {
  if (state_ == DrainState::kDraining && !watchers_told_ && now >= notify_at_) {
    watchers_told_ = true;
    deadline_ = notify_at_ + options_.drain_timeout;
    told_count_ = app_watchers_;
    for (const auto& [id, w] : watchers_) fx.notify.emplace_back(w.fn, DrainState::kDraining);
    fx.deadline = deadline_;
  }
  if (state_ == DrainState::kDraining && watchers_told_) {
    if (reports_ >= told_count_ || app_watchers_ == 0) {
      EnterDrainedLocked(/*timed_out=*/false, /*fast=*/false, now, fx);
    } else if (now >= deadline_) {
      EnterDrainedLocked(/*timed_out=*/true, /*fast=*/false, now, fx);
    }
  }
  if (state_ != DrainState::kServing && state_ != DrainState::kStopped && !forced_ &&
      now >= hard_deadline_) {
    forced_ = true;
    fx.force_exit = 1;
  }
}

void DrainController::EnterDrainedLocked(bool timed_out, bool fast, absl::Time now,
                                         Effects& fx) {
  const absl::Time waited_from = watchers_told_ ? notify_at_ : started_;
  fx.app_drain_finished.emplace(std::max(absl::ZeroDuration(), now - waited_from),
                                timed_out);
  SetStateLocked(DrainState::kDrained, fx);
  fx.begin_shutdown = fast;
}

void DrainController::SetStateLocked(DrainState s, Effects& fx) {
  state_ = s;
  for (const auto& [id, w] : watchers_) fx.notify.emplace_back(w.fn, s);
  fx.deadline = deadline_;
}

void DrainController::Run(Effects& fx) {
  if (fx.not_ready) actions_->SetReady(false);
  for (auto& [fn, state] : fx.notify) fn(state, fx.deadline);
  if (fx.app_drain_finished) {
    actions_->AppDrainFinished(fx.app_drain_finished->first,
                               fx.app_drain_finished->second);
  }
  if (fx.begin_shutdown) actions_->BeginShutdown(*fx.begin_shutdown);
  if (fx.force_exit) actions_->ForceExit(*fx.force_exit);
  if (fx.stopped) actions_->Stopped();
}

DrainState DrainController::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

absl::Time DrainController::deadline() const {
  absl::MutexLock lock(&mu_);
  return deadline_;
}

}  // namespace stateside

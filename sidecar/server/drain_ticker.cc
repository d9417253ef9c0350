// DrainTicker: Tick() at the due times, woken early by Poke().
#include "sidecar/server/drain_ticker.h"

namespace stateside {

DrainTicker::DrainTicker(DrainController* controller, const Clock* clock)
    : controller_(controller), clock_(clock), thread_([this] { Loop(); }) {}

DrainTicker::~DrainTicker() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void DrainTicker::Poke() {
  absl::MutexLock lock(&mu_);
  poked_ = true;
}

void DrainTicker::Loop() {
  for (;;) {
    const absl::Time next = controller_->Tick();
    absl::MutexLock lock(&mu_);
    const auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return poked_ || stop_;
    };
    if (next == absl::InfiniteFuture()) {
      mu_.Await(absl::Condition(&woken));
    } else {
      mu_.AwaitWithTimeout(absl::Condition(&woken), next - clock_->Now());
    }
    if (stop_) return;
    poked_ = false;
  }
}

}  // namespace stateside

// The thread that drives a DrainController: it calls Tick() at the times
// Tick() returns and again whenever Poke() reports an outside event (a
// signal, a Drain request), so timed transitions (pre-stop delay, drain
// timeout, hard shutdown timeout) happen on time without polling.
//
// Thread-safe: Poke() from any thread; the destructor stops and joins.
#ifndef STATESIDE_SIDECAR_SERVER_DRAIN_TICKER_H_
#define STATESIDE_SIDECAR_SERVER_DRAIN_TICKER_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/common/clock.h"
#include "sidecar/lifecycle/drain_controller.h"

namespace stateside {

class DrainTicker {
 public:
  // REQUIRES: controller and clock outlive the ticker. The waits are real
  // time computed from `clock` (a fake clock only ever advances via Poke).
  DrainTicker(DrainController* controller, const Clock* clock);
  ~DrainTicker();
  DrainTicker(const DrainTicker&) = delete;
  DrainTicker& operator=(const DrainTicker&) = delete;

  // Ticks the controller soon (its next due time may have moved earlier).
  void Poke();

 private:
  void Loop();

  DrainController* const controller_;
  const Clock* const clock_;
  absl::Mutex mu_;
  bool poked_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the fields above exist
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_DRAIN_TICKER_H_

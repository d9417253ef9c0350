// Runs a task every `interval` on its own thread until destroyed (e.g. the
// memory stores' expiry sweep). The wait is on a notification, so stopping
// is immediate. Thread-compatible (one owner); the task runs on the thread.
#ifndef STATESIDE_SIDECAR_SERVER_PERIODIC_H_
#define STATESIDE_SIDECAR_SERVER_PERIODIC_H_

#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace stateside {

class PeriodicTask {
 public:
  // REQUIRES: interval > 0. The first run is one interval after start.
  PeriodicTask(absl::Duration interval, std::function<void()> task);
  // Stops: waits for a run in progress, never starts another.
  ~PeriodicTask();
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

 private:
  const absl::Duration interval_;
  const std::function<void()> task_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_PERIODIC_H_

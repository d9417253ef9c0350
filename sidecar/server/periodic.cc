// PeriodicTask: a thread that waits on a notification between runs.
#include "sidecar/server/periodic.h"

#include <utility>

namespace stateside {

PeriodicTask::PeriodicTask(absl::Duration interval, std::function<void()> task)
    : interval_(interval), task_(std::move(task)) {
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(interval_)) task_();
  });
}

PeriodicTask::~PeriodicTask() {
  stop_.Notify();
  thread_.join();
}

}  // namespace stateside

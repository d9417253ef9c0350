#include "client/src/timer.h"

#include <vector>

namespace stateside::client_internal {

Timer::Timer() : thread_([this] { Run(); }) {}

Timer::~Timer() { Stop(); }

Timer::TaskId Timer::Schedule(absl::Time when, Task task) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      const TaskId id = next_id_++;
      auto it = tasks_.emplace(std::make_pair(when, id), std::move(task)).first;
      when_.emplace(id, when);
      if (it == tasks_.begin()) cv_.Signal();  // sooner than what Run waits for
      return id;
    }
  }
  task();
  return 0;
}

bool Timer::Cancel(TaskId id) {
  absl::MutexLock lock(&mu_);
  auto it = when_.find(id);
  if (it == when_.end()) return false;
  tasks_.erase(std::make_pair(it->second, id));
  when_.erase(it);
  return true;
}

void Timer::Run() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (tasks_.empty()) {
      cv_.Wait(&mu_);
      continue;
    }
    const absl::Time first = tasks_.begin()->first.first;
    if (absl::Now() < first) {
      // Schedule signals when a sooner task arrives, Stop when it is time.
      cv_.WaitWithDeadline(&mu_, first);
      continue;
    }
    auto node = tasks_.extract(tasks_.begin());
    when_.erase(node.key().second);
    mu_.Unlock();
    node.mapped()();
    mu_.Lock();
  }
}

void Timer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.Signal();
  }
  thread_.join();
  std::map<std::pair<absl::Time, TaskId>, Task> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(tasks_);
    when_.clear();
  }
  for (auto& [key, task] : left) task();
}

}  // namespace stateside::client_internal

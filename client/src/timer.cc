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
      tasks_.emplace(std::make_pair(when, id), std::move(task));
      when_.emplace(id, when);
      // Wake Run only for a task sooner than the one it sleeps until: a call
      // whose backstop replaced an answered one's must not cost a wake-up.
      if (when < wake_at_) cv_.Signal();
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
      wake_at_ = absl::InfiniteFuture();
      cv_.Wait(&mu_);
      wake_at_ = absl::InfinitePast();
      continue;
    }
    const absl::Time first = tasks_.begin()->first.first;
    if (absl::Now() < first) {
      // Schedule signals when a sooner task arrives, Stop when it is time.
      // `first` may have been cancelled meanwhile: waking for nothing then
      // is cheaper than a wake-up per Schedule.
      wake_at_ = first;
      cv_.WaitWithDeadline(&mu_, first);
      wake_at_ = absl::InfinitePast();
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

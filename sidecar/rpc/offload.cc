#include "sidecar/rpc/offload.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace stateside::rpc {

Offload::Offload(size_t threads, size_t max_queued, admin::Metrics* metrics)
    : max_queued_(max_queued), metrics_(metrics) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

Offload::~Offload() { Shutdown(); }

void Offload::Run(Task task) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      refused = absl::UnavailableError("the sidecar is shutting down");
    } else if (queue_.size() >= max_queued_) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "the sidecar is overloaded: ", max_queued_,
          " calls already wait for a store thread (Create, Regenerate, ListUserSessions, "
          "DestroyUserSessions, opt-outs, request_id claims); retry later"));
    } else {
      queue_.push_back(std::move(task));
      // Counted under the lock, so the start that follows cannot count first.
      if (metrics_ != nullptr) metrics_->OffloadQueued();
      return;
    }
  }
  std::move(task)(std::move(refused));
}

size_t Offload::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void Offload::Work() {
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Offload* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      // Stopping drains the queue first: every admitted task runs.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      if (metrics_ != nullptr) metrics_->OffloadStarted();
    }
    std::move(task)(absl::OkStatus());
  }
}

void Offload::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  absl::MutexLock join(&join_mu_);
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

}  // namespace stateside::rpc

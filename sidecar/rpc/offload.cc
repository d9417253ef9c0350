#include "sidecar/rpc/offload.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/common/error_reason.h"

namespace stateside::rpc {

Offload::Offload(size_t threads, size_t max_queued, admin::Metrics* metrics)
    : max_queued_(max_queued), metrics_(metrics) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

Offload::~Offload() { Shutdown(); }

void Offload::Run(Task task, Probe probe) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      refused = absl::UnavailableError("the sidecar is shutting down");
    } else if (queue_.size() >= max_queued_) {
      // UNAVAILABLE, not RESOURCE_EXHAUSTED: nothing was done and no limit
      // of the caller's was reached, so a client retries it with backoff.
      refused = WithReason(
          absl::UnavailableError(absl::StrCat(
              "the sidecar is overloaded: ", max_queued_,
              " calls already wait for a store thread (Create, Regenerate, ListUserSessions, "
              "DestroyUserSessions, opt-outs, request_id claims); nothing was done, retry "
              "later")),
          "OVERLOADED");
    } else {
      queue_.push_back(Queued{std::move(task), std::move(probe)});
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
    Queued next;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Offload* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      // Stopping drains the queue first: every admitted task runs.
      if (queue_.empty()) return;
      next = std::move(queue_.front());
      queue_.pop_front();
      if (metrics_ != nullptr) metrics_->OffloadStarted();
    }
    // A call whose client went or whose deadline passed while it waited is
    // answered without running: nothing is done for a caller who gave up.
    absl::Status admitted = next.probe != nullptr ? next.probe() : absl::OkStatus();
    std::move(next.task)(std::move(admitted));
  }
}

void Offload::FailQueued(absl::Status status) {
  std::deque<Queued> failed;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    failed.swap(queue_);
    if (metrics_ != nullptr) {
      for (size_t i = 0; i < failed.size(); ++i) metrics_->OffloadStarted();
    }
  }
  for (Queued& q : failed) std::move(q.task)(status);
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

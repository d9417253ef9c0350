// DrainState: a flag, a deadline and a counter of work in flight.
#include "app/drain.h"

#include <utility>

namespace radar {

bool DrainState::Begin(absl::Time deadline, std::string reason) {
  absl::MutexLock lock(&mu_);
  if (deadline_.has_value()) return false;
  deadline_ = deadline;
  reason_ = std::move(reason);
  draining_.store(true, std::memory_order_release);
  return true;
}

std::optional<absl::Time> DrainState::WaitForBegin(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto begun = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return deadline_.has_value(); };
  mu_.AwaitWithTimeout(absl::Condition(&begun), timeout);
  return deadline_;
}

void DrainState::set_drain_token(std::string token) {
  absl::MutexLock lock(&mu_);
  drain_token_ = std::move(token);
}

std::string DrainState::drain_token() const {
  absl::MutexLock lock(&mu_);
  return drain_token_;
}

std::string DrainState::reason() const {
  absl::MutexLock lock(&mu_);
  return reason_;
}

void DrainState::WorkStarted() {
  absl::MutexLock lock(&mu_);
  ++in_flight_;
}

void DrainState::WorkFinished() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

int64_t DrainState::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

bool DrainState::WaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ <= 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

}  // namespace radar

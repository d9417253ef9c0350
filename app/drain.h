// DrainState: whether radar-app is draining, and the work still in flight
// (HTTP requests being answered, WebSockets not yet unregistered), so that
// the drain can wait for it. Thread-safe.
//
// The drain itself (main.cc) runs once Begin() was called, from whichever
// source came first: the sidecar's DRAINING (DrainWatcher), our own signal
// when the sidecar could not be told, or the sidecar shutting down.
#ifndef STATESIDE_APP_DRAIN_H_
#define STATESIDE_APP_DRAIN_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace radar {

class DrainState {
 public:
  // Starts the drain, to be finished by `deadline`. Only the first call
  // counts (returns true); later ones are ignored.
  bool Begin(absl::Time deadline, std::string reason);
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  // Blocks until Begin() or `timeout`; returns the deadline, or nullopt on
  // timeout.
  std::optional<absl::Time> WaitForBegin(absl::Duration timeout);
  std::string reason() const;
  // The sidecar's drain token (DrainNotice::drain_token) for
  // ReportDrained; "" until DRAINING brought one. Kept whichever way the
  // drain began.
  void set_drain_token(std::string token);
  std::string drain_token() const;

  // One unit of work (a request from read to response written, a
  // WebSocket from registration to unregistration) starts / ends.
  void WorkStarted();
  void WorkFinished();
  int64_t in_flight() const;
  // Blocks until nothing is in flight or `deadline`; true if idle.
  bool WaitIdle(absl::Time deadline);

 private:
  std::atomic<bool> draining_{false};  // readable without the lock (hot path)
  mutable absl::Mutex mu_;
  std::optional<absl::Time> deadline_ ABSL_GUARDED_BY(mu_);
  std::string reason_ ABSL_GUARDED_BY(mu_);
  std::string drain_token_ ABSL_GUARDED_BY(mu_);
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace radar

#endif  // STATESIDE_APP_DRAIN_H_

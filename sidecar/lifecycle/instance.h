// Who this sidecar is (id, hostname, pid, start time, version: fixed at start)
// and what it is doing now (ready, drain state, backend, admin address: set
// by the server and by the drain state machine).
//
// Instance is thread-safe: the identity is immutable, the status is guarded
// by a mutex and read by every GetInstance / health answer.
#ifndef STATESIDE_SIDECAR_LIFECYCLE_INSTANCE_H_
#define STATESIDE_SIDECAR_LIFECYCLE_INSTANCE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/common/clock.h"
#include "sidecar/common/random.h"
#include "sidecar/lifecycle/drain_controller.h"

namespace stateside::lifecycle {

// The drain state is the controller's (drain_controller.h), one enum for the
// whole sidecar.
using ::stateside::DrainState;
using ::stateside::DrainStateName;

// The build's version, e.g. "0.1.0".
std::string_view Version();

struct InstanceIdentity {
  std::string id;        // INSTANCE_ID or hostname-pid-random
  std::string hostname;  // gethostname()
  int64_t pid = 0;
  absl::Time start_time;
  std::string version;
};

// An instance id is 1..128 characters of [A-Za-z0-9._:-]: it appears in log
// lines, HTTP headers, metric labels and Redis keys, so nothing that needs
// quoting or escaping is allowed. INVALID_ARGUMENT otherwise.
absl::Status ValidateInstanceId(std::string_view id);

// The identity of this process. `configured_id` (INSTANCE_ID) wins if not
// empty (it must be valid); otherwise the id is "hostname-pid-xxxxxx" with 6
// hex characters from `random`, so that two processes that reuse a pid on the
// same host (containers) still differ.
absl::StatusOr<InstanceIdentity> MakeIdentity(std::string_view configured_id,
                                              RandomSource& random,
                                              absl::Time now);

class Instance {
 public:
  // REQUIRES: `clock` outlives the Instance.
  Instance(InstanceIdentity identity, const Clock* clock)
      : identity_(std::move(identity)), clock_(clock) {}

  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  const InstanceIdentity& identity() const { return identity_; }
  const std::string& id() const { return identity_.id; }
  // Time since start_time on the injected clock (never negative).
  absl::Duration Uptime() const;

  // Whether the instance takes traffic (gRPC health SERVING, /health/ready).
  bool ready() const;
  void set_ready(bool ready);

  DrainState drain_state() const;
  void set_drain_state(DrainState state);

  // "memory", "redis" or "memory-fallback".
  std::string backend() const;
  void set_backend(std::string backend);

  // host:port of the admin listener as bound ("" until it listens).
  std::string admin_address() const;
  void set_admin_address(std::string address);

 private:
  // Constant after construction.
  const InstanceIdentity identity_;
  const Clock* const clock_;

  mutable absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  DrainState drain_state_ ABSL_GUARDED_BY(mu_) = DrainState::kServing;
  std::string backend_ ABSL_GUARDED_BY(mu_);
  std::string admin_address_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside::lifecycle

#endif  // STATESIDE_SIDECAR_LIFECYCLE_INSTANCE_H_

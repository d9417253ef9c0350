// The cluster registry: the instance record of every live sidecar, kept fresh
// by heartbeats. A record lives `ttl` after its last heartbeat (the registry's
// clock decides, not the writer's or the reader's), so an instance that dies
// without deregistering vanishes within one ttl; one that drains removes
// itself at once. With the embedded memory store there is no registry: the
// cluster is this instance alone.
//
// Implementations are thread-safe.
#ifndef STATESIDE_SIDECAR_LIFECYCLE_REGISTRY_H_
#define STATESIDE_SIDECAR_LIFECYCLE_REGISTRY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/lifecycle/instance.h"

namespace stateside::lifecycle {

// What one heartbeat publishes: the identity plus the status of the moment.
struct InstanceRecord {
  std::string id;
  std::string hostname;
  int64_t pid = 0;
  absl::Time start_time;
  std::string version;
  DrainState drain_state = DrainState::kServing;
  std::string backend;
  std::string admin_address;
  bool ready = false;
};

// The record of `instance` now.
InstanceRecord RecordOf(const Instance& instance);

class InstanceRegistry {
 public:
  using ListDone =
      absl::AnyInvocable<void(absl::StatusOr<std::vector<InstanceRecord>>) &&>;

  virtual ~InstanceRegistry() = default;

  // Writes or refreshes the record (blocking, one round trip).
  virtual absl::Status Heartbeat(const InstanceRecord& record) = 0;
  // Removes the record at once (blocking); OK if it was not there.
  virtual absl::Status Remove(std::string_view id) = 0;
  // The live records, in no particular order; expired ones are dropped on
  // the way. `done` runs once, possibly on a thread of the registry's.
  virtual void List(ListDone done) = 0;
};

}  // namespace stateside::lifecycle

#endif  // STATESIDE_SIDECAR_LIFECYCLE_REGISTRY_H_

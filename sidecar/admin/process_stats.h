// The standard process_* numbers of Prometheus client libraries, read from
// /proc/self at the moment of a scrape (Linux only). Thread-safe: no state.
#ifndef STATESIDE_SIDECAR_ADMIN_PROCESS_STATS_H_
#define STATESIDE_SIDECAR_ADMIN_PROCESS_STATS_H_

#include "absl/status/statusor.h"

namespace stateside::admin {

struct ProcessStats {
  double resident_memory_bytes = 0;  // VmRSS
  double virtual_memory_bytes = 0;   // VmSize
  double open_fds = 0;               // entries of /proc/self/fd
  double max_fds = 0;                // RLIMIT_NOFILE soft limit
  double cpu_seconds = 0;            // user + system
  double start_time_seconds = 0;     // since the Unix epoch
};

// UNAVAILABLE if /proc cannot be read (not Linux, or /proc not mounted).
absl::StatusOr<ProcessStats> ReadProcessStats();

}  // namespace stateside::admin

#endif  // STATESIDE_SIDECAR_ADMIN_PROCESS_STATS_H_

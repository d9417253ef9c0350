// CPU time (user + system, all threads) of a process, for "server CPU per
// call": from /proc/PID/stat for another process (clock-tick resolution,
// usually 10 ms, hence measured over a whole window), from getrusage for this
// one. Thread-safe (no state).
#ifndef STATESIDE_TESTS_BENCH_PROC_CPU_H_
#define STATESIDE_TESTS_BENCH_PROC_CPU_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace stateside::bench {

// NOT_FOUND if there is no such process, INTERNAL if its stat is unreadable.
absl::StatusOr<absl::Duration> ProcessCpuTime(pid_t pid);

// utime + stime of the text of a /proc/PID/stat file, in clock ticks.
// INVALID_ARGUMENT if it does not parse. (The command name in parentheses may
// hold spaces and parentheses: fields are counted after the last ')'.)
absl::StatusOr<uint64_t> ParseStatCpuTicks(std::string_view stat);

absl::Duration SelfCpuTime();

// A named set of processes whose CPU time is read together (e.g. the Redis
// masters of a Cluster).
struct ProcessGroup {
  std::string name;
  std::vector<pid_t> pids;
};

// "NAME=PID[,PID...]"; INVALID_ARGUMENT saying what is wrong.
absl::StatusOr<ProcessGroup> ParseProcessGroup(absl::string_view text);

// The sum of the group's processes' CPU times; the first one's error.
absl::StatusOr<absl::Duration> GroupCpuTime(const ProcessGroup& group);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_PROC_CPU_H_

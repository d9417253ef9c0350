// CPU time (user + system, all threads) of a process, for "server CPU per
// call": from /proc/PID/stat for another process (clock-tick resolution,
// usually 10 ms, hence measured over a whole window), from getrusage for this
// one. Thread-safe (no state).
#ifndef STATESIDE_TESTS_BENCH_PROC_CPU_H_
#define STATESIDE_TESTS_BENCH_PROC_CPU_H_

#include <sys/types.h>

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::bench {

// NOT_FOUND if there is no such process, INTERNAL if its stat is unreadable.
absl::StatusOr<absl::Duration> ProcessCpuTime(pid_t pid);

// utime + stime of the text of a /proc/PID/stat file, in clock ticks.
// INVALID_ARGUMENT if it does not parse. (The command name in parentheses may
// hold spaces and parentheses: fields are counted after the last ')'.)
absl::StatusOr<uint64_t> ParseStatCpuTicks(std::string_view stat);

absl::Duration SelfCpuTime();

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_PROC_CPU_H_

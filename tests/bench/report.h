// The result of a run as text (for people) or as one JSON object (for
// scripts/bench and the tests). Field names of the JSON are an interface:
// op, rpc, transport, inflight, channels, size_bytes, warmup_s, duration_s,
// calls, errors, errors_by_code, calls_per_second, min_us, mean_us, p50_us,
// p90_us, p99_us, p999_us, max_us, client_cpu_us_per_call, server_pid,
// server_cpu_us_per_call, server_cpu_cores, cpu_us_per_call (with --cpu-of:
// {NAME: µs per call, or null}), warnings.
// Pure functions: thread-safe.
#ifndef STATESIDE_TESTS_BENCH_REPORT_H_
#define STATESIDE_TESTS_BENCH_REPORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "tests/bench/bench_options.h"
#include "tests/bench/load_runner.h"

namespace stateside::bench {

// "DEADLINE_EXCEEDED" for 4, "CODE_99" for an unknown code.
std::string StatusCodeName(int code);

std::string FormatText(const BenchOptions& options, const RunResult& result,
                       const std::vector<std::string>& warnings);
std::string FormatJson(const BenchOptions& options, const RunResult& result,
                       const std::vector<std::string>& warnings);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_REPORT_H_

// Text and JSON renderings of a RunResult.
#include "tests/bench/report.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace stateside::bench {
namespace {

constexpr const char* kCodeNames[kNumStatusCodes] = {
    "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",   "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",      "DATA_LOSS",
    "UNAUTHENTICATED"};

// Microseconds with one decimal: enough for latencies measured in ns.
double Us(uint64_t nanos) {
  return std::round(static_cast<double>(nanos) / 100.0) / 10.0;
}

double Round1(double v) { return std::round(v * 10.0) / 10.0; }

double CallsPerSecond(const RunResult& r) {
  const double seconds = absl::ToDoubleSeconds(r.window);
  return seconds > 0 ? static_cast<double>(r.calls) / seconds : 0;
}

// CPU per completed call (successful or not: the sidecar handled both).
std::optional<double> CpuUsPerCall(absl::Duration cpu, const RunResult& r) {
  const uint64_t handled = r.calls + r.errors;
  if (handled == 0) return std::nullopt;
  return Round1(absl::ToDoubleMicroseconds(cpu) / static_cast<double>(handled));
}

std::string Describe(const BenchOptions& o) {
  std::string s = absl::StrCat("op=", OpName(o.op), " (", OpRpc(o.op),
                               ")  transport=", TransportName(o.transport),
                               "  inflight=", o.inflight,
                               "  channels=", o.channels);
  if (OpUsesPayload(o.op)) absl::StrAppend(&s, "  size=", o.size_bytes, " B");
  return s;
}

}  // namespace

std::string StatusCodeName(int code) {
  if (code >= 0 && code < kNumStatusCodes) return kCodeNames[code];
  return absl::StrCat("CODE_", code);
}

std::string FormatText(const BenchOptions& options, const RunResult& r,
                       const std::vector<std::string>& warnings) {
  const LatencyHistogram& h = r.latency;
  std::string out = absl::StrCat("stateside-bench  ", Describe(options), "\n");
  absl::StrAppendFormat(&out, "window      %.2f s after %.2f s of warm-up\n",
                        absl::ToDoubleSeconds(r.window),
                        absl::ToDoubleSeconds(options.warmup));
  absl::StrAppendFormat(&out, "calls       %d ok, %d failed   %.1f calls/s\n",
                        r.calls, r.errors, CallsPerSecond(r));
  absl::StrAppendFormat(
      &out,
      "latency µs  p50 %.1f   p90 %.1f   p99 %.1f   max %.1f   (min %.1f, "
      "mean %.1f)\n",
      Us(h.Percentile(50)), Us(h.Percentile(90)), Us(h.Percentile(99)),
      Us(h.max()), Us(h.min()), Round1(h.mean() / 1000.0));
  if (options.server_pid.has_value()) {
    if (r.server_cpu.has_value() && CpuUsPerCall(*r.server_cpu, r)) {
      absl::StrAppendFormat(
          &out, "server CPU  %.1f µs/call (%.2f cores, pid %d)\n",
          *CpuUsPerCall(*r.server_cpu, r),
          absl::ToDoubleSeconds(*r.server_cpu) / absl::ToDoubleSeconds(r.window),
          *options.server_pid);
    } else {
      absl::StrAppendFormat(&out, "server CPU  not measured (pid %d)\n",
                            *options.server_pid);
    }
  }
  if (auto client = CpuUsPerCall(r.client_cpu, r)) {
    absl::StrAppendFormat(&out, "client CPU  %.1f µs/call (this process)\n",
                          *client);
  }
  for (size_t i = 0; i < options.cpu_of.size() && i < r.cpu_of.size(); ++i) {
    const std::optional<double> us = r.cpu_of[i] ? CpuUsPerCall(*r.cpu_of[i], r) : std::nullopt;
    if (us.has_value()) {
      absl::StrAppendFormat(&out, "%s CPU  %.1f µs/call (%s)\n", options.cpu_of[i].name, *us,
                            absl::StrJoin(options.cpu_of[i].pids, ","));
    } else {
      absl::StrAppendFormat(&out, "%s CPU  not measured\n", options.cpu_of[i].name);
    }
  }
  if (r.errors > 0) {
    absl::StrAppend(&out, "errors     ");
    for (int code = 0; code < kNumStatusCodes; ++code) {
      if (r.errors_by_code[code] > 0) {
        absl::StrAppend(&out, " ", StatusCodeName(code), "=",
                        r.errors_by_code[code]);
      }
    }
    absl::StrAppend(&out, "\n");
  }
  for (const std::string& w : warnings) absl::StrAppend(&out, "warning: ", w, "\n");
  return out;
}

std::string FormatJson(const BenchOptions& options, const RunResult& r,
                       const std::vector<std::string>& warnings) {
  const LatencyHistogram& h = r.latency;
  nlohmann::ordered_json j;
  j["op"] = OpName(options.op);
  j["rpc"] = OpRpc(options.op);
  j["transport"] = TransportName(options.transport);
  j["inflight"] = options.inflight;
  j["channels"] = options.channels;
  j["size_bytes"] = OpUsesPayload(options.op)
                        ? nlohmann::ordered_json(options.size_bytes)
                        : nlohmann::ordered_json(nullptr);
  j["warmup_s"] = absl::ToDoubleSeconds(options.warmup);
  j["duration_s"] = absl::ToDoubleSeconds(r.window);
  j["calls"] = r.calls;
  j["errors"] = r.errors;
  nlohmann::ordered_json by_code = nlohmann::ordered_json::object();
  for (int code = 0; code < kNumStatusCodes; ++code) {
    if (r.errors_by_code[code] > 0) by_code[StatusCodeName(code)] = r.errors_by_code[code];
  }
  j["errors_by_code"] = by_code;
  j["calls_per_second"] = Round1(CallsPerSecond(r));
  j["min_us"] = Us(h.min());
  j["mean_us"] = Round1(h.mean() / 1000.0);
  j["p50_us"] = Us(h.Percentile(50));
  j["p90_us"] = Us(h.Percentile(90));
  j["p99_us"] = Us(h.Percentile(99));
  j["p999_us"] = Us(h.Percentile(99.9));
  j["max_us"] = Us(h.max());
  auto client = CpuUsPerCall(r.client_cpu, r);
  j["client_cpu_us_per_call"] =
      client ? nlohmann::ordered_json(*client) : nlohmann::ordered_json(nullptr);
  if (options.server_pid.has_value()) {
    j["server_pid"] = *options.server_pid;
    std::optional<double> server;
    if (r.server_cpu.has_value()) server = CpuUsPerCall(*r.server_cpu, r);
    j["server_cpu_us_per_call"] =
        server ? nlohmann::ordered_json(*server) : nlohmann::ordered_json(nullptr);
    j["server_cpu_cores"] =
        r.server_cpu ? nlohmann::ordered_json(
                           std::round(100 * absl::ToDoubleSeconds(*r.server_cpu) /
                                      absl::ToDoubleSeconds(r.window)) /
                           100)
                     : nlohmann::ordered_json(nullptr);
  }
  if (!options.cpu_of.empty()) {
    nlohmann::ordered_json groups = nlohmann::ordered_json::object();
    for (size_t i = 0; i < options.cpu_of.size(); ++i) {
      std::optional<double> us;
      if (i < r.cpu_of.size() && r.cpu_of[i]) us = CpuUsPerCall(*r.cpu_of[i], r);
      groups[options.cpu_of[i].name] =
          us ? nlohmann::ordered_json(*us) : nlohmann::ordered_json(nullptr);
    }
    j["cpu_us_per_call"] = std::move(groups);
  }
  j["warnings"] = warnings;
  return j.dump();
}

}  // namespace stateside::bench

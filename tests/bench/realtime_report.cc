// Text and JSON renderings of a RealtimeResult.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "tests/bench/realtime_bench.h"
#include "tests/bench/report.h"

namespace stateside::bench {
namespace {

using Json = nlohmann::ordered_json;

// Microseconds with one decimal, as report.cc.
double Us(uint64_t nanos) { return std::round(static_cast<double>(nanos) / 100.0) / 10.0; }
double Round1(double v) { return std::round(v * 10.0) / 10.0; }
double Round2(double v) { return std::round(v * 100.0) / 100.0; }

double PerSecond(uint64_t n, const RealtimeResult& r) {
  const double seconds = absl::ToDoubleSeconds(r.window);
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

// CPU time per unit of work (events or deliveries); none without work.
std::optional<double> CpuUsPer(const std::optional<absl::Duration>& cpu, uint64_t n) {
  if (!cpu.has_value() || n == 0) return std::nullopt;
  return Round1(absl::ToDoubleMicroseconds(*cpu) / static_cast<double>(n));
}

std::optional<double> Cores(const std::optional<absl::Duration>& cpu, const RealtimeResult& r) {
  const double seconds = absl::ToDoubleSeconds(r.window);
  if (!cpu.has_value() || seconds <= 0) return std::nullopt;
  return Round2(absl::ToDoubleSeconds(*cpu) / seconds);
}

Json OrNull(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

std::string ErrorsByCode(const RealtimeResult& r) {
  std::string out;
  for (int code = 0; code < kNumStatusCodes; ++code) {
    if (r.errors_by_code[code] > 0) {
      absl::StrAppend(&out, " ", StatusCodeName(code), "=", r.errors_by_code[code]);
    }
  }
  return out;
}

}  // namespace

std::string FormatRealtimeText(const BenchOptions& o, const RealtimeResult& r,
                               const std::vector<std::string>& warnings) {
  const LatencyHistogram& h = r.latency;
  std::string out = absl::StrFormat(
      "stateside-bench  op=%s (%s)  rate=%g/s  connections=%d  size=%d B\n", OpName(o.op),
      OpRpc(o.op), o.rate, o.connections, o.size_bytes);
  if (o.op == Op::kRealtimeXInstance) {
    absl::StrAppend(&out, "instances   receive on ", r.instance, ", publish on ",
                    r.publish_instance, "\n");
  }
  absl::StrAppendFormat(&out, "window      %.2f s after %.2f s of warm-up\n",
                        absl::ToDoubleSeconds(r.window), absl::ToDoubleSeconds(o.warmup));
  absl::StrAppendFormat(&out,
                        "events      %d published (%d failed), %d delivered, %d lost   "
                        "%.1f events/s, %.1f deliveries/s\n",
                        r.published, r.publish_errors, r.delivered, r.lost,
                        PerSecond(r.delivered, r), PerSecond(r.deliveries, r));
  absl::StrAppendFormat(
      &out, "latency µs  p50 %.1f   p90 %.1f   p99 %.1f   max %.1f   (min %.1f, mean %.1f)"
            "   publish -> delivery\n",
      Us(h.Percentile(50)), Us(h.Percentile(90)), Us(h.Percentile(99)), Us(h.max()),
      Us(h.min()), Round1(h.mean() / 1000.0));
  absl::StrAppendFormat(&out, "            p50 %.1f   p99 %.1f   Publish reply\n",
                        Us(r.publish_rpc.Percentile(50)), Us(r.publish_rpc.Percentile(99)));
  absl::StrAppendFormat(&out,
                        "            p50 %.1f   p99 %.1f   sidecar published_at -> delivery\n",
                        Us(r.from_sidecar.Percentile(50)), Us(r.from_sidecar.Percentile(99)));
  absl::StrAppendFormat(&out, "schedule    at most %.1f µs behind\n",
                        absl::ToDoubleMicroseconds(r.max_schedule_lag));
  if (o.server_pid.has_value()) {
    if (auto per_event = CpuUsPer(r.server_cpu, r.published)) {
      absl::StrAppendFormat(&out,
                            "server CPU  %.1f µs/event, %.2f µs/delivery (%.2f cores, pid %d)\n",
                            *per_event, CpuUsPer(r.server_cpu, r.deliveries).value_or(0),
                            Cores(r.server_cpu, r).value_or(0), *o.server_pid);
    } else {
      absl::StrAppendFormat(&out, "server CPU  not measured (pid %d)\n", *o.server_pid);
    }
  }
  if (o.publish_server_pid.has_value()) {
    if (auto per_event = CpuUsPer(r.publish_server_cpu, r.published)) {
      absl::StrAppendFormat(&out, "publisher CPU %.1f µs/event (%.2f cores, pid %d)\n",
                            *per_event, Cores(r.publish_server_cpu, r).value_or(0),
                            *o.publish_server_pid);
    } else {
      absl::StrAppendFormat(&out, "publisher CPU not measured (pid %d)\n",
                            *o.publish_server_pid);
    }
  }
  if (auto client = CpuUsPer(r.client_cpu, r.published)) {
    absl::StrAppendFormat(&out, "client CPU  %.1f µs/event (this process)\n", *client);
  }
  if (r.publish_errors > 0) absl::StrAppend(&out, "errors     ", ErrorsByCode(r), "\n");
  if (r.duplicates + r.out_of_order + r.short_deliveries + r.unknown + r.gaps > 0) {
    absl::StrAppendFormat(&out,
                          "anomalies   %d duplicates, %d out of order, %d short, %d unknown, "
                          "%d gaps (%d dropped)\n",
                          r.duplicates, r.out_of_order, r.short_deliveries, r.unknown, r.gaps,
                          r.gap_dropped);
  }
  for (const std::string& w : warnings) absl::StrAppend(&out, "warning: ", w, "\n");
  return out;
}

std::string FormatRealtimeJson(const BenchOptions& o, const RealtimeResult& r,
                               const std::vector<std::string>& warnings) {
  const LatencyHistogram& h = r.latency;
  Json j;
  j["op"] = OpName(o.op);
  j["rpc"] = OpRpc(o.op);
  j["rate"] = o.rate;
  j["connections"] = o.connections;
  j["size_bytes"] = o.size_bytes;
  j["warmup_s"] = absl::ToDoubleSeconds(o.warmup);
  j["duration_s"] = absl::ToDoubleSeconds(r.window);
  j["published"] = r.published;
  j["publish_errors"] = r.publish_errors;
  Json by_code = Json::object();
  for (int code = 0; code < kNumStatusCodes; ++code) {
    if (r.errors_by_code[code] > 0) by_code[StatusCodeName(code)] = r.errors_by_code[code];
  }
  j["errors_by_code"] = by_code;
  j["delivered"] = r.delivered;
  j["deliveries"] = r.deliveries;
  j["lost"] = r.lost;
  j["duplicates"] = r.duplicates;
  j["out_of_order"] = r.out_of_order;
  j["short_deliveries"] = r.short_deliveries;
  j["unknown"] = r.unknown;
  j["gaps"] = r.gaps;
  j["gap_dropped"] = r.gap_dropped;
  j["events_per_second"] = Round1(PerSecond(r.delivered, r));
  j["deliveries_per_second"] = Round1(PerSecond(r.deliveries, r));
  j["min_us"] = Us(h.min());
  j["mean_us"] = Round1(h.mean() / 1000.0);
  j["p50_us"] = Us(h.Percentile(50));
  j["p90_us"] = Us(h.Percentile(90));
  j["p99_us"] = Us(h.Percentile(99));
  j["p999_us"] = Us(h.Percentile(99.9));
  j["max_us"] = Us(h.max());
  j["publish_p50_us"] = Us(r.publish_rpc.Percentile(50));
  j["publish_p99_us"] = Us(r.publish_rpc.Percentile(99));
  j["sidecar_p50_us"] = Us(r.from_sidecar.Percentile(50));
  j["sidecar_p99_us"] = Us(r.from_sidecar.Percentile(99));
  j["max_schedule_lag_us"] = Round1(absl::ToDoubleMicroseconds(r.max_schedule_lag));
  j["client_cpu_us_per_event"] = OrNull(CpuUsPer(r.client_cpu, r.published));
  if (o.server_pid.has_value()) {
    j["server_pid"] = *o.server_pid;
    j["server_cpu_us_per_event"] = OrNull(CpuUsPer(r.server_cpu, r.published));
    j["server_cpu_us_per_delivery"] = OrNull(CpuUsPer(r.server_cpu, r.deliveries));
    j["server_cpu_cores"] = OrNull(Cores(r.server_cpu, r));
  }
  if (o.publish_server_pid.has_value()) {
    j["publish_server_pid"] = *o.publish_server_pid;
    j["publish_server_cpu_us_per_event"] = OrNull(CpuUsPer(r.publish_server_cpu, r.published));
    j["publish_server_cpu_cores"] = OrNull(Cores(r.publish_server_cpu, r));
  }
  j["instance"] = r.instance;
  j["publish_instance"] = r.publish_instance;
  j["admin_address"] = r.admin_address;
  j["warnings"] = warnings;
  return j.dump();
}

}  // namespace stateside::bench

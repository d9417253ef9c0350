// stateside-bench's realtime operations: events published at a
// fixed, open-loop rate, and the time from publish to delivery on a
// RealtimeService.Subscribe stream.
//   realtime-xinstance  receive on --socket (sidecar A), publish on
//                       --publish-socket (sidecar B on the same Redis);
//   realtime-fanout     --connections N in one room on --socket, publish
//                       there too: the cost of local fan-out.
// Every payload starts with a header (run id, sequence, send time on this
// process's monotonic clock), so publisher and receiver share one clock and a
// missing or repeated sequence is visible. RealtimeLedger does the accounting
// (deterministic, unit-tested); realtime_bench.cc drives the RPCs and
// realtime_report.cc renders the result.
//
// Thread-safety: RealtimeLedger is thread-safe; the free functions are pure.
#ifndef STATESIDE_TESTS_BENCH_REALTIME_BENCH_H_
#define STATESIDE_TESTS_BENCH_REALTIME_BENCH_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/status_code_enum.h"
#include "tests/bench/bench_options.h"
#include "tests/bench/latency_histogram.h"
#include "tests/bench/load_runner.h"

namespace CLI {
class App;
}  // namespace CLI

namespace stateside::bench {

// run id, sequence, send time: three little-endian 64-bit words.
inline constexpr size_t kRealtimeHeaderBytes = 24;
// The sidecar's payload limit (realtime.proto).
inline constexpr size_t kRealtimeMaxPayloadBytes = 64 << 10;
// Its hub's connection limit.
inline constexpr size_t kRealtimeMaxConnections = 100000;

// The realtime flags as CLI11 parsed them, before validation.
struct RealtimeFlags {
  std::string publish_socket;
  double rate = 0;
  int64_t connections = 1;
  int64_t publish_server_pid = 0;
};
// Declares --publish-socket, --rate, --connections, --publish-server-pid.
void AddRealtimeFlags(CLI::App& app, RealtimeFlags& flags);
// Validates them against the rest of `options` (op, size, transport, and
// which closed-loop flags `app` saw) and stores them in `options`.
// INVALID_ARGUMENT naming the flag.
absl::Status ApplyRealtimeFlags(const CLI::App& app, const RealtimeFlags& flags,
                                BenchOptions& options);

struct PayloadStamp {
  uint64_t run_id = 0;    // random per run: tells our events from others
  uint64_t sequence = 0;  // 0, 1, 2, ... in publishing order
  int64_t sent_ns = 0;    // CLOCK_MONOTONIC of this process
};
// `size` bytes (>= kRealtimeHeaderBytes): the stamp, then `filler` repeated.
std::string EncodeRealtimePayload(const PayloadStamp& stamp, size_t size,
                                  std::string_view filler);
// nullopt if the payload is shorter than the header.
std::optional<PayloadStamp> DecodeRealtimePayload(std::string_view payload);

// What a run measured. "Measured" events are those whose scheduled publish
// time fell in the window; warm-up events are sent and received but not
// counted.
struct RealtimeResult {
  uint64_t published = 0;       // measured events whose Publish was started
  uint64_t publish_errors = 0;  // ... whose Publish failed
  std::array<uint64_t, kNumStatusCodes> errors_by_code{};
  uint64_t delivered = 0;   // measured events received (first copy)
  uint64_t deliveries = 0;  // their conn_ids, summed: events × connections
  // Published successfully, never received before the run gave up waiting.
  uint64_t lost = 0;
  uint64_t duplicates = 0;        // copies after the first
  uint64_t out_of_order = 0;      // received after a later sequence
  uint64_t short_deliveries = 0;  // fewer conn_ids than connections
  uint64_t unknown = 0;           // deliveries without our header / run id
  uint64_t gaps = 0;              // Gap messages on the stream
  uint64_t gap_dropped = 0;       // events they say were dropped
  LatencyHistogram latency;       // payload stamp -> received, ns
  LatencyHistogram publish_rpc;   // Publish started -> replied OK, ns
  // Delivery.published_at (the publishing sidecar's wall clock) -> received
  // (this process's wall clock): the latency without the Publish hop in.
  LatencyHistogram from_sidecar;

  // Filled in by the run, not the ledger.
  absl::Duration window;
  absl::Duration max_schedule_lag;  // how far the publisher fell behind
  std::optional<absl::Duration> server_cpu;          // --server-pid
  std::optional<absl::Duration> publish_server_cpu;  // --publish-server-pid
  absl::Duration client_cpu;
  std::string instance;          // --socket's instance id
  std::string publish_instance;  // the publishing instance's id
  std::string admin_address;     // --socket's admin listener
};

// Accounts for every event from its Publish to its delivery.
class RealtimeLedger {
 public:
  // `connections`: conn_ids each delivery should carry. Room for
  // `expected_events` is made up front: growing the table mid-run would stall
  // the threads that record, and show up as latency.
  explicit RealtimeLedger(size_t connections, size_t expected_events = 0)
      : connections_(connections) {
    entries_.reserve(expected_events);
  }

  // Before the event's Publish starts. REQUIRES: sequences 0, 1, 2, ... in
  // order, each once.
  void OnSent(uint64_t sequence, int64_t sent_ns, bool measured);
  // Once per OnSent, when the Publish call completes.
  void OnPublishDone(uint64_t sequence, int64_t done_ns, grpc::StatusCode code);
  // A delivery carrying our header. `sidecar_ns`: published_at -> receipt.
  void OnReceived(const PayloadStamp& stamp, int64_t received_ns,
                  size_t conn_ids, std::optional<int64_t> sidecar_ns);
  // A delivery that is not one of this run's events.
  void OnUnknown();
  void OnGap(uint64_t dropped);

  // Wait until every started Publish has completed / until, in addition,
  // every successfully published event has been received. False at the
  // deadline.
  bool AwaitPublishesDone(absl::Time deadline);
  bool AwaitAllReceived(absl::Time deadline);

  // The counts so far (lost: published OK, not received yet).
  RealtimeResult Tally() const;

 private:
  struct Entry {
    int64_t sent_ns = 0;
    bool measured = false;
    bool done = false;  // Publish completed
    bool ok = false;    // ... successfully
    bool received = false;
  };
  bool Quiet() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const size_t connections_;
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);  // by sequence
  RealtimeResult result_ ABSL_GUARDED_BY(mu_);       // counters, histograms
  uint64_t pending_publishes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t awaited_ ABSL_GUARDED_BY(mu_) = 0;  // published OK, not received
  std::optional<uint64_t> highest_received_ ABSL_GUARDED_BY(mu_);
};

std::string FormatRealtimeText(const BenchOptions& options,
                               const RealtimeResult& result,
                               const std::vector<std::string>& warnings);
// One flat JSON object (errors_by_code and warnings aside), read by
// scripts/bench: op, rpc, rate, connections, size_bytes, warmup_s,
// duration_s, published, publish_errors, errors_by_code, delivered,
// deliveries, lost, duplicates, out_of_order, short_deliveries, unknown, gaps,
// gap_dropped, events_per_second, deliveries_per_second, min_us, mean_us,
// p50_us, p90_us, p99_us, p999_us, max_us, publish_p50_us, publish_p99_us,
// sidecar_p50_us, sidecar_p99_us, max_schedule_lag_us,
// client_cpu_us_per_event, [server_pid, server_cpu_us_per_event,
// server_cpu_us_per_delivery, server_cpu_cores], [publish_server_pid,
// publish_server_cpu_us_per_event, publish_server_cpu_cores], instance,
// publish_instance, admin_address, warnings.
std::string FormatRealtimeJson(const BenchOptions& options,
                               const RealtimeResult& result,
                               const std::vector<std::string>& warnings);

// Runs a realtime op against the sidecar(s) and prints the result; returns
// the exit status (0 measured, 1 setup failed or nothing delivered).
// REQUIRES: OpIsRealtime(options.op).
int RunRealtime(const BenchOptions& options);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_REALTIME_BENCH_H_

// The closed-loop load generator: keeps exactly `inflight` calls outstanding
// (each completion issues that slot's next call) for warm-up + duration, and
// measures the calls that complete inside the measured window: their count,
// latency (successful calls) and status codes (failed calls), plus the CPU
// time of the sidecar (from /proc) and of this process over the window.
//
// Thread-safe: OnCallDone runs concurrently on transport threads; Run is
// called once, from one thread.
#ifndef STATESIDE_TESTS_BENCH_LOAD_RUNNER_H_
#define STATESIDE_TESTS_BENCH_LOAD_RUNNER_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/bench/latency_histogram.h"
#include "tests/bench/proc_cpu.h"
#include "tests/bench/transport.h"

namespace stateside::bench {

// gRPC status codes 0..16.
inline constexpr int kNumStatusCodes = 17;

struct RunResult {
  uint64_t calls = 0;   // successful calls completed in the window
  uint64_t errors = 0;  // failed calls completed in the window
  std::array<uint64_t, kNumStatusCodes> errors_by_code{};
  LatencyHistogram latency;  // of the successful calls, in ns
  absl::Duration window;     // the measured window (= duration)
  std::optional<absl::Duration> server_cpu;  // with a server pid
  absl::Duration client_cpu;                 // this process
  // One per RunnerOptions::cpu_of group; nullopt if it could not be read.
  std::vector<std::optional<absl::Duration>> cpu_of;
};

struct RunnerOptions {
  size_t inflight = 1;
  absl::Duration warmup = absl::Seconds(1);
  absl::Duration duration = absl::Seconds(10);
  std::optional<pid_t> server_pid;
  std::vector<ProcessGroup> cpu_of;
  // How long Run waits for the last calls after the window (longer than the
  // call deadline, which bounds every call).
  absl::Duration drain_timeout = absl::Seconds(15);
};

class LoadRunner final : public CompletionSink {
 public:
  explicit LoadRunner(RunnerOptions options);

  // Runs the load on `transport`, which must have been made with this runner
  // as its sink and options.inflight slots. Returns when every call has
  // completed; DEADLINE_EXCEEDED if some have not after drain_timeout (the
  // transport then still has calls outstanding and must not be destroyed).
  // No server_cpu in the result if the server's CPU time cannot be read.
  absl::StatusOr<RunResult> Run(Transport& transport);

  void OnCallDone(size_t slot, grpc::StatusCode code) override;

 private:
  // Counters of the calls whose slot maps to this shard: spreading slots over
  // shards keeps completion threads from contending on one lock.
  struct Shard {
    absl::Mutex mu;
    LatencyHistogram latency ABSL_GUARDED_BY(mu);
    std::array<uint64_t, kNumStatusCodes> errors ABSL_GUARDED_BY(mu){};
  };
  static constexpr size_t kMaxShards = 16;

  int64_t NowNanos() const;  // since run start
  // Issues the slot's next call. A completion delivered on this thread while
  // Issue runs is queued and issued by the outer call: iterate, never recurse.
  void Launch(size_t slot);

  const RunnerOptions options_;
  const size_t num_shards_;
  const std::unique_ptr<Shard[]> shards_;
  // When each slot's outstanding call started (ns since run start).
  const std::unique_ptr<std::atomic<int64_t>[]> started_;
  Transport* transport_ = nullptr;  // set by Run before the first call
  // Window bounds, ns since run start; atomics because completion threads
  // read them with no other synchronisation visible to the sanitizers.
  std::atomic<int64_t> window_start_{0};
  std::atomic<int64_t> window_end_{0};
  std::atomic<int64_t> base_{0};  // steady_clock ns at run start

  absl::Mutex done_mu_;
  size_t active_slots_ ABSL_GUARDED_BY(done_mu_) = 0;
};

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_LOAD_RUNNER_H_

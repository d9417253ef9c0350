// The closed loop: issue, complete, record, issue again until the window ends.
#include "tests/bench/load_runner.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/bench/proc_cpu.h"

namespace stateside::bench {
namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SleepUntilSteady(int64_t steady_nanos) {
  std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(steady_nanos)));
}

// Slots whose completion arrived on this thread while it was inside
// Transport::Issue (see Launch). Null when not inside Launch.
thread_local std::vector<size_t>* t_pending_launches = nullptr;

}  // namespace

LoadRunner::LoadRunner(RunnerOptions options)
    : options_(options),
      num_shards_(std::clamp<size_t>(options.inflight, 1, kMaxShards)),
      shards_(new Shard[num_shards_]),
      started_(new std::atomic<int64_t>[options.inflight]) {}

int64_t LoadRunner::NowNanos() const {
  return SteadyNanos() - base_.load(std::memory_order_relaxed);
}

void LoadRunner::Launch(size_t slot) {
  if (t_pending_launches != nullptr) {
    t_pending_launches->push_back(slot);
    return;
  }
  std::vector<size_t> pending{slot};
  t_pending_launches = &pending;
  while (!pending.empty()) {
    const size_t next = pending.back();
    pending.pop_back();
    started_[next].store(NowNanos(), std::memory_order_relaxed);
    transport_->Issue(next);
  }
  t_pending_launches = nullptr;
}

void LoadRunner::OnCallDone(size_t slot, grpc::StatusCode code) {
  const int64_t now = NowNanos();
  if (now >= window_start_.load(std::memory_order_relaxed) &&
      now < window_end_.load(std::memory_order_relaxed)) {
    const int64_t latency =
        now - started_[slot].load(std::memory_order_relaxed);
    Shard& shard = shards_[slot % num_shards_];
    absl::MutexLock lock(&shard.mu);
    if (code == grpc::StatusCode::OK) {
      shard.latency.Record(static_cast<uint64_t>(std::max<int64_t>(latency, 0)));
    } else {
      const int index = static_cast<int>(code);
      ++shard.errors[index >= 0 && index < kNumStatusCodes ? index
                                                           : grpc::UNKNOWN];
    }
  }
  if (now < window_end_.load(std::memory_order_relaxed)) {
    Launch(slot);
    return;
  }
  absl::MutexLock lock(&done_mu_);
  --active_slots_;
}

absl::StatusOr<RunResult> LoadRunner::Run(Transport& transport) {
  transport_ = &transport;
  const int64_t base = SteadyNanos();
  const int64_t window_start = absl::ToInt64Nanoseconds(options_.warmup);
  const int64_t window_end =
      window_start + absl::ToInt64Nanoseconds(options_.duration);
  base_.store(base);
  window_start_.store(window_start);
  window_end_.store(window_end);
  {
    absl::MutexLock lock(&done_mu_);
    active_slots_ = options_.inflight;
  }
  for (size_t slot = 0; slot < options_.inflight; ++slot) Launch(slot);

  RunResult result;
  result.window = options_.duration;
  SleepUntilSteady(base + window_start);
  const absl::Duration client_before = SelfCpuTime();
  std::optional<absl::Duration> server_before;
  if (options_.server_pid.has_value()) {
    // A sidecar that is gone shows up as call errors; then no CPU figure.
    if (auto cpu = ProcessCpuTime(*options_.server_pid); cpu.ok()) {
      server_before = *cpu;
    }
  }
  std::vector<absl::StatusOr<absl::Duration>> groups_before;
  for (const ProcessGroup& group : options_.cpu_of) groups_before.push_back(GroupCpuTime(group));
  SleepUntilSteady(base + window_end);
  result.client_cpu = SelfCpuTime() - client_before;
  for (size_t i = 0; i < options_.cpu_of.size(); ++i) {
    const absl::StatusOr<absl::Duration> after = GroupCpuTime(options_.cpu_of[i]);
    result.cpu_of.push_back(groups_before[i].ok() && after.ok()
                                ? std::optional(*after - *groups_before[i])
                                : std::nullopt);
  }
  if (server_before.has_value()) {
    if (auto cpu = ProcessCpuTime(*options_.server_pid); cpu.ok()) {
      result.server_cpu = *cpu - *server_before;
    }
  }

  {
    absl::MutexLock lock(&done_mu_);
    const auto all_done = [](size_t* active) { return *active == 0; };
    if (!done_mu_.AwaitWithTimeout(absl::Condition(+all_done, &active_slots_),
                                   options_.drain_timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          active_slots_, " calls still outstanding ",
          absl::FormatDuration(options_.drain_timeout), " after the window"));
    }
  }
  for (size_t i = 0; i < num_shards_; ++i) {
    absl::MutexLock lock(&shards_[i].mu);
    result.latency.Merge(shards_[i].latency);
    for (int code = 0; code < kNumStatusCodes; ++code) {
      result.errors_by_code[code] += shards_[i].errors[code];
      result.errors += shards_[i].errors[code];
    }
  }
  result.calls = result.latency.count();
  return result;
}

}  // namespace stateside::bench

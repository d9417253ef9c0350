#include "tests/bench/load_runner.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <unistd.h>

#include "gtest/gtest.h"

namespace stateside::bench {
namespace {

// Completes each call on its own thread, in issue order; calls of slot 0 fail
// with UNAVAILABLE. Checks the runner's promises: never two calls on one slot,
// never more than `slots` outstanding.
class ThreadedFakeTransport final : public Transport {
 public:
  ThreadedFakeTransport(size_t slots, CompletionSink* sink)
      : sink_(sink), busy_(slots, false), worker_([this] { Work(); }) {}
  ~ThreadedFakeTransport() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  void Issue(size_t slot) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (slot >= busy_.size() || busy_[slot]) ++misuse_;
    if (slot < busy_.size()) busy_[slot] = true;
    ++outstanding_;
    max_outstanding_ = std::max(max_outstanding_, outstanding_);
    queue_.push_back(slot);
    cv_.notify_one();
  }

  size_t misuse() {
    std::lock_guard<std::mutex> lock(mu_);
    return misuse_;
  }
  size_t outstanding() {
    std::lock_guard<std::mutex> lock(mu_);
    return outstanding_;
  }
  size_t max_outstanding() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_outstanding_;
  }
  uint64_t completed() {
    std::lock_guard<std::mutex> lock(mu_);
    return completed_;
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      const size_t slot = queue_.front();
      queue_.pop_front();
      busy_[slot] = false;
      --outstanding_;
      ++completed_;
      lock.unlock();
      sink_->OnCallDone(slot, slot == 0 ? grpc::StatusCode::UNAVAILABLE
                                        : grpc::StatusCode::OK);
      lock.lock();
    }
  }

  CompletionSink* const sink_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<size_t> queue_;
  std::vector<bool> busy_;
  size_t outstanding_ = 0, max_outstanding_ = 0, misuse_ = 0;
  uint64_t completed_ = 0;
  bool stop_ = false;
  std::thread worker_;  // last: starts after the fields it reads
};

// Completes every call before Issue returns, on the issuing thread: the
// runner must iterate instead of recursing (millions of calls per second).
class InlineFakeTransport final : public Transport {
 public:
  explicit InlineFakeTransport(CompletionSink* sink) : sink_(sink) {}
  void Issue(size_t slot) override {
    ++issued_;
    sink_->OnCallDone(slot, grpc::StatusCode::OK);
  }
  uint64_t issued() const { return issued_; }

 private:
  CompletionSink* const sink_;
  uint64_t issued_ = 0;
};

RunnerOptions Options(size_t inflight) {
  RunnerOptions o;
  o.inflight = inflight;
  o.warmup = absl::Milliseconds(50);
  o.duration = absl::Milliseconds(300);
  o.drain_timeout = absl::Seconds(10);
  return o;
}

TEST(LoadRunnerTest, KeepsAtMostInflightCallsAndCountsErrorsByCode) {
  LoadRunner runner(Options(8));
  ThreadedFakeTransport transport(8, &runner);
  auto result = runner.Run(transport);
  ASSERT_TRUE(result.ok()) << result.status();

  EXPECT_EQ(transport.misuse(), 0u);
  EXPECT_LE(transport.max_outstanding(), 8u);
  EXPECT_EQ(transport.outstanding(), 0u) << "Run returned with calls in flight";
  EXPECT_GT(result->calls, 0u);
  EXPECT_GT(result->errors, 0u);
  EXPECT_EQ(result->errors, result->errors_by_code[grpc::StatusCode::UNAVAILABLE]);
  EXPECT_EQ(result->calls, result->latency.count());
  // Warm-up and drain completions are not counted.
  EXPECT_LT(result->calls + result->errors, transport.completed());
  EXPECT_EQ(result->window, absl::Milliseconds(300));
  // Slot 0 is one of 8 equally served slots: about 1/8 of the calls fail.
  const double failed = static_cast<double>(result->errors) /
                        static_cast<double>(result->calls + result->errors);
  EXPECT_NEAR(failed, 1.0 / 8, 0.05);
}

TEST(LoadRunnerTest, CompletionsOnTheIssuingThreadDoNotRecurse) {
  LoadRunner runner(Options(2));
  InlineFakeTransport transport(&runner);
  auto result = runner.Run(transport);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->calls, 1000u);
  EXPECT_EQ(result->errors, 0u);
}

TEST(LoadRunnerTest, ReportsServerCpuOnlyForALiveProcess) {
  RunnerOptions o = Options(1);
  o.server_pid = getpid();  // this process runs the fake: some CPU
  LoadRunner runner(o);
  ThreadedFakeTransport transport(1, &runner);
  auto result = runner.Run(transport);
  ASSERT_TRUE(result.ok());
  ASSERT_TRUE(result->server_cpu.has_value());
  EXPECT_GT(*result->server_cpu, absl::ZeroDuration());
  EXPECT_GT(result->client_cpu, absl::ZeroDuration());
}

}  // namespace
}  // namespace stateside::bench

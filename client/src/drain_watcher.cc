// DrainWatcher: one thread running WatchDrain streams, re-attaching with
// backoff. The contract is in stateside/drain_watcher.h.
#include "stateside/drain_watcher.h"

#include <grpcpp/grpcpp.h>

#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "client/src/channel.h"
#include "client/src/retry.h"
#include "stateside/v1/lifecycle.grpc.pb.h"

namespace stateside {

class DrainWatcher::Impl {
 public:
  Impl(const ClientOptions& client_options, Callback callback,
       DrainWatcherOptions options)
      : callback_(std::move(callback)),
        options_(options),
        stub_(v1::LifecycleService::NewStub(
            client_internal::MakeChannel(client_options))) {}

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

  void StartThread() { thread_ = std::thread([this] { Run(); }); }

  DrainState state() const {
    absl::MutexLock lock(&mu_);
    return state_;
  }
  int attached_count() const {
    absl::MutexLock lock(&mu_);
    return attached_;
  }
  bool done() const {
    absl::MutexLock lock(&mu_);
    return done_;
  }

 private:
  void Run() {
    for (int failures = 0;;) {
      ::grpc::ClientContext context;
      // Wait for the socket (a restarting sidecar) instead of failing at
      // once; the destructor's TryCancel ends the wait.
      context.set_wait_for_ready(true);
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) break;
        context_ = &context;
      }
      bool first_event = true;
      const absl::Status status = client_internal::RunDrainStream(
          *stub_, /*observer=*/false, context, [&](const DrainNotice& notice) {
            if (first_event) {
              first_event = false;
              failures = 0;  // attached: the next break starts a new backoff
              absl::MutexLock lock(&mu_);
              ++attached_;
            }
            return OnEvent(notice);
          });
      bool finished;
      {
        absl::MutexLock lock(&mu_);
        context_ = nullptr;
        // The sidecar ended the stream normally: it is shutting down and
        // there is nothing more to watch.
        finished = stopping_ || drained_delivered_ || status.ok();
        if (finished) break;
      }
      ++failures;
      const absl::Duration delay = client_internal::BackoffDelay(
          failures, options_.initial_backoff, options_.max_backoff,
          absl::Uniform(absl::IntervalClosed, rng_, 0.0, 1.0));
      absl::MutexLock lock(&mu_);
      // Wakes early when the destructor sets stopping_.
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), delay);
    }
    absl::MutexLock lock(&mu_);
    done_ = true;
  }

  // On the watcher thread. Returns whether to keep reading.
  bool OnEvent(const DrainNotice& notice) {
    bool deliver = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return false;
      state_ = notice.state;
      if (notice.state == DrainState::kDraining && !draining_delivered_) {
        draining_delivered_ = deliver = true;
      } else if (notice.state == DrainState::kDrained && !drained_delivered_) {
        // A late watcher may see DRAINED first; DRAINING is not invented.
        draining_delivered_ = drained_delivered_ = deliver = true;
      }
    }
    // Outside the lock: the callback may call state() or block.
    if (deliver) callback_(notice);
    return notice.state != DrainState::kDrained;
  }

  // Constant after construction.
  const Callback callback_;
  const DrainWatcherOptions options_;
  const std::unique_ptr<v1::LifecycleService::Stub> stub_;
  std::thread thread_;  // set once by StartThread, joined by ~Impl
  absl::BitGen rng_;    // watcher thread only

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The open stream's context, for the destructor to cancel.
  ::grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  DrainState state_ ABSL_GUARDED_BY(mu_) = DrainState::kUnspecified;
  bool draining_delivered_ ABSL_GUARDED_BY(mu_) = false;
  bool drained_delivered_ ABSL_GUARDED_BY(mu_) = false;
  int attached_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<std::unique_ptr<DrainWatcher>> DrainWatcher::Start(
    const ClientOptions& client_options, Callback callback,
    DrainWatcherOptions options) {
  if (client_options.socket_path.empty()) {
    return absl::InvalidArgumentError("socket_path: empty");
  }
  if (!callback) return absl::InvalidArgumentError("callback: empty");
  if (options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff ||
      options.max_backoff == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        "initial_backoff/max_backoff: need 0 < initial_backoff <= max_backoff");
  }
  auto impl = std::make_unique<Impl>(client_options, std::move(callback), options);
  impl->StartThread();
  return std::unique_ptr<DrainWatcher>(new DrainWatcher(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<DrainWatcher>> DrainWatcher::Start(
    const Client& client, Callback callback, DrainWatcherOptions options) {
  return Start(client.options(), std::move(callback), options);
}

DrainWatcher::DrainWatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DrainWatcher::~DrainWatcher() = default;

DrainState DrainWatcher::state() const { return impl_->state(); }
int DrainWatcher::attached_count() const { return impl_->attached_count(); }
bool DrainWatcher::done() const { return impl_->done(); }

}  // namespace stateside

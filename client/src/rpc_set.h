// RpcSet: unary gRPC calls made with the callback API, kept track of so that
// they can all be ended at once: what the unary session transport and the
// realtime Async forms issue their attempts through.
// Thread-safe: Issue from any thread, including from a `done`.
#ifndef STATESIDE_CLIENT_SRC_RPC_SET_H_
#define STATESIDE_CLIENT_SRC_RPC_SET_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/src/convert.h"

namespace stateside::client_internal {

class RpcSet {
 public:
  RpcSet() = default;
  ~RpcSet() { Shutdown(); }
  RpcSet(const RpcSet&) = delete;
  RpcSet& operator=(const RpcSet&) = delete;

  // Issues `rpc(context, &request, &response, on_done)` (a stub's async()
  // method) with `deadline`; `done(status, response)` runs exactly once, on
  // a gRPC thread, or on this one before Issue returns (CANCELLED) after
  // Shutdown.
  template <typename Request, typename Response, typename Rpc, typename Done>
  void Issue(Request request, absl::Time deadline, const Rpc& rpc, Done done) {
    struct Attempt : Running {
      Request request;
      Response response;
      Done done;
      explicit Attempt(Done d) : done(std::move(d)) {}
    };
    auto attempt = std::make_shared<Attempt>(std::move(done));
    Attempt* a = attempt.get();
    a->request = std::move(request);
    a->context.set_deadline(absl::ToChronoTime(deadline));
    bool refused = false;
    {
      absl::MutexLock lock(&mu_);
      refused = shut_down_;
      if (!refused) running_.emplace(a, std::move(attempt));
    }
    if (refused) {
      return a->done(absl::CancelledError("the client is shutting down"), a->response);
    }
    rpc(&a->context, &a->request, &a->response, [this, a](::grpc::Status status) {
      a->done(FromGrpcStatus(status), a->response);
      Finish(a);
    });
  }

  // Ends every call still running with CANCELLED, waits until their
  // callbacks have run, and refuses later ones. Idempotent.
  void Shutdown() {
    std::vector<std::shared_ptr<Running>> running;
    {
      absl::MutexLock lock(&mu_);
      shut_down_ = true;
      for (const auto& [key, attempt] : running_) running.push_back(attempt);
    }
    // Unlocked: a callback that TryCancel runs at once takes mu_. The shared
    // pointers keep the contexts alive meanwhile.
    for (const auto& attempt : running) attempt->context.TryCancel();
    running.clear();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](RpcSet* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
          return s->running_.empty() && s->finishing_ == 0;
        },
        this));
  }

 private:
  struct Running {
    virtual ~Running() = default;
    ::grpc::ClientContext context;
  };

  // After `done`: frees the attempt (its context holds a reference to the
  // channel) while `finishing_` keeps Shutdown waiting, so the Client — and
  // with it the last reference to the channel — is certainly alive:
  // dropping a channel's last reference on a gRPC callback thread deadlocks
  // gRPC's callback thread pool, which then crashes.
  void Finish(Running* a) {
    std::shared_ptr<Running> attempt;
    {
      absl::MutexLock lock(&mu_);
      auto it = running_.find(a);
      attempt = std::move(it->second);
      running_.erase(it);  // before the free: a new attempt may reuse the address
      ++finishing_;
    }
    attempt.reset();
    absl::MutexLock lock(&mu_);
    --finishing_;
  }

  absl::Mutex mu_;
  // The calls running (each keyed by itself), for Shutdown to cancel them;
  // shared so that Shutdown can cancel one outside the lock.
  absl::flat_hash_map<Running*, std::shared_ptr<Running>> running_ ABSL_GUARDED_BY(mu_);
  // Callbacks past their entry's removal, still freeing their call.
  int finishing_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_RPC_SET_H_

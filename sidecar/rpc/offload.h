// A small bounded thread pool for the operations that still wait on their
// store: the multi-step ones (Create of a user's session, Regenerate, a
// user's listing and logout, a request_id's ledger claim) and the opt-outs,
// which on Redis block their thread for one or more round trips. gRPC runs
// the callback API on very few threads (two on a two-core machine), so such
// an operation runs here and the gRPC thread returns at once.
//
// Bounded in both directions: a fixed number of threads and at most
// `max_queued` tasks waiting for one; a task that finds the queue full is
// refused at once (UNAVAILABLE, reason OVERLOADED: nothing was done, so a
// client may retry it), never queued without bound.
//
// A task may come with a probe of its call (cancelled, past its deadline):
// one that the probe reports gone when a thread takes it is answered the
// probe's status (CANCELLED, DEADLINE_EXCEEDED) without running, so the
// backlog of calls whose clients gave up neither takes effect nor holds the
// threads. At server shutdown FailQueued answers what still waits
// UNAVAILABLE without running it.
// Thread-safe.
#ifndef STATESIDE_SIDECAR_RPC_OFFLOAD_H_
#define STATESIDE_SIDECAR_RPC_OFFLOAD_H_

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/admin/metrics.h"

namespace stateside::rpc {

class Offload {
 public:
  // Runs exactly once with the admission: OK on a pool thread, or the
  // refusal (UNAVAILABLE, reason OVERLOADED: the queue is full; UNAVAILABLE:
  // the pool is shut down) inline, before Run returns, or on a pool thread
  // the probe's status or FailQueued's. It may block (that is what the pool
  // is for) only when admitted OK.
  using Task = absl::AnyInvocable<void(absl::Status) &&>;
  // OK while the task's call still wants an answer; else the status to
  // answer it (CANCELLED, DEADLINE_EXCEEDED). Called on a pool thread.
  using Probe = absl::AnyInvocable<absl::Status()>;

  // REQUIRES: threads > 0, max_queued > 0; `metrics` (may be null: not
  // metered) outlives the pool.
  Offload(size_t threads, size_t max_queued, admin::Metrics* metrics = nullptr);
  // Shutdown().
  ~Offload();
  Offload(const Offload&) = delete;
  Offload& operator=(const Offload&) = delete;

  void Run(Task task, Probe probe = nullptr);

  // Answers every queued task `status` (not OK) on the calling thread without
  // running it, and refuses new tasks UNAVAILABLE. The tasks running finish.
  void FailQueued(absl::Status status);

  // Refuses new tasks, runs every queued one (minus those its probe reports
  // gone) and joins the threads.
  // Idempotent. REQUIRES: not called from a pool thread.
  void Shutdown();

  // Tasks queued and not yet started (for tests and /metrics).
  size_t queued() const;

 private:
  struct Queued {
    Task task;
    Probe probe;
  };
  void Work();

  const size_t max_queued_;
  admin::Metrics* const metrics_;
  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // constant after construction until Shutdown
  absl::Mutex join_mu_;               // serializes Shutdown's join
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_OFFLOAD_H_

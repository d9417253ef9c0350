// StreamReactor: the write side every streaming reactor of the gRPC layer
// shares (Subscribe, WatchDrain, Pipe). grpc++ allows one write in flight per
// stream and one Finish, while the events that move a stream on (a
// producer's wake-up, OnWriteDone, OnCancel, a completed call) arrive on any
// thread and race. Each event goes through the same three steps:
//   1. under the stream's mutex, update the state and let the derived class
//      decide the next Step (NextLocked);
//   2. release the mutex: grpc++ may run reactions inline, so StartWrite,
//      StartRead and Finish are never called under it;
//   3. carry the Step out (Carry).
// The write buffer belongs to the write, not to the lock: from
// BeginWriteLocked until OnWriteDone nobody else touches it (SingleOwner
// checks this in debug builds), so it can be filled under the lock and sent
// outside it.
//
// The mutex lives in a Shared block that outlives the reactor: a producer
// still holding a copy of a wake-up callback after OnDone finds `reactor`
// cleared (Detach) and does nothing. `Extra` is what else the derived class
// must keep past its own life under the same mutex.
//
// Thread-safety: OnWriteDone, OnCancel, Wake and the derived class's own
// events may race; every field they share is under shared_->mu. The derived
// class's OnDone calls Detach, then deletes the reactor.
#ifndef STATESIDE_SIDECAR_RPC_STREAM_REACTOR_H_
#define STATESIDE_SIDECAR_RPC_STREAM_REACTOR_H_

#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/common/single_owner.h"

namespace stateside::rpc {

struct NoExtra {};

// GrpcReactor: grpc::ServerWriteReactor<Response> or
// grpc::ServerBidiReactor<Request, Response>.
template <typename GrpcReactor, typename Response, typename Extra = NoExtra>
class StreamReactor : public GrpcReactor {
 public:
  // Ends the write in flight; a failed write means the client is gone.
  void OnWriteDone(bool ok) final {
    write_owner_.Release();
    Step step;
    {
      absl::MutexLock lock(&shared_->mu);
      writing_ = false;
      WriteDoneLocked();
      if (!ok) CancelLocked();  // the stream broke under the write
      step = NextLocked();
    }
    Carry(step);
  }

  void OnCancel() final {
    Step step;
    {
      absl::MutexLock lock(&shared_->mu);
      CancelLocked();
      step = NextLocked();  // finishes now, or after the write in flight
    }
    Carry(step);
  }

 protected:
  // What to do once the lock is released, in this order.
  struct Step {
    bool write = false;   // send the buffer BeginWriteLocked handed out
    bool read = false;    // StartNextRead
    bool finish = false;  // Finish(status)
    grpc::Status status;
  };
  struct Shared {
    absl::Mutex mu;
    StreamReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;  // until Detach
    Extra extra ABSL_GUARDED_BY(mu);
  };

  StreamReactor() : shared_(std::make_shared<Shared>()) {
    absl::MutexLock lock(&shared_->mu);
    shared_->reactor = this;
  }
  ~StreamReactor() override = default;

  // Moves the reactor behind `shared` on, if it is still there: runs
  // `update_locked` on it (under the lock: it must AssertHeld to touch
  // guarded fields), then its next Step. For producers' callbacks, which may
  // outlive the reactor.
  static void Wake(const std::shared_ptr<Shared>& shared,
                   absl::FunctionRef<void(StreamReactor*)> update_locked) {
    StreamReactor* self = nullptr;
    Step step;
    {
      absl::MutexLock lock(&shared->mu);
      self = shared->reactor;
      if (self == nullptr) return;
      self->shared_->mu.AssertHeld();  // the same Shared: tells the analysis
      update_locked(self);
      step = self->NextLocked();
    }
    // Nothing to do: the reactor may be gone by now (OnDone after a Step
    // carried elsewhere), so it is not touched again.
    if (!step.write && !step.read && !step.finish) return;
    // A Step decided under the lock keeps the reactor alive: OnDone comes
    // only after its Finish, and after OnWriteDone of its write.
    self->Carry(step);
  }
  static void Wake(const std::shared_ptr<Shared>& shared) {
    Wake(shared, [](StreamReactor*) {});
  }

  // Decides the next Step from the state (setting writing_ through
  // BeginWriteLocked, finished_ with a finish).
  virtual Step NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) = 0;
  // Hooks, all optional: after a write completed; once when the client is
  // gone (cancelled_ just set); the buffer's last touch before the write,
  // outside the lock; the read a Step asked for.
  virtual void WriteDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {}
  virtual void ClientGoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {}
  virtual void PrepareWrite(Response* /*out*/) {}
  virtual void StartNextRead() {}

  // Hands the write buffer to a new write. REQUIRES: no write in flight.
  Response* BeginWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
    write_owner_.Acquire();
    writing_ = true;
    return &out_;
  }

  void CancelLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
    if (cancelled_) return;
    cancelled_ = true;
    ClientGoneLocked();
  }

  // Locks, decides, carries out: for an event with nothing to update.
  void Advance() {
    Step step;
    {
      absl::MutexLock lock(&shared_->mu);
      step = NextLocked();
    }
    Carry(step);
  }

  // Carries out a Step decided under the lock. REQUIRES: the lock released.
  void Carry(const Step& step) {
    if (step.write) {
      write_owner_.AssertHeld();
      PrepareWrite(&out_);
      this->StartWrite(&out_);
    }
    if (step.read) StartNextRead();
    if (step.finish) this->Finish(step.status);
  }

  // From OnDone: later wake-ups find no reactor.
  void Detach() {
    absl::MutexLock lock(&shared_->mu);
    shared_->reactor = nullptr;
  }

  const std::shared_ptr<Shared> shared_;
  bool writing_ ABSL_GUARDED_BY(shared_->mu) = false;    // a write is in flight
  bool cancelled_ ABSL_GUARDED_BY(shared_->mu) = false;  // stop writing, finish
  bool finished_ ABSL_GUARDED_BY(shared_->mu) = false;   // Finish decided

 private:
  SingleOwner write_owner_;  // who holds out_
  Response out_;             // the write in flight's buffer
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_STREAM_REACTOR_H_

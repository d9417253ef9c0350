// SessionService.Pipe: session and opt-out operations multiplexed on one
// bidirectional stream (see PipeCall in session.proto).
//
// Reading: each message's calls are dispatched at once to the shared
// operations (operations.h); results come back in completion order, from
// whichever thread completed them. Writing: one write at a time (a second
// StartWrite before OnWriteDone is undefined in grpc++), and each write
// carries every result that became ready while the previous one was in
// flight — so under load one message answers many calls, and the calls of
// one read reach the Redis layer together, where they pipeline into one
// Redis write. Backpressure: `outstanding` counts the calls read whose
// result has not been written; at max_outstanding the reactor stops reading
// (the client's sends then block on HTTP/2 flow control), and a message holds
// at most kMaxCallsPerMessage calls, so a client that stops reading cannot
// grow the sidecar's memory beyond about two thousand answers per stream.
//
// Get and Update complete asynchronously; the other operations run on the
// thread that read the message (as their unary handlers do).
//
// A message that does not parse ends the stream with INVALID_ARGUMENT after
// the calls already read are answered. The stream ends OK when the client
// half-closes and every result is written; CANCELLED if the client goes.
#ifndef STATESIDE_SIDECAR_RPC_PIPE_H_
#define STATESIDE_SIDECAR_RPC_PIPE_H_

#include <cstddef>
#include <deque>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/rpc/operations.h"
#include "stateside/v1/session.pb.h"

namespace stateside::rpc {

class PipeReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  static constexpr size_t kMaxOutstanding = 1024;
  // Calls one message may carry: with kMaxOutstanding, what a stream can have
  // unanswered is bounded whatever the messages hold (a bigger one ends the
  // stream with RESOURCE_EXHAUSTED).
  static constexpr int kMaxCallsPerMessage = 1024;
  // A write holds results up to this size (or a single larger one): clients
  // keep gRPC's default 4 MiB receive limit or more.
  static constexpr size_t kMaxWriteBytes = 1 << 20;

  // REQUIRES: `ops` (and `metrics` if not null) outlive every stream.
  static PipeReactor* Start(const Operations* ops, admin::Metrics* metrics,
                            size_t max_outstanding = kMaxOutstanding);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  struct Pending;  // one call between dispatch and its result

  PipeReactor(const Operations* ops, admin::Metrics* metrics, size_t max_outstanding);
  void Dispatch(v1::PipeCall& call);
  void Complete(Pending* pending, absl::Status status);
  // What to do once the lock is released (grpc++ calls are made unlocked).
  struct Next {
    bool write = false;  // batch_ holds the results; serialize, then write
    bool read = false;
    bool finish = false;
    grpc::Status finish_status;
  };
  Next NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Do(const Next& next);

  const Operations* const ops_;
  admin::Metrics* const metrics_;
  const size_t max_outstanding_;
  grpc::ByteBuffer read_buffer_;  // owned by the pending read

  absl::Mutex mu_;
  std::deque<v1::PipeResult> ready_ ABSL_GUARDED_BY(mu_);  // not yet written
  // The write in flight and the results it carries: filled and serialized
  // by the thread that set writing_, untouched until OnWriteDone.
  grpc::ByteBuffer write_buffer_;
  v1::PipeResponse batch_;
  size_t in_write_ ABSL_GUARDED_BY(mu_) = 0;     // results in that write
  size_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;  // read, result not yet written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;    // a read is pending
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;  // half-close, error or bad message
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;    // the client went away
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);   // OK or the bad-message error
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_PIPE_H_

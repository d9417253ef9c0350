// SessionService.Pipe: session and opt-out operations multiplexed on one
// bidirectional stream (see PipeCall in session.proto).
//
// Reading: each message is split into its calls' bytes (pipe_wire.h) and
// each call is parsed on its own, so a malformed call (invalid UTF-8 in a
// string, a broken field) is answered INVALID_ARGUMENT alone, with its id
// when the id can be read (else id 0); only a message whose framing is
// broken ends the stream (INVALID_ARGUMENT, after the calls already read are
// answered). The calls are dispatched at once to the shared operations
// (operations.h); results come back in completion order, from whichever
// thread completed them. Writing: one write at a time (a second StartWrite
// before OnWriteDone is undefined in grpc++), and each write carries every
// result that became ready while the previous one was in flight — so under
// load one message answers many calls, and the calls of one read reach the
// Redis layer together, where they pipeline into one Redis write. Results
// that complete inside a CompletionBatch (common/completion_batch.h: the
// replies of one Redis socket read, the calls one message answers at once)
// only queue; the write starts when the batch ends, so a batch of replies
// is one stream write rather than its first result alone and then the rest.
//
// Limits: the stream's initial metadata, sent at once, announces the
// server's receive limit (kMaxMessageBytesKey) so that a client can keep its
// batches below it. An id already in flight on the stream is refused
// (INVALID_ARGUMENT, the first call proceeds). Backpressure: the reactor
// stops reading while `outstanding` (calls read whose result has not been
// written) reaches max_outstanding or the results waiting for the wire hold
// kMaxQueuedBytes; the client's sends then block on HTTP/2 flow control.
// A message holds at most kMaxCallsPerMessage calls, so what one read adds
// is bounded too.
//
// Calls run as their unary handlers do (operations.h): Get, Update, Touch,
// Destroy and an anonymous Create asynchronously on the store's thread, the
// others on the offload pool. So the calls of one message, or of messages
// in flight together, run concurrently and complete in any order: a call
// that must see another's effect is sent after that one's result.
//
// Fairness: at most kMaxOffloadedPerStream of a stream's calls that go to
// the shared offload pool (a user's Create or one with a request_id,
// Regenerate, the user listings and logouts, opt-outs) are dispatched at
// once; the stream's further ones wait in its own FIFO, dispatched as those
// complete, so one stream cannot fill the pool's queue for everyone. They
// count as outstanding meanwhile, so reading stops as above.
//
// The stream ends OK when the client half-closes and every result is
// written; CANCELLED if the client goes.
#ifndef STATESIDE_SIDECAR_RPC_PIPE_H_
#define STATESIDE_SIDECAR_RPC_PIPE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/common/call_pool.h"
#include "sidecar/rpc/operations.h"
#include "sidecar/rpc/stream_reactor.h"
#include "stateside/v1/session.pb.h"

namespace stateside::rpc {

class PipeReactor final
    : public StreamReactor<grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                           grpc::ByteBuffer> {
 public:
  static constexpr size_t kMaxOutstanding = 1024;
  // A stream's calls dispatched to the offload pool at once (see the top).
  static constexpr size_t kMaxOffloadedPerStream = 64;
  // Calls one message may carry: with kMaxOutstanding, what a stream can have
  // unanswered is bounded whatever the messages hold (a bigger one ends the
  // stream with RESOURCE_EXHAUSTED).
  static constexpr int kMaxCallsPerMessage = 1024;
  // A write holds results up to this size (or a single larger one): clients
  // keep gRPC's default 4 MiB receive limit or more.
  static constexpr size_t kMaxWriteBytes = 1 << 20;
  // Results waiting for the wire past which the reactor stops reading: with
  // sessions of up to 256 KiB, the count bound alone would let a client that
  // does not read park a quarter of a gigabyte per stream.
  static constexpr size_t kMaxQueuedBytes = 4 << 20;
  // A stream keeps at most this many per-call objects (each with its arena's
  // first block) for its next calls (CallPool): a call reuses one of a call
  // whose result was written.
  static constexpr size_t kKeptCalls = 64;
  // The initial-metadata key announcing the largest message the server
  // accepts (decimal bytes).
  static constexpr std::string_view kMaxMessageBytesKey = "stateside-max-message-bytes";

  // Starts the stream: announces `max_message_bytes` (the server's receive
  // limit) in the initial metadata and reads the first message.
  // REQUIRES: `context`, `ops` (and `metrics` if not null) outlive every
  // stream.
  static PipeReactor* Start(grpc::CallbackServerContext* context, const Operations* ops,
                            admin::Metrics* metrics, size_t max_message_bytes,
                            size_t max_outstanding = kMaxOutstanding,
                            size_t max_offloaded = kMaxOffloadedPerStream);

  void OnReadDone(bool ok) override;
  void OnDone() override;

  // For tests: the per-call objects every stream of this process has made.
  static size_t CallsMadeForTest() { return calls_made_.load(); }

 private:
  // One call between dispatch and its result, and then until its result is
  // written: the result lives on the call's own arena. Taken from pool_ and
  // given back once written (or dropped).
  struct Pending;
  struct PendingDelete {
    void operator()(Pending* pending) const;
  };
  using PendingPtr = std::unique_ptr<Pending, PendingDelete>;
  struct Ready {  // a result waiting for the wire
    PendingPtr pending;
    size_t bytes;  // its encoded size, counted against kMaxQueuedBytes
  };

  struct Deferred {  // an offloadable call waiting for the stream's quota
    v1::PipeCall call;
    absl::Time read;
  };

  PipeReactor(const Operations* ops, admin::Metrics* metrics, size_t max_outstanding,
              size_t max_offloaded);
  // Answers `status` for call `id` without running anything (a malformed
  // call, a duplicate id); the id is not registered in in_flight_.
  void Refuse(Pending* pending, uint64_t id, absl::Status status);
  // Starts `call` on `pending`, read at `read` (its timeout counts from there).
  void Dispatch(Pending* pending, v1::PipeCall& call, absl::Time read);
  // A call object from pool_, ready for a call.
  Pending* TakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);
  // Dispatches the deferred calls the quota lets through (or, on a
  // cancelled stream, answers them CANCELLED), unless a thread already
  // does. Any thread; one pumps at a time (pumping_).
  void Pump();
  // Pump's loop. REQUIRES: this thread set pumping_ and counted itself in
  // outstanding_; both are undone when nothing more can go.
  void PumpLoop();
  void Complete(Pending* pending, absl::Status status);
  // The end of the CompletionBatch in which results were queued without a
  // write: starts it (flush_deferred_).
  void FlushDeferred();
  // The write side's hooks (stream_reactor.h): a write carries batch_.
  Step NextLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);
  void WriteDoneLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);
  void ClientGoneLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);
  void PrepareWrite(grpc::ByteBuffer* out) override;
  void StartNextRead() override;

  const Operations* const ops_;
  admin::Metrics* const metrics_;
  const size_t max_outstanding_;
  const size_t max_offloaded_;
  grpc::ByteBuffer read_buffer_;  // owned by the pending read

  std::deque<Ready> ready_ ABSL_GUARDED_BY(shared_->mu);  // not yet written
  size_t ready_bytes_ ABSL_GUARDED_BY(shared_->mu) = 0;   // their encoded sizes
  // Ids of the calls dispatched and not yet completed: a second call with
  // one of them is refused (its answer would be indistinguishable).
  absl::flat_hash_set<uint64_t> in_flight_ ABSL_GUARDED_BY(shared_->mu);
  // The results of the write in flight: owned by the write with its buffer,
  // not locked — filled by NextLocked after BeginWriteLocked, encoded (as
  // one PipeResponse) and released by PrepareWrite.
  std::vector<Ready> batch_;
  size_t in_write_ ABSL_GUARDED_BY(shared_->mu) = 0;     // results in that write
  size_t outstanding_ ABSL_GUARDED_BY(shared_->mu) = 0;  // read, result not yet written
  bool reading_ ABSL_GUARDED_BY(shared_->mu) = false;      // a read is pending
  bool read_closed_ ABSL_GUARDED_BY(shared_->mu) = false;  // half-close, error or bad message
  absl::Status end_status_ ABSL_GUARDED_BY(shared_->mu);   // OK or the bad-message error
  std::deque<Deferred> deferred_ ABSL_GUARDED_BY(shared_->mu);  // over the quota, in order
  size_t offloaded_ ABSL_GUARDED_BY(shared_->mu) = 0;  // offloadable calls dispatched, not done
  bool pumping_ ABSL_GUARDED_BY(shared_->mu) = false;  // a thread is in Pump
  // A FlushDeferred is waiting for the end of a CompletionBatch; it counts
  // in outstanding_ until it runs, so the stream cannot finish under it.
  bool flush_deferred_ ABSL_GUARDED_BY(shared_->mu) = false;
  // The calls' objects: taken where calls are counted, given back once
  // their results are written or dropped.
  CallPool<Pending> pool_ ABSL_GUARDED_BY(shared_->mu);
  static std::atomic<size_t> calls_made_;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_PIPE_H_

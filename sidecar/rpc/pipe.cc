#include "sidecar/rpc/pipe.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <google/protobuf/arena.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/slice.h>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sidecar/common/completion_batch.h"
#include "sidecar/rpc/pipe_call.h"
#include "sidecar/rpc/pipe_wire.h"
#include "sidecar/rpc/status.h"
#include "sidecar/rpc/unary_call.h"

namespace stateside::rpc {

// The call's result and everything under it (a session's metadata,
// timestamps and attribute map) are allocated on its arena, in its first
// block (kept by the object, across its calls) for a common result, and
// reset once written: no allocation per message. The attribute values moved
// into the map keep their own buffers.
struct PipeReactor::Pending final : Operations::Call {
  static constexpr size_t kArenaBlock = 1024;

  explicit Pending(PipeReactor* stream) : reactor(stream), arena(ArenaOptionsOf(first_block)) {}

  static google::protobuf::ArenaOptions ArenaOptionsOf(char* first) {
    google::protobuf::ArenaOptions options;
    options.initial_block = first;
    options.initial_block_size = kArenaBlock;
    options.start_block_size = kArenaBlock;
    return options;
  }

  // Given back to the pool: the last call's result goes with the arena's
  // other blocks (the first block stays), and its data with it.
  void Recycle() override {
    result = nullptr;
    arena.Reset();
    Operations::Call::Recycle();
  }

  // Ready for its next call (a recycled arena's Reset costs nothing).
  void Reset() {
    arena.Reset();
    result = google::protobuf::Arena::CreateMessage<v1::PipeResult>(&arena);
    run = PipeCallRun{};
    owns_id = false;
    offloaded = false;
  }

  void OperationDone(absl::Status status) override { reactor->Complete(this, std::move(status)); }

  PipeReactor* const reactor;
  alignas(8) char first_block[kArenaBlock];  // before arena, which uses it
  google::protobuf::Arena arena;
  v1::PipeResult* result = nullptr;  // on arena
  PipeCallRun run;
  bool owns_id = false;  // its id is in in_flight_ until it completes
  bool offloaded = false;  // counted in offloaded_ until it completes
};

std::atomic<size_t> PipeReactor::calls_made_{0};

void PipeReactor::PendingDelete::operator()(Pending* pending) const { delete pending; }

namespace {

// Whether `call` may wait for the offload pool (operations.cc): counted
// against the stream's quota. An anonymous Create with a request_id counts
// even when no ledger makes it offloaded.
bool Offloadable(const v1::PipeCall& call) {
  switch (call.op_case()) {
    case v1::PipeCall::kCreate:
      return !call.create().user_id().empty() || !call.create().request_id().empty();
    case v1::PipeCall::kRegenerate:
    case v1::PipeCall::kListUserSessions:
    case v1::PipeCall::kDestroyUserSessions:
    case v1::PipeCall::kSetOptOut:
    case v1::PipeCall::kGetOptOut:
      return true;
    default:
      return false;
  }
}

}  // namespace

PipeReactor* PipeReactor::Start(grpc::CallbackServerContext* context, const Operations* ops,
                                admin::Metrics* metrics, size_t max_message_bytes,
                                size_t max_outstanding, size_t max_offloaded) {
  context->AddInitialMetadata(std::string(kMaxMessageBytesKey),
                              std::to_string(max_message_bytes));
  auto* reactor = new PipeReactor(ops, metrics, max_outstanding, max_offloaded);
  // At once, not with the first answer: a client sizes its first write by it.
  reactor->StartSendInitialMetadata();
  reactor->Advance();  // the first read
  return reactor;
}

PipeReactor::PipeReactor(const Operations* ops, admin::Metrics* metrics,
                         size_t max_outstanding, size_t max_offloaded)
    : ops_(ops),
      metrics_(metrics),
      max_outstanding_(max_outstanding == 0 ? 1 : max_outstanding),
      max_offloaded_(max_offloaded == 0 ? 1 : max_offloaded),
      pool_(kKeptCalls, &calls_made_) {}

void PipeReactor::OnReadDone(bool ok) {
  // Each call is parsed on its own (pipe_wire.h): only a message whose
  // framing is broken, or that carries too many calls, ends the stream.
  std::vector<std::string_view> call_bytes;
  grpc::Slice slice;  // holds the bytes the views point into
  absl::Status bad;
  if (ok) {
    if (!read_buffer_.DumpToSingleSlice(&slice).ok()) {
      bad = absl::InvalidArgumentError("malformed request: unreadable message");
    } else {
      bad = SplitPipeRequest(
          std::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size()),
          &call_bytes);
    }
    if (bad.ok() && call_bytes.size() > static_cast<size_t>(kMaxCallsPerMessage)) {
      bad = absl::ResourceExhaustedError(absl::StrCat(
          "a Pipe message carries at most ", kMaxCallsPerMessage, " calls; this one had ",
          call_bytes.size()));
    }
  }
  if (!ok || !bad.ok()) {
    Step step;
    {
      absl::MutexLock lock(&shared_->mu);
      reading_ = false;
      read_closed_ = true;
      if (!bad.ok() && end_status_.ok()) end_status_ = bad;
      step = NextLocked();
    }
    return Carry(step);
  }
  enum class Kind : uint8_t { kCall, kDeferred, kMalformed, kDuplicate };
  const absl::Time read = absl::Now();
  std::vector<v1::PipeCall> calls(call_bytes.size());
  std::vector<Kind> kinds(call_bytes.size(), Kind::kCall);
  // A deferred call takes its object when it is dispatched (PumpLoop).
  absl::InlinedVector<Pending*, 16> pending(calls.size(), nullptr);
  for (size_t i = 0; i < call_bytes.size(); ++i) {
    if (!calls[i].ParseFromArray(call_bytes[i].data(), static_cast<int>(call_bytes[i].size()))) {
      kinds[i] = Kind::kMalformed;
    }
  }
  {
    // Counted before any completes (a memory-store call completes inline),
    // and every id of the message registered before any runs, so a
    // duplicate within one message is seen too.
    // The offloadable calls queue in the stream's FIFO (Pump dispatches
    // them within the quota), in order.
    absl::MutexLock lock(&shared_->mu);
    outstanding_ += calls.size();
    for (size_t i = 0; i < calls.size(); ++i) {
      if (kinds[i] == Kind::kCall) {
        if (!in_flight_.insert(calls[i].id()).second) {
          kinds[i] = Kind::kDuplicate;
        } else if (Offloadable(calls[i])) {
          kinds[i] = Kind::kDeferred;
          deferred_.push_back(Deferred{std::move(calls[i]), read});
          continue;
        }
      }
      pending[i] = TakeLocked();
    }
  }
  {
    // What completes inline (refusals, the memory store's calls) goes out
    // in one write when this scope ends.
    CompletionBatch batch;
    for (size_t i = 0; i < calls.size(); ++i) {
      switch (kinds[i]) {
        case Kind::kCall:
          Dispatch(pending[i], calls[i], read);
          break;
        case Kind::kDeferred:
          break;
        case Kind::kMalformed: {
          uint64_t id = 0;
          absl::Status status = MalformedPipeCall(call_bytes[i], &id);
          Refuse(pending[i], id, std::move(status));
          break;
        }
        case Kind::kDuplicate:
          Refuse(pending[i], calls[i].id(), DuplicatePipeCall(calls[i].id(), "stream"));
          break;
      }
    }
    Pump();
  }
  Step step;
  {
    absl::MutexLock lock(&shared_->mu);
    reading_ = false;
    step = NextLocked();
  }
  Carry(step);
}

void PipeReactor::Pump() {
  {
    absl::MutexLock lock(&shared_->mu);
    if (pumping_) return;  // that thread's loop sees what we would
    pumping_ = true;
    ++outstanding_;  // the pump keeps the stream from finishing under it
  }
  PumpLoop();
}

void PipeReactor::PumpLoop() {
  Step step;
  for (;;) {
    Deferred next;
    bool cancelled = false;
    Pending* pending = nullptr;
    {
      absl::MutexLock lock(&shared_->mu);
      // Checked and released in one critical section: a completion that
      // frees a place afterwards pumps itself.
      if (deferred_.empty() || (offloaded_ >= max_offloaded_ && !cancelled_)) {
        pumping_ = false;
        --outstanding_;
        step = NextLocked();
        break;
      }
      next = std::move(deferred_.front());
      deferred_.pop_front();
      cancelled = cancelled_;
      if (!cancelled) ++offloaded_;
      pending = TakeLocked();
    }
    if (cancelled) {
      // Nobody to tell: answered (and counted down) without running.
      pending->result->set_id(next.call.id());
      pending->run.started = next.read;
      pending->owns_id = true;
      pending->run.method = PipeMethod(PipeTransport::kPipe, v1::PipeCall::OP_NOT_SET);
      if (metrics_ != nullptr) metrics_->RpcStarted();
      Complete(pending, absl::CancelledError("the stream was cancelled"));
      continue;
    }
    Dispatch(pending, next.call, next.read);
  }
  Carry(step);
}

PipeReactor::Pending* PipeReactor::TakeLocked() {
  Pending* pending = pool_.Take(this);
  pending->Reset();
  return pending;
}

void PipeReactor::Refuse(Pending* pending, uint64_t id, absl::Status status) {
  pending->result->set_id(id);
  pending->run.started = absl::Now();
  pending->run.method = PipeMethod(PipeTransport::kPipe, v1::PipeCall::OP_NOT_SET);
  if (metrics_ != nullptr) metrics_->RpcStarted();
  Complete(pending, std::move(status));
}

void PipeReactor::Dispatch(Pending* pending, v1::PipeCall& call, absl::Time read) {
  pending->result->set_id(call.id());
  pending->run.started = read;
  pending->owns_id = true;
  pending->offloaded = Offloadable(call);
  if (metrics_ != nullptr) metrics_->RpcStarted();
  // An offloaded call that waits past its deadline, or whose stream the
  // client cancelled, is answered without running (offload.h).
  Offload::Probe probe = [this, pending]() -> absl::Status {
    {
      absl::MutexLock lock(&shared_->mu);
      if (cancelled_) return absl::CancelledError("the stream was cancelled");
    }
    if (absl::Now() > pending->run.deadline) {
      return absl::DeadlineExceededError("deadline exceeded before the call ran");
    }
    return absl::OkStatus();
  };
  StartPipeCall(*ops_, PipeTransport::kPipe, call, &pending->run, pending->result, pending,
                std::move(probe));
}

void PipeReactor::Complete(Pending* pending, absl::Status status) {
  FinishPipeCall(pending->run, std::move(status), pending->result, metrics_);
  v1::PipeResult& r = *pending->result;
  const size_t bytes = r.ByteSizeLong();  // unlocked; cached for the write
  const bool offloaded = pending->offloaded;
  bool pump = false;
  bool defer = false;
  Step step;
  {
    absl::MutexLock lock(&shared_->mu);
    if (pending->owns_id) in_flight_.erase(r.id());
    if (offloaded) {
      --offloaded_;
      // The freed place goes to the next deferred call: this thread pumps
      // unless one already does (claimed here, so the stream stays alive).
      if (!pumping_ && !deferred_.empty()) {
        pumping_ = true;
        ++outstanding_;
        pump = true;
      }
    }
    if (cancelled_) {
      --outstanding_;  // nobody to tell
      pending->Recycle();
      pool_.Release(std::exchange(pending, nullptr));
      step = NextLocked();
    } else {
      ready_bytes_ += bytes;
      ready_.push_back(Ready{PendingPtr(pending), bytes});
      if (!CompletionBatch::Open()) {
        step = NextLocked();
      } else if (!flush_deferred_) {
        // The batch's first result: the write waits for the rest of it.
        flush_deferred_ = true;
        ++outstanding_;
        defer = true;
      }
    }
  }
  if (defer) CompletionBatch::Defer([this] { FlushDeferred(); });
  Carry(step);
  if (pump) PumpLoop();
}

void PipeReactor::FlushDeferred() {
  Step step;
  {
    absl::MutexLock lock(&shared_->mu);
    flush_deferred_ = false;
    --outstanding_;
    step = NextLocked();
  }
  Carry(step);
}

void PipeReactor::WriteDoneLocked() {
  outstanding_ -= in_write_;
  in_write_ = 0;
}

void PipeReactor::ClientGoneLocked() {
  // Nobody to tell: what waits for the wire is dropped with its count.
  outstanding_ -= ready_.size();
  for (Ready& r : ready_) {
    r.pending->Recycle();
    pool_.Release(r.pending.release());
  }
  ready_.clear();
  ready_bytes_ = 0;
}

void PipeReactor::OnDone() { delete this; }

PipeReactor::Step PipeReactor::NextLocked() {
  Step step;
  if (finished_) return step;
  if (!writing_ && !ready_.empty() && !cancelled_) {
    BeginWriteLocked();  // PrepareWrite encodes batch_ into the buffer
    // What is ready goes in this one message, up to kMaxWriteBytes (at least
    // one result): the client's receive limit must hold for a batch too.
    batch_.clear();
    size_t bytes = 0;
    size_t n = 0;
    for (const Ready& r : ready_) {
      if (n > 0 && bytes + r.bytes > kMaxWriteBytes) break;
      bytes += r.bytes;
      ++n;
    }
    batch_.reserve(n);
    for (size_t i = 0; i < n; ++i) batch_.push_back(std::move(ready_[i]));
    ready_bytes_ -= bytes;
    ready_.erase(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(n));
    in_write_ = n;
    step.write = true;
  }
  if (!reading_ && !read_closed_ && !cancelled_ && outstanding_ < max_outstanding_ &&
      ready_bytes_ < kMaxQueuedBytes) {
    reading_ = true;
    step.read = true;
  }
  // Finish once nothing is pending in either direction and no call is owed
  // an answer (a call still running will call back into this reactor).
  if ((read_closed_ || cancelled_) && !reading_ && !writing_ && outstanding_ == 0) {
    finished_ = true;
    step.finish = true;
    step.status = cancelled_ ? grpc::Status::CANCELLED : ToGrpcStatus(end_status_);
  }
  return step;
}

void PipeReactor::PrepareWrite(grpc::ByteBuffer* out) {
  // Encoded outside the lock (completions need not wait for it), straight
  // from the calls' arenas: a PipeResponse is its results, each a
  // length-delimited field 1, so the batch is never assembled as a message.
  // The sizes were cached by ByteSizeLong in Complete, and the results have
  // not changed since.
  using google::protobuf::io::CodedOutputStream;
  using google::protobuf::internal::WireFormatLite;
  constexpr uint32_t kResultsTag =
      (1u << 3) | static_cast<uint32_t>(WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  size_t total = 0;
  for (const Ready& r : batch_) {
    total += 1 + CodedOutputStream::VarintSize32(static_cast<uint32_t>(r.bytes)) + r.bytes;
  }
  grpc::Slice slice(total);
  uint8_t* p = const_cast<uint8_t*>(slice.begin());
  for (const Ready& r : batch_) {
    p = CodedOutputStream::WriteTagToArray(kResultsTag, p);
    p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(r.bytes), p);
    p = r.pending->result->SerializeWithCachedSizesToArray(p);
  }
  // The calls go back to the pool, their results and data dropped first,
  // outside the lock.
  for (Ready& r : batch_) r.pending->Recycle();
  {
    absl::MutexLock lock(&shared_->mu);
    for (Ready& r : batch_) pool_.Release(r.pending.release());
  }
  batch_.clear();
  out->Clear();
  grpc::ByteBuffer buffer(&slice, 1);
  out->Swap(&buffer);
}

void PipeReactor::StartNextRead() { StartRead(&read_buffer_); }

}  // namespace stateside::rpc

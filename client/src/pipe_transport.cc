#include "client/src/pipe_transport.h"

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>
#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/src/convert.h"
#include "client/src/deadline_sweep.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside::client_internal {
namespace {

// The sidecar ends a stream whose message carries more calls than this
// (PipeReactor::kMaxCallsPerMessage); a write stops short of it.
constexpr int kMaxCallsPerWrite = 1024;
// A write carries at most this much even below the sidecar's limit: it keeps
// one write from hogging a stream.
constexpr size_t kMaxWriteBytes = 1 << 20;
// The initial-metadata key by which the sidecar announces the largest
// message it accepts (PipeReactor::kMaxMessageBytesKey).
constexpr std::string_view kMaxMessageBytesKey = "stateside-max-message-bytes";
// A sidecar that announces nothing (a proxy that drops the key): writes stay
// below this, the smallest limit a sidecar has ever had (the largest
// realtime Publish plus 64 KiB), and single calls are left to it to judge.
constexpr size_t kUnannouncedMaxMessageBytes = 256 * 1024;
// What PipeCall.timeout can add to a call before it is written: the field's
// tag and length, and a Duration of 10-byte seconds and 5-byte nanos.
constexpr size_t kMaxTimeoutFieldBytes = 2 + 11 + 6;

// A call's bytes inside a PipeRequest: the field's tag, its length, itself.
size_t FramedBytes(size_t call_bytes) {
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(call_bytes) + call_bytes;
}

absl::Status TooLarge(size_t bytes, size_t limit) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "the call's encoding (", bytes, " bytes) is larger than the sidecar accepts in one "
      "message (", Sv(kMaxMessageBytesKey), " = ", limit, ")"));
}

absl::Status StreamEnded(const ::grpc::Status& status) {
  return absl::UnavailableError(absl::StrCat(
      "the stream to the sidecar ended before the call was answered (",
      absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
      status.error_message().empty() ? "" : ": ", Sv(status.error_message()), ")"));
}

}  // namespace

// One Pipe stream. Owned by its lane, whose mutex (`mu`) guards every field
// below the buffers: the lane's code asserts it holds `mu` through the
// stream (stream->mu.AssertHeld()) before it touches one, which tells the
// analysis that the two are the same mutex, and absl fails at run time if
// the mutex is not held.
// `in` belongs to the read in flight and `out` to the write in flight (each
// untouched by others until its reaction).
class PipeTransport::Stream final
    : public ::grpc::ClientBidiReactor<v1::PipeRequest, v1::PipeResponse> {
 public:
  Stream(Lane* lane, absl::Mutex& lane_mu, v1::SessionService::Stub* stub)
      : mu(lane_mu), lane_(lane) {
    stub->async()->Pipe(&context, this);
  }

  // Starts the call. Nothing is written before the sidecar's initial
  // metadata has announced its limit (OnReadInitialMetadataDone). A hold
  // keeps the stream open for the writes that Start makes from outside the
  // reactions; it is removed once the stream has ended and no such write is
  // pending.
  void Begin() {
    AddHold();
    StartRead(&in);
    StartCall();
  }

  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const ::grpc::Status& status) override;

  ::grpc::ClientContext context;
  v1::PipeResponse in;
  v1::PipeRequest out;

  absl::Mutex& mu;  // the lane's
  // ids of calls waiting for the next write
  std::vector<uint64_t> queued ABSL_GUARDED_BY(mu);
  // The largest message the sidecar accepts; 0 until its initial metadata
  // is read (no write before).
  size_t max_message_bytes ABSL_GUARDED_BY(mu) = 0;
  // The sidecar named it (else single calls are its to judge).
  bool announced ABSL_GUARDED_BY(mu) = false;
  bool writing ABSL_GUARDED_BY(mu) = false;  // `out` is in flight
  bool ended ABSL_GUARDED_BY(mu) = false;    // no more writes: a read or write failed
  bool hold_removed ABSL_GUARDED_BY(mu) = false;
  // The sidecar answered at least one call: it has Pipe.
  bool answered ABSL_GUARDED_BY(mu) = false;
  bool done ABSL_GUARDED_BY(mu) = false;  // OnDone has finished

 private:
  Lane* const lane_;
};

class PipeTransport::Lane {
 public:
  Lane(PipeTransport* transport, const std::shared_ptr<::grpc::Channel>& channel,
       size_t max_calls, Timer* timer)
      : transport_(transport),
        stub_(v1::SessionService::NewStub(channel)),
        max_calls_(max_calls),
        deadlines_(timer, [this] { ExpireDue(); }) {}

  void Start(v1::PipeCall call, absl::Time deadline, OutcomeCallback done);
  void Shutdown();

  // The stream's reactions.
  void OnInitialMetadata(Stream* stream, bool ok);
  void OnRead(Stream* stream, bool ok);
  void OnWriteDone(Stream* stream, bool ok);
  void OnDone(Stream* stream, const ::grpc::Status& status);

 private:
  struct Pending {
    OutcomeCallback done;
    absl::Time deadline;
    // The operation, kept until it is written — and, while its stream has
    // not answered (shown it serves Pipe), for the unary fallback.
    v1::PipeCall call;
    Stream* stream;
  };

  // Moves the queued calls (up to one write's worth, below the sidecar's
  // limit) into stream->out if no write is in flight; true if the caller
  // must StartWrite. A call too large for any message (its stream learnt
  // the limit after it was queued) leaves with its callback in `refused`,
  // for the caller to run unlocked.
  bool TakeBatchLocked(Stream* stream,
                       std::vector<std::pair<OutcomeCallback, Outcome>>* refused)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks `stream` ended; true if the caller must RemoveHold.
  bool EndLocked(Stream* stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The deadline sweep (deadlines_): ends the calls whose deadline has
  // passed.
  void ExpireDue();

  PipeTransport* const transport_;
  const std::unique_ptr<v1::SessionService::Stub> stub_;
  const size_t max_calls_;

  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  DeadlineSweep deadlines_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  Stream* current_ ABSL_GUARDED_BY(mu_) = nullptr;  // takes new calls
  // The limit the sidecar last announced on this lane (0: none yet): a call
  // larger is refused before it is queued.
  size_t max_message_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Every stream not yet reaped (a stream is freed only here, after OnDone).
  std::vector<std::unique_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  size_t live_ ABSL_GUARDED_BY(mu_) = 0;  // streams whose OnDone has not finished
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

void PipeTransport::Stream::OnReadInitialMetadataDone(bool ok) {
  lane_->OnInitialMetadata(this, ok);
}
void PipeTransport::Stream::OnReadDone(bool ok) { lane_->OnRead(this, ok); }
void PipeTransport::Stream::OnWriteDone(bool ok) { lane_->OnWriteDone(this, ok); }
void PipeTransport::Stream::OnDone(const ::grpc::Status& status) {
  lane_->OnDone(this, status);
}

void PipeTransport::Lane::Start(v1::PipeCall call, absl::Time deadline,
                                OutcomeCallback done) {
  std::optional<absl::Status> refused;
  bool unary = false;
  Stream* fresh = nullptr;  // a new stream: Begin it
  Stream* write = nullptr;  // StartWrite its batch
  std::vector<std::pair<OutcomeCallback, Outcome>> too_large;
  // Measured unlocked; the id (not set yet) is counted as a full varint.
  const size_t call_bytes = FramedBytes(call.ByteSizeLong() + 11 + kMaxTimeoutFieldBytes);
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
      refused = absl::CancelledError("the client is shutting down");
    } else if (transport_->unary_only_.load(std::memory_order_relaxed)) {
      unary = true;
    } else if (max_message_bytes_ > 0 && call_bytes > max_message_bytes_) {
      // Would end the stream (and every call on it) with RESOURCE_EXHAUSTED.
      refused = TooLarge(call_bytes, max_message_bytes_);
    } else if (pending_.size() >= max_calls_) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "the client's stream to the sidecar already holds ", max_calls_,
          " calls (ClientOptions::max_calls_per_stream)"));
    } else {
      if (current_ == nullptr) {
        std::erase_if(streams_, [this](const std::unique_ptr<Stream>& s) {
          mu_.AssertHeld();  // the lambda runs here, under the lock
          s->mu.AssertHeld();
          return s->done;
        });
        streams_.push_back(std::make_unique<Stream>(this, mu_, stub_.get()));
        current_ = fresh = streams_.back().get();
        ++live_;
      }
      const uint64_t id = next_id_++;
      call.set_id(id);
      Pending& pending = pending_[id];
      pending.done = std::move(done);
      pending.deadline = deadline;
      pending.call = std::move(call);
      pending.stream = current_;
      // Lock order: a lane's mutex, then the timer's (the sweep runs unlocked).
      deadlines_.Add(deadline);
      current_->mu.AssertHeld();  // the lane's mu_: tells the analysis
      current_->queued.push_back(id);
      if (TakeBatchLocked(current_, &too_large)) write = current_;
    }
  }
  if (refused) return done(Outcome{*std::move(refused), {}});
  if (unary) return transport_->fallback_->Start(std::move(call), deadline, std::move(done));
  if (fresh != nullptr) fresh->Begin();
  if (write != nullptr) write->StartWrite(&write->out);
  for (auto& [callback, outcome] : too_large) callback(std::move(outcome));
}

void PipeTransport::Lane::OnInitialMetadata(Stream* stream, bool ok) {
  size_t announced = 0;
  if (ok) {
    const auto& metadata = stream->context.GetServerInitialMetadata();
    auto it = metadata.find(std::string(kMaxMessageBytesKey));
    uint64_t value = 0;
    if (it != metadata.end() &&
        absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &value)) {
      announced = static_cast<size_t>(value);
    }
  }
  std::vector<std::pair<OutcomeCallback, Outcome>> too_large;
  bool write = false;
  {
    absl::MutexLock lock(&mu_);
    stream->mu.AssertHeld();  // the lane's mu_: tells the analysis
    // Without metadata the stream is ending: OnDone fails its calls.
    if (!ok) return;
    if (announced > 0) max_message_bytes_ = announced;
    stream->max_message_bytes = announced > 0 ? announced : kUnannouncedMaxMessageBytes;
    stream->announced = announced > 0;
    write = TakeBatchLocked(stream, &too_large);
  }
  if (write) stream->StartWrite(&stream->out);
  for (auto& [callback, outcome] : too_large) callback(std::move(outcome));
}

bool PipeTransport::Lane::TakeBatchLocked(
    Stream* stream, std::vector<std::pair<OutcomeCallback, Outcome>>* refused) {
  stream->mu.AssertHeld();
  if (stream->writing || stream->ended || stream->queued.empty() ||
      stream->max_message_bytes == 0) {
    return false;
  }
  stream->out.Clear();
  const absl::Time now = absl::Now();
  // Below the sidecar's limit, whatever the calls: a message over it would
  // end the stream, and every call it carries, with RESOURCE_EXHAUSTED.
  const size_t limit = stream->max_message_bytes;
  const size_t cap = std::min(kMaxWriteBytes, limit);
  size_t bytes = 0;
  size_t taken = 0;
  for (; taken < stream->queued.size(); ++taken) {
    if (stream->out.calls_size() == kMaxCallsPerWrite) break;
    auto it = pending_.find(stream->queued[taken]);
    if (it == pending_.end()) continue;  // expired while queued
    Pending& pending = it->second;
    const absl::Duration left = pending.deadline - now;
    if (left <= absl::ZeroDuration()) continue;  // the sweep is about to end it
    // Finite and positive, so this cannot fail.
    DurationToProto(left, pending.call.mutable_timeout()).IgnoreError();
    const size_t size = FramedBytes(pending.call.ByteSizeLong());
    if (size > limit && stream->announced) {
      // Queued before this lane knew the limit: it fails alone.
      refused->emplace_back(std::move(pending.done), Outcome{TooLarge(size, limit), {}});
      pending_.erase(it);
      continue;
    }
    if (stream->out.calls_size() > 0 && bytes + size > cap) break;  // the next write's
    v1::PipeCall* call = stream->out.add_calls();
    if (stream->answered) {
      *call = std::move(pending.call);
    } else {
      *call = pending.call;
    }
    bytes += size;
  }
  stream->queued.erase(stream->queued.begin(), stream->queued.begin() + taken);
  if (stream->out.calls_size() == 0) return false;
  stream->writing = true;
  return true;
}

bool PipeTransport::Lane::EndLocked(Stream* stream) {
  stream->mu.AssertHeld();
  stream->ended = true;
  if (current_ == stream) current_ = nullptr;
  // A write in flight keeps the hold until its OnWriteDone: Start may be
  // about to call StartWrite from outside the reactions.
  if (stream->writing || stream->hold_removed) return false;
  stream->hold_removed = true;
  return true;
}

void PipeTransport::Lane::OnRead(Stream* stream, bool ok) {
  if (!ok) {
    bool remove_hold;
    {
      absl::MutexLock lock(&mu_);
      stream->mu.AssertHeld();  // the lane's mu_: tells the analysis
      remove_hold = EndLocked(stream);
    }
    if (remove_hold) stream->RemoveHold();
    return;
  }
  std::vector<std::pair<OutcomeCallback, Outcome>> finished;
  finished.reserve(static_cast<size_t>(stream->in.results_size()));
  {
    absl::MutexLock lock(&mu_);
    stream->mu.AssertHeld();  // the lane's mu_: tells the analysis
    stream->answered = true;
    for (v1::PipeResult& result : *stream->in.mutable_results()) {
      auto it = pending_.find(result.id());
      // Unknown: it expired here already (or a confused sidecar).
      if (it == pending_.end() || it->second.stream != stream) continue;
      finished.emplace_back(std::move(it->second.done), OutcomeOf(std::move(result)));
      pending_.erase(it);
    }
  }
  stream->StartRead(&stream->in);  // the results were moved out of `in`
  for (auto& [done, outcome] : finished) done(std::move(outcome));
}

void PipeTransport::Lane::OnWriteDone(Stream* stream, bool ok) {
  bool remove_hold = false;
  bool write = false;
  std::vector<std::pair<OutcomeCallback, Outcome>> too_large;
  {
    absl::MutexLock lock(&mu_);
    stream->mu.AssertHeld();  // the lane's mu_: tells the analysis
    stream->writing = false;
    if (!ok || stream->ended) {
      remove_hold = EndLocked(stream);
    } else {
      write = TakeBatchLocked(stream, &too_large);
    }
  }
  if (remove_hold) stream->RemoveHold();
  if (write) stream->StartWrite(&stream->out);
  for (auto& [callback, outcome] : too_large) callback(std::move(outcome));
}

void PipeTransport::Lane::OnDone(Stream* stream, const ::grpc::Status& status) {
  std::vector<Pending> failed;
  std::vector<Pending> resent;
  bool shut_down;
  {
    absl::MutexLock lock(&mu_);
    stream->mu.AssertHeld();  // the lane's mu_: tells the analysis
    stream->ended = true;
    if (current_ == stream) current_ = nullptr;
    shut_down = shut_down_;
    // A sidecar without Pipe refuses the stream before reading any call:
    // those calls never ran, and each kept its operation (TakeBatchLocked
    // copies until the stream has answered).
    const bool no_pipe =
        status.error_code() == ::grpc::StatusCode::UNIMPLEMENTED && !stream->answered;
    if (no_pipe) transport_->unary_only_.store(true, std::memory_order_relaxed);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.stream != stream) {
        ++it;
        continue;
      }
      if (no_pipe && !shut_down) {
        resent.push_back(std::move(it->second));
      } else {
        failed.push_back(std::move(it->second));
      }
      pending_.erase(it++);
    }
  }
  const absl::Status why = shut_down ? absl::CancelledError("the client is shutting down")
                                     : StreamEnded(status);
  for (Pending& p : failed) p.done(Outcome{why, {}});
  for (Pending& p : resent) {
    transport_->fallback_->Start(std::move(p.call), p.deadline, std::move(p.done));
  }
  // Last: Shutdown waits for this, and the lane may then free the stream.
  absl::MutexLock lock(&mu_);
  stream->mu.AssertHeld();  // the lane's mu_: tells the analysis
  stream->done = true;
  --live_;
}

void PipeTransport::Lane::ExpireDue() {
  std::vector<OutcomeCallback> due;
  {
    absl::MutexLock lock(&mu_);
    // An id ended here may stay queued: TakeBatchLocked skips it.
    absl::Time next = DeadlineSweep::TakeDue(pending_, absl::Now(), &due);
    if (shut_down_) next = absl::InfiniteFuture();  // the timer may be stopping
    deadlines_.Fired(next);
  }
  for (OutcomeCallback& done : due) {
    done(Outcome{absl::DeadlineExceededError(
                     "deadline exceeded before the sidecar answered on the stream"),
                 {}});
  }
}

void PipeTransport::Lane::Shutdown() {
  std::vector<Stream*> open;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    // No call is added from now on: the sweep's entry may go (the calls
    // left end with their streams).
    deadlines_.Cancel();
    // Streams are freed only by Start, which refuses from now on.
    for (const auto& s : streams_) {
      s->mu.AssertHeld();  // the lane's mu_: tells the analysis
      if (!s->done) open.push_back(s.get());
    }
  }
  // Unlocked: cancelling may run reactions at once, and they take mu_.
  for (Stream* s : open) s->context.TryCancel();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](size_t* live) { return *live == 0; }, &live_));
}

PipeTransport::PipeTransport(const std::vector<std::shared_ptr<::grpc::Channel>>& channels,
                             size_t max_calls, CallTransport* fallback, Timer* timer)
    : fallback_(fallback) {
  for (const auto& channel : channels) {
    lanes_.push_back(std::make_unique<Lane>(this, channel, max_calls, timer));
  }
}

PipeTransport::~PipeTransport() { Shutdown(); }

void PipeTransport::Start(v1::PipeCall call, absl::Time deadline, OutcomeCallback done) {
  const size_t lane = next_lane_.fetch_add(1, std::memory_order_relaxed) % lanes_.size();
  lanes_[lane]->Start(std::move(call), deadline, std::move(done));
}

void PipeTransport::Shutdown() {
  for (auto& lane : lanes_) lane->Shutdown();
}

}  // namespace stateside::client_internal

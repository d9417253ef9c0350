#include "tests/bench/stream_transport.h"

#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside::bench {
namespace {

namespace v1 = ::stateside::v1;

// Completes, on a thread of its own, the calls issued to a stream that has
// already ended: completing them inline would recurse (the runner issues the
// slot's next call from its completion).
class LateFailures {
 public:
  explicit LateFailures(CompletionSink* sink)
      : sink_(sink), thread_([this] { Run(); }) {}
  ~LateFailures() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }
  void Push(size_t slot) {
    absl::MutexLock lock(&mu_);
    slots_.push_back(slot);
  }

 private:
  void Run() {
    while (true) {
      std::vector<size_t> slots;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](LateFailures* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
              return self->stop_ || !self->slots_.empty();
            },
            this));
        if (stop_ && slots_.empty()) return;
        slots.swap(slots_);
      }
      for (size_t slot : slots) sink_->OnCallDone(slot, grpc::StatusCode::UNAVAILABLE);
    }
  }

  CompletionSink* const sink_;
  absl::Mutex mu_;
  std::vector<size_t> slots_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// One Pipe stream: a write queue drained from OnWriteDone, and a read loop
// that completes slots.
class PipeStream final : public grpc::ClientBidiReactor<v1::PipeRequest, v1::PipeResponse> {
 public:
  PipeStream(v1::SessionService::Stub* stub, const v1::PipeCall* prototype,
             CompletionSink* sink, LateFailures* late, size_t slots)
      : prototype_(prototype), sink_(sink), late_(late), in_flight_(slots, false) {
    stub->async()->Pipe(&context_, this);
    // Held until Close: Issue and Close call into the stream from outside
    // its reactions, which is only safe while OnDone cannot have run.
    AddHold();
    StartRead(&in_);
    StartCall();
  }

  void Issue(size_t slot) {
    bool write = false;
    bool broken = false;
    {
      absl::MutexLock lock(&mu_);
      broken = broken_;
      if (!broken) {
        in_flight_[slot] = true;
        queued_.push_back(slot);
        write = TakeBatchLocked();
      }
    }
    // A stream that has ended fails the call (those in flight have already
    // failed; this one never was), off this thread.
    if (broken) return late_->Push(slot);
    if (write) StartWrite(&out_);
  }

  // Half-closes and waits until the stream has ended (cancelling it if the
  // sidecar does not end it within 10 s).
  void Close() {
    StartWritesDone();
    RemoveHold();
    if (!done_.WaitForNotificationWithTimeout(absl::Seconds(10))) {
      context_.TryCancel();
      done_.WaitForNotification();
    }
  }

  void OnWriteDone(bool ok) override {
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok) write = TakeBatchLocked();
    }
    if (write) StartWrite(&out_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return FailInFlight(grpc::StatusCode::UNAVAILABLE);  // the stream ended
    std::vector<std::pair<size_t, grpc::StatusCode>> finished;
    finished.reserve(static_cast<size_t>(in_.results_size()));
    {
      absl::MutexLock lock(&mu_);
      for (const v1::PipeResult& r : in_.results()) {
        const size_t slot = static_cast<size_t>(r.id());
        if (slot < in_flight_.size() && in_flight_[slot]) {
          in_flight_[slot] = false;
          finished.emplace_back(slot, ResultCode(*prototype_, r.code()));
        }
      }
    }
    StartRead(&in_);  // in_ is read above; the next read may refill it
    for (const auto& [slot, code] : finished) sink_->OnCallDone(slot, code);
  }

  void OnDone(const grpc::Status& status) override {
    FailInFlight(status.ok() ? grpc::StatusCode::UNAVAILABLE : status.error_code());
    done_.Notify();
  }

 private:
  // The stream has ended (no more answers): whatever is in flight fails,
  // and later calls fail at once.
  void FailInFlight(grpc::StatusCode code) {
    std::vector<size_t> failed;
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      for (size_t slot = 0; slot < in_flight_.size(); ++slot) {
        if (in_flight_[slot]) failed.push_back(slot);
        in_flight_[slot] = false;
      }
    }
    for (size_t slot : failed) sink_->OnCallDone(slot, code);
  }

  // Moves every queued call into out_ if no write is in flight.
  bool TakeBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || queued_.empty()) return false;
    out_.Clear();
    for (size_t slot : queued_) {
      v1::PipeCall* call = out_.add_calls();
      *call = *prototype_;
      call->set_id(slot);
    }
    queued_.clear();
    writing_ = true;
    return true;
  }

  const v1::PipeCall* const prototype_;
  CompletionSink* const sink_;
  LateFailures* const late_;
  grpc::ClientContext context_;
  v1::PipeResponse in_;
  v1::PipeRequest out_;  // the write in flight (untouched until OnWriteDone)
  absl::Notification done_;

  absl::Mutex mu_;
  std::vector<size_t> queued_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

class StreamTransport final : public Transport {
 public:
  StreamTransport(const TransportParams& params, v1::PipeCall prototype)
      : prototype_(std::move(prototype)), late_(params.sink) {
    for (const auto& channel : params.channels) {
      stubs_.push_back(v1::SessionService::NewStub(channel));
    }
    for (auto& stub : stubs_) {
      streams_.push_back(
          std::make_unique<PipeStream>(stub.get(), &prototype_, params.sink, &late_,
                                       params.slots));
    }
  }
  ~StreamTransport() override {
    for (auto& stream : streams_) stream->Close();
  }

  void Issue(size_t slot) override { streams_[slot % streams_.size()]->Issue(slot); }

 private:
  const v1::PipeCall prototype_;
  LateFailures late_;  // outlives the streams (declared before them)
  std::vector<std::unique_ptr<v1::SessionService::Stub>> stubs_;
  std::vector<std::unique_ptr<PipeStream>> streams_;
};

}  // namespace

absl::StatusOr<v1::PipeCall> PipeCallPrototype(const Workload& w, absl::Duration timeout) {
  v1::PipeCall prototype;
  prototype.mutable_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
  prototype.mutable_timeout()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(timeout % absl::Seconds(1))));
  switch (w.op) {
    case Op::kPing:
      return absl::UnimplementedError(
          "--op ping has no stream form: the empty-call floor is the unary Health/Check");
    case Op::kSessionGet:
      *prototype.mutable_get() = w.get;
      break;
    case Op::kSessionUpdate:
      *prototype.mutable_update() = w.update;
      break;
    case Op::kSessionCreate:
      *prototype.mutable_create() = w.create;
      break;
    case Op::kOptOutGet:
      *prototype.mutable_get_opt_out() = w.opt_out_get;
      break;
    case Op::kEmpty:
      break;  // the timeout alone
    case Op::kRealtimeXInstance:
    case Op::kRealtimeFanout:
      return absl::UnimplementedError("realtime operations are open-loop: see RunRealtime");
  }
  return prototype;
}

grpc::StatusCode ResultCode(const v1::PipeCall& prototype, int32_t code) {
  const auto status = static_cast<grpc::StatusCode>(code);
  if (prototype.op_case() != v1::PipeCall::OP_NOT_SET) return status;
  // The refusals of a call without an operation: the Pipe's, the frame
  // socket's, and a frame echo's empty OK. Anything else (an overload, a
  // deadline, a drain) stays an error.
  switch (status) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::OK:
      return grpc::StatusCode::OK;
    default:
      return status;
  }
}

absl::StatusOr<std::unique_ptr<Transport>> MakeStreamTransport(TransportParams params) {
  absl::StatusOr<v1::PipeCall> prototype =
      PipeCallPrototype(*params.workload, params.call_timeout);
  if (!prototype.ok()) return prototype.status();
  return std::unique_ptr<Transport>(new StreamTransport(params, *std::move(prototype)));
}

}  // namespace stateside::bench

// The frame socket's connections (see frame_server.h).
#include "sidecar/server/frame_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "sidecar/common/call_pool.h"
#include "sidecar/common/completion_batch.h"
#include "proto/frames.h"
#include "sidecar/rpc/pipe_call.h"
#include "sidecar/rpc/pipe_wire.h"
#include "spdlog/spdlog.h"
#include "stateside/v1/session.pb.h"

namespace stateside {

namespace asio = boost::asio;
using LocalSocket = asio::local::stream_protocol::socket;

// The read buffer kept by an idle connection.
constexpr size_t kKeptReadBytes = 16384;

class FrameServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(FrameServer* server, int fd)
      : gone_{server}, server_(server), fd_(fd), socket_(server->io_),
        pool_(kKeptCalls, &server->calls_made_) {
    boost::system::error_code ec;
    socket_.assign(asio::local::stream_protocol(), fd, ec);
    if (ec) {
      ::close(fd);
      closed_ = true;
    }
  }

  // On the loop.
  void StartRead();
  // On the loop: the next read, reading_ claimed.
  void ReadSome();
  // On the loop: no new frames; the connection closes once its calls are
  // answered and written.
  void StopReading();
  // Any thread: drop everything and close.
  void Abort();

 private:
  // One call from its frame to its result, taken from pool_ and given back
  // once its result is queued: its run, its result and the operation's own
  // state (Operations::Call), so a Get or Update allocates no closure on its
  // way to the store and back. While in flight it holds the connection, so
  // a call that completes after the connection closed (the peer gone, the
  // server shut down) finds it still there.
  struct Pending final : rpc::Operations::Call {
    void OperationDone(absl::Status status) override;

    v1::PipeResult result;
    rpc::PipeCallRun run;
    bool owns_id = false;
    std::shared_ptr<Connection> connection;  // while in flight
  };

  void OnRead(const boost::system::error_code& ec, size_t n);
  // On the loop, reading_ claimed: handles the whole frames buffered as far
  // as the bounds and the turn's budget (kTurnCalls) allow, then reads on,
  // posts the next turn, or pauses (the rest stays buffered).
  void Process();
  // The bounds of backpressure are reached: no frame is handled, no read
  // made. The next frame's calls must fit in what is left of
  // kMaxOutstanding, so no more are ever unanswered.
  bool SaturatedLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return outstanding_ + next_calls_ > kMaxOutstanding ||
           out_.size() + batch_bytes_ >= kMaxQueuedBytes;
  }
  enum class Handled : uint8_t { kDone, kWait, kBroken };
  // Handles one frame's calls: kWait if they do not fit in the budget of
  // unanswered calls yet (the frame stays buffered), kBroken if the stream
  // is broken (closed). Adds the calls it handled to `handled_calls`.
  Handled HandleFrame(std::string_view payload, absl::Time read, size_t* handled_calls);
  // Starts `call` on `pending` (counted in outstanding_, its id registered).
  void Dispatch(Pending* pending, const v1::PipeCall& call, absl::Time read);
  // Answers `status` for `id` on `pending` without running anything
  // (counted in outstanding_; the id not registered).
  void Refuse(Pending* pending, uint64_t id, absl::Status status);
  // Queues the result and gives `pending` back to pool_.
  void Complete(Pending* pending, absl::Status status);
  void Flush();
  // Writes what out_ holds without blocking; the rest waits for the socket
  // to be writable (on the loop).
  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WaitWritable();  // on the loop
  // Resumes reading or closes, as the counts now allow.
  void AfterProgressLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A broken stream: logged, counted, closed.
  void Broken(std::string_view reason, std::string_view detail);
  void CloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Tells the server when the connection is gone, after every member
  // (the socket last but this) is destroyed: declared first.
  struct GoneNotice {
    FrameServer* server;
    ~GoneNotice() { server->Gone(); }
  };
  GoneNotice gone_;
  FrameServer* const server_;
  const int fd_;  // owned by socket_; sent on only under mu_ while !closed_
  LocalSocket socket_;  // the loop only

  // The loop only.
  std::string in_;     // bytes read, from in_begin_ to in_end_
  size_t in_end_ = 0;

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;  // EOF, error or StopReading
  bool reading_ ABSL_GUARDED_BY(mu_) = false;      // a read is pending
  bool waiting_writable_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_deferred_ ABSL_GUARDED_BY(mu_) = false;
  size_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;  // calls read, result not yet queued
  // The calls of the frame waiting for room in kMaxOutstanding; 1 when
  // none waits (a frame carries at least one call to be counted).
  size_t next_calls_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_set<uint64_t> in_flight_ ABSL_GUARDED_BY(mu_);
  v1::PipeResponse batch_ ABSL_GUARDED_BY(mu_);  // results for the next frame
  size_t batch_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::string out_ ABSL_GUARDED_BY(mu_);  // frames not yet written
  // The calls' objects: taken where a frame's calls are counted, given back
  // where each result is queued (both under mu_, held there anyway).
  CallPool<Pending> pool_ ABSL_GUARDED_BY(mu_);
};

void FrameServer::Connection::Pending::OperationDone(absl::Status status) {
  // Held until Complete returns: this object goes back to the pool there,
  // and the connection may go with the last call.
  const std::shared_ptr<Connection> held = std::move(connection);
  held->Complete(this, std::move(status));
}

void FrameServer::Connection::StartRead() {
  {
    // reading_ may already be claimed by the resume that posted this.
    absl::MutexLock lock(&mu_);
    if (closed_ || read_closed_) {
      reading_ = false;
      AfterProgressLocked();
      return;
    }
    reading_ = true;
  }
  Process();  // the frames buffered while reading was paused, then a read
}

void FrameServer::Connection::ReadSome() {
  if (in_end_ == 0 && in_.size() > kKeptReadBytes) {
    // A large frame is done with: its buffer is not kept for an idle connection.
    in_.resize(kKeptReadBytes);
    in_.shrink_to_fit();
  }
  if (in_.size() - in_end_ < 4096) in_.resize(std::max(in_.size() * 2, kKeptReadBytes));
  socket_.async_read_some(asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      size_t n) { self->OnRead(ec, n); });
}

void FrameServer::Connection::StopReading() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  read_closed_ = true;
  if (reading_) {
    // The pending read ends (operation_aborted); a wait for writability is
    // re-armed by its handler.
    boost::system::error_code ec;
    socket_.cancel(ec);
  }
  AfterProgressLocked();
}

void FrameServer::Connection::Abort() {
  absl::MutexLock lock(&mu_);
  CloseLocked();
}

void FrameServer::Connection::OnRead(const boost::system::error_code& ec, size_t n) {
  if (ec) {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    read_closed_ = true;
    // The peer went (EOF) or stopped reading was asked: what is in flight
    // is still answered if it can be; a socket error closes at once.
    if (ec != asio::error::eof && ec != asio::error::operation_aborted) CloseLocked();
    AfterProgressLocked();
    return;
  }
  in_end_ += n;
  Process();
}

void FrameServer::Connection::Process() {
  const absl::Time read = absl::Now();
  size_t begin = 0;
  size_t calls = 0;  // handled in this turn
  bool spent = false;  // the turn's budget ran out with frames perhaps buffered
  {
    // The answers that complete while the frames are handled (the memory
    // store's, refusals) go out in one frame when this scope ends.
    CompletionBatch batch;
    for (;;) {
      if (calls >= kTurnCalls || begin >= kTurnBytes) {
        // The rest waits for a later turn (kTurnCalls says why).
        spent = true;
        break;
      }
      {
        // Checked before each frame, not only before each read: one read
        // may hold hundreds of frames, each asking for a large answer. The
        // rest stays buffered until the answers have gone.
        absl::MutexLock lock(&mu_);
        if (closed_) return;
        if (SaturatedLocked()) break;
      }
      std::string_view payload;
      size_t consumed = 0;
      const rpc::FrameParse parse =
          rpc::ParseFrame(std::string_view(in_.data() + begin, in_end_ - begin),
                          server_->max_frame_bytes_, &payload, &consumed);
      if (parse == rpc::FrameParse::kNeedMore) break;
      if (parse == rpc::FrameParse::kZeroLength) {
        Broken("zero_length", "a frame of length 0");
        return;
      }
      if (parse == rpc::FrameParse::kOversized) {
        Broken("oversized", absl::StrCat("a frame longer than the limit of ",
                                         server_->max_frame_bytes_, " bytes"));
        return;
      }
      const Handled handled = HandleFrame(payload, read, &calls);
      if (handled == Handled::kBroken) return;
      if (handled == Handled::kWait) break;
      begin += consumed;
    }
  }
  // Keep the partial frame at the front. Its header may not have been
  // checked (parsing stops at the backpressure limit before it), so
  // nothing is reserved from it: ReadSome grows the buffer as bytes come,
  // and the next Process closes a connection whose header is out of bounds.
  if (begin > 0) {
    std::memmove(in_.data(), in_.data() + begin, in_end_ - begin);
    in_end_ -= begin;
  }
  if (server_->turn_observer_) server_->turn_observer_(calls);
  bool again = false;
  {
    // Going on at once when nothing holds it back (no post to ourselves),
    // unless the turn's budget is spent.
    absl::MutexLock lock(&mu_);
    again = !closed_ && !read_closed_ && !SaturatedLocked();
    if (!again) {
      reading_ = false;
      AfterProgressLocked();
    }
  }
  if (!again) return;
  if (spent) {
    // reading_ stays claimed: the next turn handles what is buffered, then
    // reads, after the reactor (the Redis replies) and the handlers already
    // posted have had their turn.
    asio::post(server_->io_, [self = shared_from_this()] { self->StartRead(); });
  } else {
    ReadSome();
  }
}

FrameServer::Connection::Handled FrameServer::Connection::HandleFrame(std::string_view payload,
                                                                      absl::Time read,
                                                                      size_t* handled_calls) {
  std::vector<std::string_view> call_bytes;
  if (absl::Status s = rpc::SplitPipeRequest(payload, &call_bytes); !s.ok()) {
    Broken("malformed", std::string(s.message()));
    return Handled::kBroken;
  }
  if (call_bytes.size() > kMaxCallsPerFrame) {
    Broken("too_many_calls", absl::StrCat("a frame carries at most ", kMaxCallsPerFrame,
                                          " calls; this one had ", call_bytes.size()));
    return Handled::kBroken;
  }
  {
    // kMaxCallsPerFrame <= kMaxOutstanding: the frame fits once the
    // connection has no call unanswered, at the latest.
    absl::MutexLock lock(&mu_);
    if (closed_) return Handled::kBroken;
    if (outstanding_ + std::max<size_t>(call_bytes.size(), 1) > kMaxOutstanding) {
      next_calls_ = call_bytes.size();
      return Handled::kWait;
    }
    next_calls_ = 1;
  }
  *handled_calls += call_bytes.size();
  enum class Kind : uint8_t { kCall, kMalformed, kOtherOp, kDuplicate };
  std::vector<v1::PipeCall> calls(call_bytes.size());
  std::vector<Kind> kinds(call_bytes.size(), Kind::kCall);
  for (size_t i = 0; i < call_bytes.size(); ++i) {
    if (!calls[i].ParseFromArray(call_bytes[i].data(), static_cast<int>(call_bytes[i].size()))) {
      kinds[i] = Kind::kMalformed;
    } else if (calls[i].op_case() != v1::PipeCall::kGet &&
               calls[i].op_case() != v1::PipeCall::kUpdate) {
      kinds[i] = Kind::kOtherOp;
    }
  }
  absl::InlinedVector<Pending*, 16> pending(calls.size());
  {
    // As on the Pipe stream: every call counted before any completes (the
    // memory store's complete inline), and every id of the frame
    // registered before any runs, so a duplicate within one frame is seen.
    absl::MutexLock lock(&mu_);
    if (closed_) return Handled::kBroken;
    outstanding_ += calls.size();
    for (size_t i = 0; i < calls.size(); ++i) {
      if (kinds[i] == Kind::kCall && !in_flight_.insert(calls[i].id()).second) {
        kinds[i] = Kind::kDuplicate;
      }
      pending[i] = pool_.Take();
    }
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    switch (kinds[i]) {
      case Kind::kCall:
        Dispatch(pending[i], calls[i], read);
        break;
      case Kind::kMalformed: {
        uint64_t id = 0;
        absl::Status status = rpc::MalformedPipeCall(call_bytes[i], &id);
        Refuse(pending[i], id, std::move(status));
        break;
      }
      case Kind::kOtherOp:
        Refuse(pending[i], calls[i].id(),
               absl::UnimplementedError(
                   "the frame socket serves Get and Update only: send other "
                   "calls over gRPC (SessionService or Pipe)"));
        break;
      case Kind::kDuplicate:
        Refuse(pending[i], calls[i].id(), rpc::DuplicatePipeCall(calls[i].id(), "connection"));
        break;
    }
  }
  return Handled::kDone;
}

void FrameServer::Connection::Dispatch(Pending* pending, const v1::PipeCall& call,
                                       absl::Time read) {
  pending->result.set_id(call.id());
  pending->run = rpc::PipeCallRun{.started = read};
  pending->owns_id = true;
  pending->connection = shared_from_this();
  if (server_->metrics_ != nullptr) server_->metrics_->RpcStarted();
  rpc::StartPipeCall(*server_->ops_, rpc::PipeTransport::kFrames, call, &pending->run,
                     &pending->result, pending, nullptr);
}

void FrameServer::Connection::Refuse(Pending* pending, uint64_t id, absl::Status status) {
  pending->result.set_id(id);
  pending->run = rpc::PipeCallRun{
      .method = rpc::PipeMethod(rpc::PipeTransport::kFrames, v1::PipeCall::OP_NOT_SET),
      .started = absl::Now()};
  pending->owns_id = false;
  if (server_->metrics_ != nullptr) server_->metrics_->RpcStarted();
  Complete(pending, std::move(status));
}

void FrameServer::Connection::Complete(Pending* pending, absl::Status status) {
  rpc::FinishPipeCall(pending->run, std::move(status), &pending->result, server_->metrics_);
  const size_t bytes = pending->result.ByteSizeLong();
  bool flush = false;
  bool defer = false;
  {
    absl::MutexLock lock(&mu_);
    if (pending->owns_id) in_flight_.erase(pending->result.id());
    --outstanding_;
    if (!closed_) {
      if (batch_.results_size() > 0 && batch_bytes_ + bytes > kMaxWriteBytes) {
        // This frame is full: it goes to the wire queue first.
        rpc::AppendFrameHeader(&out_, static_cast<uint32_t>(batch_.ByteSizeLong()));
        batch_.AppendToString(&out_);
        batch_.Clear();
        batch_bytes_ = 0;
      }
      *batch_.add_results() = std::move(pending->result);
      batch_bytes_ += bytes;
      if (!CompletionBatch::Open()) {
        flush = true;
      } else if (!flush_deferred_) {
        // The batch's first result: the frame waits for the rest of it.
        flush_deferred_ = true;
        defer = true;
      }
    } else {
      AfterProgressLocked();
    }
    pending->result.Clear();  // moved from, or a closed connection's
    pending->Recycle();
    pool_.Release(pending);
  }
  if (defer) CompletionBatch::Defer([self = shared_from_this()] { self->Flush(); });
  if (flush) Flush();
}

void FrameServer::Connection::Flush() {
  absl::MutexLock lock(&mu_);
  flush_deferred_ = false;
  if (closed_) return;
  if (batch_.results_size() > 0) {
    rpc::AppendFrameHeader(&out_, static_cast<uint32_t>(batch_.ByteSizeLong()));
    batch_.AppendToString(&out_);
    batch_.Clear();
    batch_bytes_ = 0;
  }
  WriteLocked();
  AfterProgressLocked();
}

void FrameServer::Connection::WriteLocked() {
  if (waiting_writable_) return;  // the loop writes when it can
  size_t written = 0;
  while (written < out_.size() && !closed_) {
    const ssize_t n = ::send(fd_, out_.data() + written, out_.size() - written,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      waiting_writable_ = true;
      asio::post(server_->io_, [self = shared_from_this()] { self->WaitWritable(); });
      break;
    }
    CloseLocked();  // the peer is gone (EPIPE, ECONNRESET)
    return;
  }
  out_.erase(0, written);
}

void FrameServer::Connection::WaitWritable() {
  socket_.async_wait(LocalSocket::wait_write,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       absl::MutexLock lock(&self->mu_);
                       if (self->closed_) return;
                       if (ec == asio::error::operation_aborted) {
                         // StopReading's cancel: the wait is still needed.
                         asio::post(self->server_->io_, [self] { self->WaitWritable(); });
                         return;
                       }
                       self->waiting_writable_ = false;
                       if (ec) return self->CloseLocked();
                       self->WriteLocked();
                       self->AfterProgressLocked();
                     });
}

void FrameServer::Connection::AfterProgressLocked() {
  if (closed_) return;
  if (read_closed_) {
    // Nothing more will be read: done once every call is answered and
    // every byte written.
    if (!reading_ && outstanding_ == 0 && batch_.results_size() == 0 && !flush_deferred_ &&
        out_.empty() && !waiting_writable_) {
      CloseLocked();
    }
    return;
  }
  if (!reading_ && !SaturatedLocked()) {
    // Reading resumes on the loop (StartRead claims reading_).
    asio::post(server_->io_, [self = shared_from_this()] { self->StartRead(); });
    reading_ = true;  // claimed here so that one resume is posted
  }
}

void FrameServer::Connection::Broken(std::string_view reason, std::string_view detail) {
  server_->Warn(reason, detail);
  server_->Closed(reason);
  absl::MutexLock lock(&mu_);
  CloseLocked();
}

void FrameServer::Connection::CloseLocked() {
  if (closed_) return;
  closed_ = true;
  batch_.Clear();
  out_.clear();
  // The descriptor is closed on the loop (the socket's owner); no
  // send uses it after closed_.
  asio::post(server_->io_, [self = shared_from_this()] {
    boost::system::error_code ec;
    self->socket_.close(ec);
  });
}

// ---- FrameServer ----------------------------------------------------------

absl::StatusOr<std::unique_ptr<FrameServer>> FrameServer::Start(
    const std::string& path, std::vector<uint32_t> allowed_uids, const rpc::Operations* ops,
    admin::Metrics* metrics, size_t max_frame_bytes, asio::io_context* loop) {
  auto gate = PeerGate::Listen(path, std::move(allowed_uids), "frame");
  if (!gate.ok()) return gate.status();
  std::unique_ptr<FrameServer> server(
      new FrameServer(*std::move(gate), ops, metrics, max_frame_bytes, loop));
  FrameServer* s = server.get();
  s->gate_->Start([s](int fd, bool allowed) {
    if (!allowed) {
      // Counted before the close that the peer sees.
      s->Closed("refused_uid");
      ::close(fd);
      return;
    }
    asio::post(s->io_, [s, fd] { s->Adopt(fd); });
  });
  return server;
}

FrameServer::FrameServer(std::unique_ptr<PeerGate> gate, const rpc::Operations* ops,
                         admin::Metrics* metrics, size_t max_frame_bytes, asio::io_context* loop)
    : ops_(ops),
      metrics_(metrics),
      max_frame_bytes_(max_frame_bytes),
      own_io_(loop == nullptr ? std::make_unique<asio::io_context>(1) : nullptr),
      io_(loop != nullptr ? *loop : *own_io_),
      gate_(std::move(gate)) {
  if (own_io_ != nullptr) {
    work_.emplace(asio::make_work_guard(*own_io_));
    thread_ = std::thread([this] { own_io_->run(); });
  }
}

FrameServer::~FrameServer() { Shutdown(absl::Now()); }

void FrameServer::Adopt(int fd) {
  std::shared_ptr<Connection> connection;
  {
    // The check and the listing in one critical section: StopReading lists
    // the connections after setting shut_down_, so a connection is either
    // refused here or in its list (and stops reading with the rest).
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      ++live_;
      connection = std::make_shared<Connection>(this, fd);
      // Forget the connections already gone, so the list stays as long as
      // the live ones.
      std::erase_if(connections_,
                    [](const std::weak_ptr<Connection>& c) { return c.expired(); });
      connections_.push_back(connection);
    }
  }
  if (connection == nullptr) {
    ::close(fd);
    return;
  }
  connection->StartRead();
}

void FrameServer::Closed(std::string_view reason) {
  if (metrics_ != nullptr) metrics_->FrameConnectionClosed(reason);
}

void FrameServer::Warn(std::string_view reason, std::string_view detail) {
  size_t suppressed = 0;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now - last_warning_ < kWarningInterval) {
      ++warnings_suppressed_;
      return;
    }
    last_warning_ = now;
    suppressed = std::exchange(warnings_suppressed_, 0);
  }
  if (suppressed == 0) {
    spdlog::warn("frame socket: closing a connection: {} ({})", detail, reason);
  } else {
    spdlog::warn(
        "frame socket: closing a connection: {} ({}); {} more closed for a broken stream "
        "since the last warning",
        detail, reason, suppressed);
  }
}

void FrameServer::Gone() {
  absl::MutexLock lock(&mu_);
  --live_;
}

void FrameServer::EachConnection(void (Connection::*step)()) {
  std::vector<std::shared_ptr<Connection>> live;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& weak : connections_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  // On the loop, where the sockets live; waited for. Called on the loop
  // itself, the wait would never end: that caller's error stops the process
  // plainly instead of hanging it (and every Redis reply with it).
  if (io_.get_executor().running_in_this_thread()) {
    spdlog::critical(
        "frame socket: StopReading, Shutdown or the destructor was called on the server's own "
        "loop, which it must wait for; stopping");
    std::abort();
  }
  absl::Notification done;
  asio::post(io_, [&live, step, &done] {
    for (const auto& c : live) ((*c).*step)();
    done.Notify();
  });
  done.WaitForNotification();
}

void FrameServer::StopReading() {
  absl::MutexLock serial(&shutdown_mu_);
  StopReadingLocked();
}

void FrameServer::StopReadingLocked() {
  if (gate_ != nullptr) gate_->Stop();  // no new connections
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  // Adopt refuses what the gate handed over before it stopped: the gate's
  // thread is joined, so every Adopt it posted is queued on the loop before
  // this step, which is waited for. No Adopt touches the server afterwards.
  EachConnection(&Connection::StopReading);
}

void FrameServer::Shutdown(absl::Time deadline) {
  absl::MutexLock serial(&shutdown_mu_);
  StopReadingLocked();
  if (drained_) return;  // the loop, when given, may be gone by now
  drained_ = true;
  // The calls in flight answer (their connections close once written).
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(+[](size_t* live) { return *live == 0; }, &live_),
                          deadline);
  }
  EachConnection(&Connection::Abort);
  {
    // A connection is destroyed when its last handler and its last call
    // let go of it: then nothing on the loop refers to the server.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](size_t* live) { return *live == 0; }, &live_));
  }
  if (own_io_ != nullptr) {
    work_.reset();
    own_io_->stop();
    thread_.join();
  }
  gate_.reset();
}

}  // namespace stateside

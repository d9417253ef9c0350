// The frame socket's client side (see frame_transport.h).
#include "client/src/frame_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "client/src/convert.h"
#include "proto/frames.h"

namespace stateside::client_internal {
namespace {

// A response frame may hold up to the sidecar's 1 MiB of results or one
// larger session: anything above this is not a sidecar speaking.
constexpr size_t kMaxResponseFrameBytes = 64 << 20;
constexpr size_t kReadChunk = 64 << 10;
// Calls are serialised into out_ only while it holds less than this: the
// rest wait as calls, so one that expires meanwhile is never sent and the
// timeout a call carries is what it has left when it goes.
constexpr size_t kWriteChunk = 64 << 10;

int ConnectTo(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return -1;
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  // A Unix socket connects at once or fails (EAGAIN: the backlog is full).
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// The transport whose answers this thread is delivering (its I/O thread,
// inside ReadAvailable's callbacks): a call started there joins one write
// after them instead of a send of its own.
thread_local const FrameTransport* delivering = nullptr;

absl::Status ConnectionEnded() {
  return absl::UnavailableError("the sidecar's frame socket connection ended");
}

}  // namespace

FrameTransport::FrameTransport(std::string path, size_t max_calls, CallTransport* fallback,
                               Timer* timer)
    : path_(std::move(path)),
      max_calls_(max_calls),
      fallback_(fallback),
      deadlines_(timer, [this] { ExpireDue(); }) {
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) == 0) {
    wake_read_ = wake[0];
    wake_write_ = wake[1];
    thread_ = std::thread([this] { Loop(); });
  } else {
    absl::MutexLock lock(&mu_);
    disabled_ = true;  // no I/O thread: every call takes the fallback
  }
}

FrameTransport::~FrameTransport() {
  Shutdown();
  if (wake_read_ >= 0) close(wake_read_);
  if (wake_write_ >= 0) close(wake_write_);
}

void FrameTransport::Start(v1::PipeCall call, absl::Time deadline, OutcomeCallback done) {
  const bool framed = call.op_case() == v1::PipeCall::kGet ||
                      call.op_case() == v1::PipeCall::kUpdate;
  // Measured with the id and timeout still unset: counted generously.
  if (!framed || call.ByteSizeLong() + 32 > kMaxFrameRequestBytes) {
    return fallback_->Start(std::move(call), deadline, std::move(done));
  }
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
      refused = absl::CancelledError("the client is shutting down");
    } else if (disabled_ || !ConnectedLocked()) {
      refused = absl::OkStatus();  // the fallback carries it
    } else if (pending_.size() >= max_calls_) {
      refused = absl::ResourceExhaustedError(
          "too many calls in flight on the sidecar's frame socket connection");
    } else {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        refused = absl::DeadlineExceededError("deadline exceeded before the call was sent");
      } else {
        const uint64_t id = next_id_++;
        call.set_id(id);
        Pending& pending = pending_[id];
        pending.done = std::move(done);
        pending.call = std::move(call);
        pending.deadline = deadline;
        deadlines_.Add(deadline);
        if (unsent_.size() >= 2 * max_calls_) {
          // Forget the ids of the calls that expired unsent.
          std::deque<uint64_t> live;
          for (const uint64_t u : unsent_) {
            if (pending_.contains(u)) live.push_back(u);
          }
          unsent_.swap(live);
        }
        unsent_.push_back(id);
        if (delivering == this) return;  // written once the callbacks are done
        if (!WriteLocked()) {
          broken_ = true;  // the I/O thread fails what the connection carried
          Wake();
        }
        return;
      }
    }
  }
  if (refused.ok()) return fallback_->Start(std::move(call), deadline, std::move(done));
  done(Outcome{std::move(refused), {}});
}

bool FrameTransport::ConnectedLocked() {
  if (fd_ >= 0) return !broken_;
  const absl::Time now = absl::Now();
  if (now < reconnect_at_) return false;
  fd_ = ConnectTo(path_);
  answered_ = false;
  if (fd_ < 0) {
    // Absent (no sidecar frames, an old sidecar, a drain) or refusing: gRPC
    // carries the calls for a while before the next look.
    reconnect_at_ = now + kReconnectDelay;
    return false;
  }
  Wake();  // the I/O thread polls the new connection
  return true;
}

void FrameTransport::FillLocked() {
  const absl::Time now = absl::Now();
  while (out_.size() < kWriteChunk && !unsent_.empty()) {
    const uint64_t id = unsent_.front();
    unsent_.pop_front();
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;  // expired (or failed) unsent
    Pending& pending = it->second;
    const absl::Duration left = pending.deadline - now;
    if (left <= absl::ZeroDuration()) continue;  // the sweep ends it unsent
    DurationToProto(left, pending.call.mutable_timeout()).IgnoreError();
    v1::PipeRequest request;
    *request.add_calls() = std::move(pending.call);
    pending.call.Clear();
    rpc::AppendFrameHeader(&out_, static_cast<uint32_t>(request.ByteSizeLong()));
    request.AppendToString(&out_);
  }
}

bool FrameTransport::WriteLocked() {
  for (;;) {
    FillLocked();
    if (out_.empty()) return true;
    size_t written = 0;
    while (written < out_.size()) {
      const ssize_t n =
          send(fd_, out_.data() + written, out_.size() - written, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        written += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        out_.erase(0, written);
        Wake();  // the I/O thread writes the rest when the socket takes it
        return true;
      }
      out_.clear();
      return false;
    }
    out_.clear();
  }
}

void FrameTransport::Wake() {
  const char byte = 0;
  (void)!write(wake_write_, &byte, 1);
}

void FrameTransport::Loop() {
  for (;;) {
    int fd = -1;
    bool want_write = false;
    std::vector<OutcomeCallback> failed;
    {
      absl::MutexLock lock(&mu_);
      if (shut_down_) break;
      if (broken_) {
        close(fd_);
        fd_ = -1;
        broken_ = false;
        // Closed before answering anything (a uid the sidecar refuses, a
        // sidecar going away): gRPC carries the calls, retries included,
        // for a while; it says why if the sidecar refuses us.
        if (!answered_) reconnect_at_ = absl::Now() + kReconnectDelay;
        out_.clear();
        unsent_.clear();
        in_end_ = 0;
        for (auto& [id, pending] : pending_) failed.push_back(std::move(pending.done));
        pending_.clear();
      }
      fd = fd_;
      want_write = !out_.empty() || !unsent_.empty();
    }
    if (!failed.empty()) {
      for (OutcomeCallback& done : failed) done(Outcome{ConnectionEnded(), {}});
      continue;
    }
    pollfd fds[2] = {{wake_read_, POLLIN, 0},
                     {fd, static_cast<short>(POLLIN | (want_write ? POLLOUT : 0)), 0}};
    if (poll(fds, fd >= 0 ? 2 : 1, -1) < 0) continue;  // EINTR
    if (fds[0].revents != 0) {
      char drain[64];
      while (read(wake_read_, drain, sizeof(drain)) > 0) {
      }
    }
    if (fd < 0) continue;
    if ((fds[1].revents & POLLOUT) != 0) {
      absl::MutexLock lock(&mu_);
      if (!broken_ && !WriteLocked()) broken_ = true;
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) ReadAvailable(fd);
  }
  // Shut down: what is in flight ends CANCELLED.
  std::vector<OutcomeCallback> cancelled;
  {
    absl::MutexLock lock(&mu_);
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    for (auto& [id, pending] : pending_) cancelled.push_back(std::move(pending.done));
    pending_.clear();
    deadlines_.Cancel();
  }
  for (OutcomeCallback& done : cancelled) {
    done(Outcome{absl::CancelledError("the client is shutting down"), {}});
  }
}

void FrameTransport::ReadAvailable(int fd) {
  if (in_.size() - in_end_ < kReadChunk) in_.resize(in_end_ + kReadChunk);
  const ssize_t n = recv(fd, in_.data() + in_end_, in_.size() - in_end_, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    absl::MutexLock lock(&mu_);
    broken_ = true;  // EOF or an error: the loop fails what it carried
    return;
  }
  in_end_ += static_cast<size_t>(n);
  std::vector<std::pair<OutcomeCallback, Outcome>> finished;
  size_t begin = 0;
  bool broken = false;
  for (;;) {
    std::string_view payload;
    size_t consumed = 0;
    const rpc::FrameParse parse =
        rpc::ParseFrame(std::string_view(in_.data() + begin, in_end_ - begin),
                        kMaxResponseFrameBytes, &payload, &consumed);
    if (parse == rpc::FrameParse::kNeedMore) break;
    v1::PipeResponse response;
    if (parse != rpc::FrameParse::kFrame ||
        !response.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      broken = true;  // not a sidecar speaking: nothing after this can be trusted
      break;
    }
    begin += consumed;
    absl::MutexLock lock(&mu_);
    answered_ = true;
    for (v1::PipeResult& result : *response.mutable_results()) {
      auto it = pending_.find(result.id());
      if (it == pending_.end()) continue;  // expired here already
      finished.emplace_back(std::move(it->second.done), OutcomeOf(std::move(result)));
      pending_.erase(it);
    }
  }
  if (broken) {
    absl::MutexLock lock(&mu_);
    broken_ = true;
  } else {
    std::memmove(in_.data(), in_.data() + begin, in_end_ - begin);
    in_end_ -= begin;
  }
  // On this thread, without another hop. The calls they start (a closed
  // loop's next ones) go out together in one write afterwards.
  delivering = this;
  for (auto& [done, outcome] : finished) done(std::move(outcome));
  delivering = nullptr;
  absl::MutexLock lock(&mu_);
  if (!broken_ && fd_ >= 0 && (!out_.empty() || !unsent_.empty()) && !WriteLocked()) {
    broken_ = true;
  }
}

void FrameTransport::ExpireDue() {
  std::vector<OutcomeCallback> due;
  {
    absl::MutexLock lock(&mu_);
    // An id ended here may stay in unsent_: FillLocked skips it.
    absl::Time next = DeadlineSweep::TakeDue(pending_, absl::Now(), &due);
    if (shut_down_) next = absl::InfiniteFuture();  // the timer may be stopping
    deadlines_.Fired(next);
  }
  for (OutcomeCallback& done : due) {
    done(Outcome{absl::DeadlineExceededError(
                     "deadline exceeded before the sidecar answered on the frame socket"),
                 {}});
  }
}

void FrameTransport::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (thread_.joinable()) {
    Wake();
    thread_.join();
  }
}

}  // namespace stateside::client_internal

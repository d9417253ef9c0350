#include "tests/bench/frames_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/frames.h"
#include "stateside/v1/session.pb.h"
#include "tests/bench/frame_io.h"
#include "tests/bench/stream_transport.h"

namespace stateside::bench {
namespace {

namespace v1 = ::stateside::v1;

// As the client library's: a response frame may hold up to the sidecar's
// 1 MiB of results or one larger session; anything above is not a frame
// server speaking.
constexpr size_t kMaxResponseFrameBytes = 64 << 20;

// The transport whose completions this thread is running (the reader,
// inside them): a call issued there joins the write that follows them.
thread_local const void* delivering = nullptr;

absl::StatusOr<int> Connect(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": too long for a Unix socket"));
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to the frame socket ", path,
                                               ": ", std::strerror(error)));
  }
  return fd;
}

struct Connection {
  explicit Connection(int fd, size_t slots)
      : fd(fd), in_flight(slots, false), in(kMaxResponseFrameBytes) {
    request.add_calls();
  }
  ~Connection() { close(fd); }

  const int fd;
  absl::Mutex mu;
  std::string out ABSL_GUARDED_BY(mu);  // frames not yet written
  std::vector<bool> in_flight ABSL_GUARDED_BY(mu);  // by slot
  // The connection failed: its calls have failed or are about to (the
  // reader fails them); later ones fail at once.
  bool broken ABSL_GUARDED_BY(mu) = false;
  v1::PipeRequest request ABSL_GUARDED_BY(mu);  // one call, reused

  FrameReader in;  // reader thread only
};

class FramesTransport final : public Transport {
 public:
  FramesTransport(const TransportParams& params, v1::PipeCall prototype,
                  std::vector<std::unique_ptr<Connection>> connections, int wake_read,
                  int wake_write)
      : prototype_(std::move(prototype)),
        sink_(params.sink),
        connections_(std::move(connections)),
        wake_read_(wake_read),
        wake_write_(wake_write),
        reader_([this] { Loop(); }) {}

  ~FramesTransport() override {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    Wake();
    reader_.join();
    close(wake_read_);
    close(wake_write_);
  }

  void Issue(size_t slot) override {
    Connection& c = *connections_[slot % connections_.size()];
    {
      absl::MutexLock lock(&c.mu);
      if (!c.broken) {
        c.in_flight[slot] = true;
        AppendCallLocked(c, slot);
        // On the reader thread the write follows the completions.
        if (delivering != this && !FlushLocked(c)) Break(c);
        return;
      }
    }
    // A broken connection fails the call, off this thread: completing it
    // inline would recurse (the runner issues the slot's next call from its
    // completion).
    {
      absl::MutexLock lock(&mu_);
      late_.push_back(slot);
    }
    Wake();
  }

 private:
  using Finished = std::vector<std::pair<size_t, grpc::StatusCode>>;

  void AppendCallLocked(Connection& c, size_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
    v1::PipeCall* call = c.request.mutable_calls(0);
    *call = prototype_;
    call->set_id(slot);
    rpc::AppendFrameHeader(&c.out, static_cast<uint32_t>(c.request.ByteSizeLong()));
    c.request.AppendToString(&c.out);
  }

  // Writes what c.out holds without blocking (the reader writes the rest
  // when the socket takes it). False: the socket failed.
  bool FlushLocked(Connection& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
    if (!SendAvailable(c.fd, c.out)) return false;
    if (!c.out.empty() && delivering != this) Wake();  // the reader polls for room
    return true;
  }

  // Marks `c` broken (its lock held by the caller); the reader fails its
  // calls.
  void Break(Connection& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
    c.broken = true;
    if (delivering != this) Wake();
  }

  void Wake() {
    const char byte = 0;
    (void)!write(wake_write_, &byte, 1);
  }

  // Runs completions on this thread, then writes the calls they issued.
  void Deliver(const Finished& finished) {
    if (finished.empty()) return;
    delivering = this;
    for (const auto& [slot, code] : finished) sink_->OnCallDone(slot, code);
    delivering = nullptr;
    for (auto& connection : connections_) {
      Connection& c = *connection;
      absl::MutexLock lock(&c.mu);
      if (!c.broken && !c.out.empty() && !FlushLocked(c)) c.broken = true;
    }
  }

  void Loop() {
    std::vector<pollfd> fds;
    std::vector<Connection*> polled;
    for (;;) {
      Finished failed;
      {
        absl::MutexLock lock(&mu_);
        if (stop_) return;  // REQUIRES of the destructor: nothing in flight
        for (size_t slot : late_) failed.emplace_back(slot, grpc::StatusCode::UNAVAILABLE);
        late_.clear();
      }
      fds.assign(1, pollfd{wake_read_, POLLIN, 0});
      polled.clear();
      for (auto& connection : connections_) {
        Connection& c = *connection;
        absl::MutexLock lock(&c.mu);
        if (c.broken) {
          // Whatever it carried fails, once.
          for (size_t slot = 0; slot < c.in_flight.size(); ++slot) {
            if (c.in_flight[slot]) failed.emplace_back(slot, grpc::StatusCode::UNAVAILABLE);
            c.in_flight[slot] = false;
          }
          c.out.clear();
          continue;
        }
        fds.push_back(pollfd{c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
        polled.push_back(&c);
      }
      if (!failed.empty()) {
        Deliver(failed);
        continue;
      }
      if (poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
      if (fds[0].revents != 0) {
        char drain[64];
        while (read(wake_read_, drain, sizeof(drain)) > 0) {
        }
      }
      Finished finished;
      for (size_t i = 0; i < polled.size(); ++i) {
        Connection& c = *polled[i];
        const short revents = fds[i + 1].revents;
        if ((revents & POLLOUT) != 0) {
          absl::MutexLock lock(&c.mu);
          if (!c.broken && !FlushLocked(c)) c.broken = true;
        }
        if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !Read(c, finished)) {
          absl::MutexLock lock(&c.mu);
          c.broken = true;
        }
      }
      Deliver(finished);
    }
  }

  // One read of `c`; the calls its whole frames answer go to `finished`.
  // False: the connection ended or does not speak the protocol.
  bool Read(Connection& c, Finished& finished) {
    if (!c.in.Read(c.fd)) return false;
    for (;;) {
      std::string_view payload;
      const rpc::FrameParse parse = c.in.Next(&payload);
      if (parse == rpc::FrameParse::kNeedMore) break;
      if (parse != rpc::FrameParse::kFrame ||
          !response_.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        return false;
      }
      absl::MutexLock lock(&c.mu);
      for (const v1::PipeResult& r : response_.results()) {
        const size_t slot = static_cast<size_t>(r.id());
        if (slot < c.in_flight.size() && c.in_flight[slot]) {
          c.in_flight[slot] = false;
          finished.emplace_back(slot, ResultCode(prototype_, r.code()));
        }
      }
    }
    c.in.Compact();
    return true;
  }

  const v1::PipeCall prototype_;
  CompletionSink* const sink_;
  std::vector<std::unique_ptr<Connection>> connections_;
  const int wake_read_;
  const int wake_write_;
  v1::PipeResponse response_;  // reader thread only

  absl::Mutex mu_;
  std::vector<size_t> late_ ABSL_GUARDED_BY(mu_);  // calls issued to a broken connection
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  std::thread reader_;  // last: starts once the rest is built
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeFramesTransport(TransportParams params,
                                                               size_t connections) {
  const Op op = params.workload->op;
  if (op != Op::kSessionGet && op != Op::kSessionUpdate && op != Op::kEmpty) {
    return absl::UnimplementedError(absl::StrCat(
        "--op ", OpName(op),
        ": the frame socket carries only session-get and session-update (and empty)"));
  }
  absl::StatusOr<v1::PipeCall> prototype =
      PipeCallPrototype(*params.workload, params.call_timeout);
  if (!prototype.ok()) return prototype.status();
  std::vector<std::unique_ptr<Connection>> made;
  for (size_t i = 0; i < connections; ++i) {
    absl::StatusOr<int> fd = Connect(params.socket_path);
    if (!fd.ok()) return fd.status();
    made.push_back(std::make_unique<Connection>(*fd, params.slots));
  }
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  return std::unique_ptr<Transport>(new FramesTransport(params, *std::move(prototype),
                                                        std::move(made), wake[0], wake[1]));
}

std::string FramesSetupSocket(const std::string& frames_socket) {
  const std::string_view suffix = rpc::kFrameSocketSuffix;
  if (frames_socket.size() <= suffix.size() ||
      std::string_view(frames_socket).substr(frames_socket.size() - suffix.size()) != suffix) {
    return "";
  }
  return frames_socket.substr(0, frames_socket.size() - suffix.size());
}

}  // namespace stateside::bench

// stateside-frame-echo: the least a frame-socket server can do on this
// machine, for docs/BENCHMARKS.md's floor beside the sidecar's CPU per
// frame-socket read. It speaks the frame socket's protocol (proto/frames.h)
// on a Unix socket (mode 0600, at --socket only once it listens, so the
// file's existence means ready): one thread, epoll, non-blocking sockets. Per
// complete frame it parses the PipeRequest and answers all of its calls in
// one PipeResponse with their ids: a `get` with a canned session shaped like
// the bench's (one attribute of --size bytes, full metadata, a signed
// cookie's length), any other op with an empty OK result. All the answers
// to one read go out in one write.
//
// So its CPU per call is what the kernel (two socket reads and writes per
// round trip, epoll, the wake-ups) and the framing (parse, build, serialize)
// cost. It leaves out everything that makes the sidecar the sidecar: the
// Redis round trip and its client, decrypting and verifying the session,
// the cookie's signature, metrics, deadlines, and the hand-off between the
// sidecar's I/O thread and the thread that completes a call.
//
// Limits as the sidecar's: a frame announcing 0 bytes or more than
// --max-frame-bytes, a payload that is not a PipeRequest, or more than 1024
// calls in one frame closes that connection.
//
// Where it answers otherwise than the sidecar (only `get` is measured, so the
// floor's figures do not depend on these): it parses the whole PipeRequest,
// so one malformed call closes the connection, where the sidecar refuses that
// call alone; it answers ops other than `get` with an empty OK, where the
// sidecar serves `update` and refuses the rest with UNIMPLEMENTED; it does
// not refuse an id already in flight; and when the peer closes, the answers
// not yet written are dropped.
//
// Before each frame it checks
// the connection's answers waiting for the socket: from 4 MiB on, the frames
// already read stay buffered and reading pauses until the socket drains.
// --size is at most 256 KiB, so that the answer to one frame of 1024 gets
// stays far below what a frame can carry. A socket at --socket that a server
// answers on is left alone (exit 2); one that nobody answers on is replaced.
// SIGINT or SIGTERM: it removes its socket and exits 0.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "CLI/CLI.hpp"
#include "proto/frames.h"
#include "stateside/v1/session.pb.h"
#include "tests/bench/frame_io.h"
#include "tests/bench/workload.h"

namespace {

namespace v1 = ::stateside::v1;
namespace rpc = ::stateside::rpc;

// The sidecar's default frame limit: its gRPC receive limit, the larger of
// STATESIDE_MAX_SESSION_BYTES' default (256 KiB) and the largest Publish
// (64 KiB of payload and 1024 `except` entries of 264 bytes), plus 64 KiB of
// framing (sidecar/server/server.cc).
constexpr size_t kSidecarMaxFrameBytes = 64 * 1024 + 1024 * 264 + 64 * 1024;
constexpr size_t kMaxCallsPerFrame = 1024;  // the sidecar's FrameServer's
constexpr size_t kMaxQueuedBytes = 4 << 20;  // per connection, as the sidecar's
// The largest --size: the sidecar's default STATESIDE_MAX_SESSION_BYTES. One
// answer to kMaxCallsPerFrame gets is then about 256 MiB, far from the 2^31
// bytes a protobuf message and the frame header's length can carry.
constexpr int64_t kMaxSizeBytes = 256 << 10;
constexpr int kMaxEvents = 64;

struct Connection {
  Connection(int fd, size_t max_frame_bytes) : fd(fd), in(max_frame_bytes) {}
  const int fd;
  stateside::bench::FrameReader in;  // at most a frame and a read
  std::string out;  // answers not yet written
  uint32_t watched = EPOLLIN;  // the events registered with epoll
  bool backlog = false;  // whole frames read and not yet answered
};

class EchoServer {
 public:
  EchoServer(size_t max_frame_bytes, size_t size_bytes)
      : max_frame_bytes_(max_frame_bytes) {
    // The bench's session (tests/bench/workload.cc): one attribute,
    // kBenchAttribute, of --size bytes; ids and the cookie as long as the
    // sidecar's (a 43-character id, the cookie "id.signature").
    v1::Session* session = canned_get_.mutable_session();
    v1::SessionMetadata* m = session->mutable_metadata();
    const std::string id(43, 'S');
    m->set_id(id);
    m->mutable_created()->set_seconds(1'700'000'000);
    m->mutable_last_access()->set_seconds(1'700'000'100);
    m->mutable_idle_expiry()->set_seconds(1'700'086'500);
    m->mutable_absolute_expiry()->set_seconds(1'700'604'800);
    m->set_version(7);
    (*session->mutable_attributes())[stateside::bench::kBenchAttribute] =
        stateside::bench::MakePayload(size_bytes);
    session->set_cookie(id + "." + std::string(43, 'c'));
  }

  ~EchoServer() {
    for (auto& [fd, connection] : connections_) close(fd);
    if (listen_fd_ >= 0) close(listen_fd_);
    if (signal_fd_ >= 0) close(signal_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  // Binds `path` (0600) and prepares the loop; false with a message on stderr.
  bool Listen(const std::string& path) {
    sockaddr_un addr{};
    // Bound under a name of its own first: the socket appears at `path` only
    // once it listens, so whoever waits for the file can connect at once.
    const std::string bound_path = path + "." + std::to_string(getpid()) + ".tmp";
    if (path.empty() || bound_path.size() >= sizeof(addr.sun_path)) {
      return Error("--socket: must be a path of 1 to " +
                   std::to_string(sizeof(addr.sun_path) - 1 - (bound_path.size() - path.size())) +
                   " bytes");
    }
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
      // A socket left by an earlier run (nobody answers there: main checked)
      // is replaced; anything else is not ours.
      return Error(path + ": exists and is not a socket");
    }
    // An ignored signal is discarded, never queued for the signalfd, and a
    // shell starts background jobs with SIGINT ignored: both are restored
    // to their default before they are blocked, before any thread could
    // start, so only the signalfd sees them.
    if (signal(SIGINT, SIG_DFL) == SIG_ERR || signal(SIGTERM, SIG_DFL) == SIG_ERR) {
      return Errno("signal");
    }
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &signals, nullptr) != 0) return Errno("sigprocmask");
    signal_fd_ = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd_ < 0) return Errno("signalfd");
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return Errno("epoll_create1");
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) return Errno("socket");
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, bound_path.data(), bound_path.size());
    unlink(bound_path.c_str());  // left by an earlier process of the same pid
    // Born 0600: no moment at which another user could connect.
    const mode_t old_umask = umask(0177);
    const int bound = bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    umask(old_umask);
    if (bound != 0) return Errno("bind " + bound_path);
    if (listen(listen_fd_, SOMAXCONN) != 0 || chmod(bound_path.c_str(), 0600) != 0) {
      Errno("listen " + bound_path);
      unlink(bound_path.c_str());
      return false;
    }
    // Replaces a socket left at `path` in one step.
    if (rename(bound_path.c_str(), path.c_str()) != 0) {
      Errno("rename " + bound_path + " to " + path);
      unlink(bound_path.c_str());
      return false;
    }
    path_ = path;
    return Watch(listen_fd_, EPOLLIN) && Watch(signal_fd_, EPOLLIN);
  }

  // Serves until SIGINT or SIGTERM; removes the socket then.
  int Run() {
    epoll_event events[kMaxEvents];
    for (;;) {
      const int n = epoll_wait(epoll_fd_, events, kMaxEvents, accepting_ ? -1 : 1000);
      if (n < 0) {
        if (errno == EINTR) continue;
        Errno("epoll_wait");
        break;
      }
      if (n == 0 && !accepting_) WatchListener(true);  // a second without a close
      bool stop = false;
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == signal_fd_) {
          stop = true;
        } else if (fd == listen_fd_) {
          Accept();
        } else {
          auto it = connections_.find(fd);
          if (it == connections_.end()) continue;  // closed by an earlier event
          Serve(it->second, events[i].events);
        }
      }
      if (stop) break;
    }
    unlink(path_.c_str());
    return 0;
  }

 private:
  static bool Error(const std::string& message) {
    std::fprintf(stderr, "stateside-frame-echo: %s\n", message.c_str());
    return false;
  }
  static bool Errno(const std::string& what) {
    return Error(what + ": " + std::strerror(errno));
  }

  bool Watch(int fd, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) return Errno("epoll_ctl");
    return true;
  }

  void Accept() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0 && (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)) continue;
      if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (fd < 0) {
        // Out of descriptors or memory: the listening socket stays readable,
        // so watching it now would spin. It is watched again when a
        // connection closes, or after a second.
        if (!accept_failed_) Errno("accept (pausing accepts until a connection closes)");
        accept_failed_ = true;
        return WatchListener(false);
      }
      if (!Watch(fd, EPOLLIN)) {
        close(fd);
        continue;
      }
      connections_.try_emplace(fd, fd, max_frame_bytes_);
    }
  }

  void Close(Connection& c) {
    const int fd = c.fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    connections_.erase(fd);  // `c` is gone
    if (!accepting_) WatchListener(true);
  }

  void WatchListener(bool on) {
    epoll_event event{};
    event.events = on ? EPOLLIN : 0u;
    event.data.fd = listen_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &event) == 0) accepting_ = on;
  }

  // Reading stops while the answers wait (kMaxQueuedBytes); writing is
  // watched only while some do.
  void Rearm(Connection& c) {
    const uint32_t wanted = (c.out.size() < kMaxQueuedBytes ? EPOLLIN : 0u) |
                            (c.out.empty() ? 0u : EPOLLOUT);
    if (wanted == c.watched) return;
    epoll_event event{};
    event.events = wanted;
    event.data.fd = c.fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &event);
    c.watched = wanted;
  }

  void Serve(Connection& c, uint32_t events) {
    if ((events & EPOLLOUT) != 0 && !Flush(c)) return Close(c);
    // Frames already read come first: level-triggered EPOLLIN does not fire
    // again for them, and the socket keeps what is not yet read.
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !c.backlog &&
        c.out.size() < kMaxQueuedBytes && !c.in.Read(c.fd)) {
      return Close(c);
    }
    for (;;) {
      if (!AnswerFrames(c) || !Flush(c)) return Close(c);
      if (!c.backlog || c.out.size() >= kMaxQueuedBytes) break;
    }
    Rearm(c);
  }

  // Answers the whole frames read, one at a time, while fewer than
  // kMaxQueuedBytes of answers wait (the sidecar's check before each frame);
  // the rest stay buffered with c.backlog set. False: the stream is broken.
  bool AnswerFrames(Connection& c) {
    c.backlog = false;
    for (;;) {
      if (c.out.size() >= kMaxQueuedBytes) {
        c.backlog = true;
        break;
      }
      std::string_view payload;
      const rpc::FrameParse parse = c.in.Next(&payload);
      if (parse == rpc::FrameParse::kNeedMore) break;
      if (parse != rpc::FrameParse::kFrame) return false;  // 0 or oversized
      if (!request_.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
          static_cast<size_t>(request_.calls_size()) > kMaxCallsPerFrame) {
        return false;
      }
      // A frame of no calls gets no answer: an empty one would be a
      // zero-length frame, which breaks the stream.
      if (request_.calls_size() > 0) Answer(c.out);
    }
    c.in.Compact();
    return true;
  }

  // Appends the answer to request_ as one frame.
  void Answer(std::string& out) {
    response_.Clear();
    for (const v1::PipeCall& call : request_.calls()) {
      v1::PipeResult* result = response_.add_results();
      result->set_id(call.id());
      result->set_code(0);  // OK
      if (call.op_case() == v1::PipeCall::kGet) *result->mutable_get() = canned_get_;
    }
    const size_t bytes = response_.ByteSizeLong();
    rpc::AppendFrameHeader(&out, static_cast<uint32_t>(bytes));
    const size_t at = out.size();
    out.resize(at + bytes);
    response_.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out.data() + at));
  }

  static bool Flush(Connection& c) { return stateside::bench::SendAvailable(c.fd, c.out); }

  const size_t max_frame_bytes_;
  v1::GetSessionResponse canned_get_;
  v1::PipeRequest request_;    // reused: parsing into it keeps its allocations
  v1::PipeResponse response_;  // likewise
  std::string path_;
  int epoll_fd_ = -1;
  int listen_fd_ = -1;
  int signal_fd_ = -1;
  bool accepting_ = true;  // the listening socket is watched
  bool accept_failed_ = false;  // an accept error was logged (once is enough)
  std::unordered_map<int, Connection> connections_;
};

// True when a server answers on the socket at `path`: it is not taken over.
bool AnotherServerAnswers(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool answered = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return answered;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  int64_t size = 1024;
  int64_t max_frame_bytes = static_cast<int64_t>(kSidecarMaxFrameBytes);
  CLI::App app(
      "stateside-frame-echo: the floor of the frame socket. Answers every call of every "
      "PipeRequest frame at once (a get with a canned session of one --size-byte attribute, "
      "anything else with an empty OK), one thread, epoll. For stateside-bench --transport "
      "frames --socket PATH; SIGTERM stops it.",
      "stateside-frame-echo");
  app.add_option("--socket", socket, "Unix socket to listen on (created 0600)")->required();
  app.add_option("--size", size, "bytes of the canned session's attribute, at most 262144 [1024]");
  app.add_option("--max-frame-bytes", max_frame_bytes,
                 "largest request frame accepted; a larger one closes the connection "
                 "[the sidecar's default, 401408]");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (size < 0 || size > kMaxSizeBytes) {
    std::fprintf(stderr,
                 "stateside-frame-echo: --size: must be between 0 and %lld (the sidecar's default "
                 "session limit; 1024 gets of it in one frame are answered in one frame)\n",
                 static_cast<long long>(kMaxSizeBytes));
    return 2;
  }
  if (max_frame_bytes < 1 || max_frame_bytes > (64 << 20)) {
    std::fprintf(stderr, "stateside-frame-echo: --max-frame-bytes: must be between 1 and %d\n",
                 64 << 20);
    return 2;
  }
  if (AnotherServerAnswers(socket)) {
    std::fprintf(stderr,
                 "stateside-frame-echo: %s: another server is listening there; stop it or "
                 "choose another --socket\n",
                 socket.c_str());
    return 2;
  }
  EchoServer server(static_cast<size_t>(max_frame_bytes), static_cast<size_t>(size));
  if (!server.Listen(socket)) return 1;
  return server.Run();
}

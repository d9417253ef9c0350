// The accept loop of STATESIDE_ALLOWED_UIDS: SO_PEERCRED per connection.
#include "sidecar/server/peer_gate.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace stateside {
namespace {

absl::Status SocketError(const std::string& what, const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat("STATESIDE_SOCKET: ", what, " ", path, ": ", strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PeerGate>> PeerGate::Listen(const std::string& path,
                                                           std::vector<uint32_t> allowed_uids,
                                                           std::string kind) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::FailedPreconditionError("STATESIDE_SOCKET: path too long for a Unix socket");
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SocketError("cannot create a socket for", path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    absl::Status s = SocketError("cannot listen on", path);
    close(fd);
    return s;
  }
  int wake[2];
  if (pipe2(wake, O_CLOEXEC) != 0) {
    absl::Status s = SocketError("cannot create the accept loop's pipe for", path);
    close(fd);
    return s;
  }
  return std::unique_ptr<PeerGate>(
      new PeerGate(fd, wake[0], wake[1], std::move(allowed_uids), std::move(kind)));
}

PeerGate::PeerGate(int listen_fd, int wake_read, int wake_write,
                   std::vector<uint32_t> allowed_uids, std::string kind)
    : allowed_uids_(std::move(allowed_uids)),
      kind_(std::move(kind)),
      listen_fd_(listen_fd),
      wake_read_(wake_read),
      wake_write_(wake_write) {}

PeerGate::~PeerGate() {
  Stop();
  close(wake_read_);
  close(wake_write_);
}

void PeerGate::Start(Handoff handoff) {
  thread_ = std::thread([this, handoff = std::move(handoff)] { AcceptLoop(handoff); });
}

void PeerGate::Stop() {
  if (thread_.joinable()) {
    const char byte = 0;
    (void)!write(wake_write_, &byte, 1);
    thread_.join();
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
  }
}

void PeerGate::AcceptLoop(const Handoff& handoff) {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("STATESIDE_SOCKET: poll failed, no more connections: {}", strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // The peer gave up already, or a transient shortage (EMFILE…): poll again.
      const int err = errno;
      if (err != EAGAIN && err != EINTR && err != ECONNABORTED) {
        spdlog::warn("STATESIDE_SOCKET: accept failed: {}", strerror(err));
      }
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors or memory: the pending connection stays
        // readable, so pause instead of spinning (Stop still ends it).
        pollfd wake{wake_read_, POLLIN, 0};
        if (poll(&wake, 1, 100) > 0) return;
      }
      continue;
    }
    if (allowed_uids_.empty()) {
      handoff(fd, true);
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    const bool known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
    const bool allowed =
        known && std::find(allowed_uids_.begin(), allowed_uids_.end(), cred.uid) !=
                     allowed_uids_.end();
    if (!allowed) {
      spdlog::warn("refused a {} connection from uid {} (pid {}): not in STATESIDE_ALLOWED_UIDS",
                   kind_, known ? std::to_string(cred.uid) : "unknown", known ? cred.pid : 0);
    }
    handoff(fd, allowed);
  }
}

}  // namespace stateside

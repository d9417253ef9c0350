#include "tests/support/cutting_proxy.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace stateside::testing {
namespace {

constexpr size_t kFrameHeaderBytes = 9;
constexpr uint8_t kData = 0x0;
constexpr uint8_t kHeaders = 0x1;

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

absl::StatusOr<int> UnixSocket(const std::string& path, bool listen) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
  const int r = listen ? ::bind(fd, sa, sizeof(addr)) : ::connect(fd, sa, sizeof(addr));
  if (r != 0 || (listen && ::listen(fd, 16) != 0)) {
    const int e = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat(listen ? "bind " : "connect ", path, ": ",
                                               std::strerror(e)));
  }
  return fd;
}

}  // namespace

struct CuttingProxy::Connection {
  int client_fd = -1;
  int server_fd = -1;
  std::thread to_server;
  std::thread to_client;
  // Shuts both sockets down (the pumps then end); the fds are closed by the
  // destructor, after the pumps are joined.
  void Cut() {
    ::shutdown(client_fd, SHUT_RDWR);
    ::shutdown(server_fd, SHUT_RDWR);
  }
};

absl::StatusOr<std::unique_ptr<CuttingProxy>> CuttingProxy::Start(std::string listen_path,
                                                                  std::string target_path) {
  absl::StatusOr<int> fd = UnixSocket(listen_path, /*listen=*/true);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<CuttingProxy> proxy(
      new CuttingProxy(std::move(listen_path), std::move(target_path), *fd));
  proxy->acceptor_ = std::thread([p = proxy.get()] { p->AcceptLoop(); });
  return proxy;
}

CuttingProxy::CuttingProxy(std::string listen_path, std::string target_path, int listen_fd)
    : listen_path_(std::move(listen_path)), target_path_(std::move(target_path)),
      listen_fd_(listen_fd) {}

CuttingProxy::~CuttingProxy() {
  std::vector<std::unique_ptr<Connection>> connections;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    connections = std::move(connections_);
  }
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  ::unlink(listen_path_.c_str());
  for (auto& c : connections) {
    c->Cut();
    c->to_server.join();
    c->to_client.join();
    ::close(c->client_fd);
    ::close(c->server_fd);
  }
}

void CuttingProxy::Arm() {
  absl::MutexLock lock(&mu_);
  armed_ = true;
}

int CuttingProxy::cuts() const {
  absl::MutexLock lock(&mu_);
  return cuts_;
}

void CuttingProxy::AcceptLoop() {
  for (;;) {
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR) continue;
      return;  // shut down
    }
    absl::StatusOr<int> server = UnixSocket(target_path_, /*listen=*/false);
    if (!server.ok()) {
      ::close(client);
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->client_fd = client;
    c->server_fd = *server;
    Connection* raw = c.get();
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      ::close(client);
      ::close(*server);
      return;
    }
    raw->to_server = std::thread([this, raw] { PumpToServer(raw); });
    raw->to_client = std::thread([this, raw] { PumpToClient(raw); });
    connections_.push_back(std::move(c));
  }
}

void CuttingProxy::PumpToServer(Connection* c) {
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(c->client_fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || !WriteAll(c->server_fd, buffer, static_cast<size_t>(n))) break;
  }
  c->Cut();
}

// Forwards the server's bytes frame by frame: a frame goes out whole once
// read whole, so a cut drops exactly the frame that starts an answer.
void CuttingProxy::PumpToClient(Connection* c) {
  std::string pending;
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(c->server_fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    size_t sent = 0;
    bool cut = false;
    while (pending.size() - sent >= kFrameHeaderBytes) {
      const auto* h = reinterpret_cast<const uint8_t*>(pending.data() + sent);
      const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
      const uint8_t type = h[3];
      const uint32_t stream = ((uint32_t{h[5]} & 0x7f) << 24) | (uint32_t{h[6]} << 16) |
                              (uint32_t{h[7]} << 8) | h[8];
      if (pending.size() - sent < kFrameHeaderBytes + length) break;
      if (stream != 0 && (type == kData || type == kHeaders)) {
        absl::MutexLock lock(&mu_);
        if (armed_) {
          armed_ = false;
          ++cuts_;
          cut = true;
          break;
        }
      }
      sent += kFrameHeaderBytes + length;
    }
    if (sent > 0 && !WriteAll(c->client_fd, pending.data(), sent)) break;
    pending.erase(0, sent);
    if (cut) break;
  }
  c->Cut();
}

}  // namespace stateside::testing

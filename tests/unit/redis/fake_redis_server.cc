// FakeRedisServer: blocking sockets, one thread per client.
#include "tests/unit/redis/fake_redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "sidecar/redis/resp.h"

namespace stateside::testing {

FakeRedisServer::FakeRedisServer(Handler handler, Options options)
    : handler_(std::move(handler)), options_(std::move(options)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return;
  }
  port_ = ntohs(addr.sin_port);
  if (pipe(wake_) != 0) return;
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FakeRedisServer::~FakeRedisServer() {
  stopping_ = true;
  if (wake_[1] >= 0) close(wake_[1]);
  if (acceptor_.joinable()) acceptor_.join();
  DropClients();
  std::vector<std::thread> servers;
  {
    absl::MutexLock lock(&mu_);
    servers.swap(servers_);
  }
  for (std::thread& t : servers) t.join();
  if (wake_[0] >= 0) close(wake_[0]);
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::string FakeRedisServer::url() const { return absl::StrCat("redis://127.0.0.1:", port_); }

std::vector<std::vector<std::string>> FakeRedisServer::commands() const {
  absl::MutexLock lock(&mu_);
  return commands_;
}

void FakeRedisServer::DropClients() {
  absl::MutexLock lock(&mu_);
  // shutdown() wakes the blocked read(); the serving thread closes the fd.
  for (int fd : client_fds_) shutdown(fd, SHUT_RDWR);
}

void FakeRedisServer::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    if (!options_.accept_connections) {
      // Leave the connection in the backlog: the client's TCP connect
      // succeeds, but nobody ever reads or answers. Poll again later.
      poll(fds + 1, 1, 50);
      continue;
    }
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    accepted_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    client_fds_.push_back(fd);
    servers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeRedisServer::Serve(int fd) {
  auto send_all = [&](const std::string& bytes) {
    if (options_.byte_by_byte) {
      for (char c : bytes) {
        if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) return;
      }
      return;
    }
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  };
  if (!options_.greeting.empty()) send_all(options_.greeting);
  redis::RespParser parser;  // commands are RESP arrays of bulk strings
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    parser.Feed(buf, static_cast<size_t>(n));
    bool broken = false;
    while (true) {
      auto next = parser.Next();
      if (!next.ok()) {
        broken = true;
        break;
      }
      if (!next->has_value()) break;
      std::vector<std::string> command;
      for (const redis::Reply& arg : (*next)->elements) command.push_back(arg.str);
      {
        absl::MutexLock lock(&mu_);
        commands_.push_back(command);
      }
      const std::string reply = handler_(command);
      if (!reply.empty()) send_all(reply);
    }
    if (broken) break;
  }
  absl::MutexLock lock(&mu_);
  for (auto it = client_fds_.begin(); it != client_fds_.end(); ++it) {
    if (*it == fd) {
      client_fds_.erase(it);
      break;
    }
  }
  close(fd);
}

}  // namespace stateside::testing

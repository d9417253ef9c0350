// A one-response-per-connection HTTP server on 127.0.0.1 (port chosen by the
// kernel) that answers every request with a canned reply, for statesidectl's
// admin-port commands. Thread-safe: the test thread reads what it recorded.
#ifndef STATESIDE_TESTS_UNIT_CLIENT_TINY_HTTP_SERVER_H_
#define STATESIDE_TESTS_UNIT_CLIENT_TINY_HTTP_SERVER_H_

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace stateside::testing {

class TinyHttpServer {
 public:
  // `reply` is sent verbatim (status line, headers, body).
  explicit TinyHttpServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 8);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyHttpServer() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
    close(fd_);
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  std::vector<std::string> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  bool stopping() const {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }
  void Serve() {
    while (!stopping()) {
      // 10 ms polls so that the destructor is noticed.
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 10) <= 0) continue;
      const int conn = accept(fd_, nullptr, nullptr);
      if (conn < 0) continue;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = read(conn, buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      {
        absl::MutexLock lock(&mu_);
        requests_.push_back(request);
      }
      for (size_t sent = 0; sent < reply_.size();) {
        const ssize_t n = write(conn, reply_.data() + sent, reply_.size() - sent);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      close(conn);
    }
  }

  const std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_CLIENT_TINY_HTTP_SERVER_H_

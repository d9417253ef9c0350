// A scripted stand-in for redis-server on 127.0.0.1 (kernel-chosen port): it
// parses each command and answers with whatever bytes the handler returns,
// so tests can send garbage, split replies, stay silent or misbehave.
// Thread-safe accessors; the handler runs on the server's threads.
#ifndef STATESIDE_TESTS_UNIT_REDIS_FAKE_REDIS_SERVER_H_
#define STATESIDE_TESTS_UNIT_REDIS_FAKE_REDIS_SERVER_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace stateside::testing {

class FakeRedisServer {
 public:
  // Bytes to send for a command ("" = say nothing).
  using Handler = std::function<std::string(const std::vector<std::string>& command)>;

  struct Options {
    std::string greeting;           // written as soon as a client connects
    bool byte_by_byte = false;      // write replies one byte per send()
    bool accept_connections = true; // false: listen only (connects hang in the backlog)
  };

  explicit FakeRedisServer(Handler handler) : FakeRedisServer(std::move(handler), Options()) {}
  FakeRedisServer(Handler handler, Options options);
  ~FakeRedisServer();
  FakeRedisServer(const FakeRedisServer&) = delete;
  FakeRedisServer& operator=(const FakeRedisServer&) = delete;

  int port() const { return port_; }
  std::string url() const;
  int accepted() const { return accepted_.load(); }
  // Every command received so far, in order.
  std::vector<std::vector<std::string>> commands() const;
  // Closes every client connection (the listener stays).
  void DropClients();

  // Handlers for common cases.
  static std::string Ok() { return "+OK\r\n"; }
  static std::string Bulk(const std::string& s) {
    return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
  }

 private:
  void AcceptLoop();
  void Serve(int fd);

  const Handler handler_;
  const Options options_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // closes the accept loop
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;

  mutable absl::Mutex mu_;
  std::vector<std::vector<std::string>> commands_ ABSL_GUARDED_BY(mu_);
  std::vector<int> client_fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> servers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_REDIS_FAKE_REDIS_SERVER_H_

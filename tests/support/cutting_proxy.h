// A Unix-socket proxy between a gRPC client and a server that, once armed,
// cuts the connection at the moment the server's answer to a call starts:
// the first HTTP/2 HEADERS or DATA frame of a stream (not the connection's
// own frames: SETTINGS, PING, WINDOW_UPDATE on stream 0) that the server
// sends after Arm() is dropped and both sides of that connection are
// closed. So the server has applied the call and the client never hears of
// it: the "applied, answer lost" failure a retry must survive. Disarmed
// again after one cut; new connections are proxied as before.
//
// Thread-safe. Each connection has two pump threads; the destructor closes
// everything and joins them.
#ifndef STATESIDE_TESTS_SUPPORT_CUTTING_PROXY_H_
#define STATESIDE_TESTS_SUPPORT_CUTTING_PROXY_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace stateside::testing {

class CuttingProxy {
 public:
  // Listens on `listen_path`, forwarding each connection to `target_path`.
  static absl::StatusOr<std::unique_ptr<CuttingProxy>> Start(std::string listen_path,
                                                             std::string target_path);
  ~CuttingProxy();
  CuttingProxy(const CuttingProxy&) = delete;
  CuttingProxy& operator=(const CuttingProxy&) = delete;

  // The next answer a server starts on any connection is cut.
  void Arm();
  // Connections cut so far.
  int cuts() const;
  const std::string& path() const { return listen_path_; }

 private:
  struct Connection;
  CuttingProxy(std::string listen_path, std::string target_path, int listen_fd);
  void AcceptLoop();
  void PumpToServer(Connection* c);
  void PumpToClient(Connection* c);

  const std::string listen_path_;
  const std::string target_path_;
  const int listen_fd_;
  std::thread acceptor_;

  mutable absl::Mutex mu_;
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int cuts_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::unique_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_CUTTING_PROXY_H_

// A real redis-server for tests: free port (and optionally a Unix socket and a
// TLS port) in a private temp dir, no persistence (save "", appendonly no),
// optional requirepass / ACL users / TLS. Start() returns once it answers
// PING (or NOAUTH). Kill/Restart/Pause/Resume for fault tests; Restart keeps
// the ports, the socket path and the config (but not the data). The server
// dies with the thread that started it (PR_SET_PDEATHSIG via setpriv), so a
// crashed test leaves no redis-server behind: start it from a thread that
// lives as long as it is needed (the test's main thread).
// Not thread-safe: one owner.
#ifndef STATESIDE_TESTS_SUPPORT_REDIS_SERVER_H_
#define STATESIDE_TESTS_SUPPORT_REDIS_SERVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace stateside::testing {

struct RedisServerOptions {
  bool unix_socket = false;  // also listen on <dir>/redis.sock
  std::string requirepass;   // "" = none
  // Extra ACL rules, one user each: "alice on >secret ~* &* +@all".
  std::vector<std::string> acl_users;
  struct Tls {
    bool enabled = false;  // adds a tls-port
    std::string cert_file;
    std::string key_file;
    std::string ca_file;   // verifies client certificates
    bool require_client_cert = false;
  } tls;
  std::vector<std::string> extra_config;  // raw redis.conf lines
  absl::Duration start_timeout = absl::Seconds(10);
};

class RedisServer {
 public:
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      RedisServerOptions options = RedisServerOptions());
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  int tls_port() const { return tls_port_; }            // 0 without TLS
  const std::string& unix_path() const { return unix_path_; }  // "" without
  const std::string& dir() const { return dir_.path(); }

  // "redis://127.0.0.1:PORT" (with ":pass@" when requirepass is set), and the
  // TLS / Unix-socket variants.
  std::string url() const;
  std::string tls_url() const;
  std::string unix_url() const;

  bool running();
  // SIGKILL and reap: a crash, as far as clients can tell.
  void Kill();
  // Starts again on the same ports and socket; waits for readiness.
  absl::Status Restart();
  // SIGSTOP / SIGCONT: the server stops answering without closing anything.
  void Pause();
  void Resume();

  // redis-cli against the plain port (with -a when requirepass is set).
  RunResult Cli(const std::vector<std::string>& args,
                absl::Duration timeout = absl::Seconds(10)) const;
  std::string log() const;

 private:
  explicit RedisServer(RedisServerOptions options) : options_(std::move(options)) {}
  absl::Status WriteConfig() const;
  absl::Status Launch();
  bool Answers() const;

  const RedisServerOptions options_;
  TempDir dir_;
  int port_ = 0;
  int tls_port_ = 0;
  std::string unix_path_;
  std::optional<Subprocess> process_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_REDIS_SERVER_H_

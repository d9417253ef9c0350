// The real sidecar binary (build/bin/stateside) as a child process, for
// process tests: started with its socket and an admin listener on port 0,
// waited for until it serves, stopped as the kubelet stops it (SIGTERM).
// Not thread-safe: one owner, as Subprocess.
#ifndef STATESIDE_TESTS_SUPPORT_SIDECAR_PROCESS_H_
#define STATESIDE_TESTS_SUPPORT_SIDECAR_PROCESS_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"

namespace stateside::testing {

struct SidecarProcessOptions {
  std::string socket_path;                 // STATESIDE_SOCKET
  std::string admin_host = "127.0.0.1";    // STATESIDE_ADMIN_ADDR is admin_host:0
  std::map<std::string, std::string> env;  // the other settings
  bool clear_env = false;                  // as SubprocessOptions::clear_env
  std::string log_path;                    // stdout+stderr of the sidecar
  std::vector<int> cpus;                   // as SubprocessOptions::cpus
  // How long it may take to serve (generous: sanitizer builds start slowly).
  absl::Duration start_timeout = absl::Seconds(15);
};

struct SidecarProcess {
  Subprocess process;
  int admin_port = 0;  // the port its admin listener bound
};

// Starts the sidecar and waits until its log says it serves on the socket
// and where the admin listener is. DEADLINE_EXCEEDED (with the log) if that
// does not happen within start_timeout.
absl::StatusOr<SidecarProcess> StartSidecarProcess(SidecarProcessOptions options);

// A sidecar on the memory store, or on a redis-server of its own (started
// first, with the test secrets): each test of a backend-parameterised suite
// starts one. `options` as for StartSidecarProcess; its env gains
// REDIS_URL and the secrets when `on_redis`.
struct BackendSidecar {
  std::unique_ptr<RedisServer> redis;  // null on the memory store
  SidecarProcess sidecar;
};
absl::StatusOr<BackendSidecar> StartBackendSidecar(bool on_redis,
                                                   SidecarProcessOptions options);

// SIGTERM, then waits up to `timeout` for the exit: its status, nullopt if
// it did not exit in time.
std::optional<int> StopSidecar(Subprocess& sidecar, absl::Duration timeout);

// The HTTP status of GET /health/ready on the admin listener at
// 127.0.0.1:`admin_port` (2 s at most); 0 if there was no answer.
int ReadyStatus(int admin_port);

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_SIDECAR_PROCESS_H_

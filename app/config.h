// radar-app's settings: each one a flag and an environment variable (the
// flag wins), validated once at startup into a Config.
// Plain values and one pure function: thread-compatible.
#ifndef STATESIDE_APP_CONFIG_H_
#define STATESIDE_APP_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace radar {

struct Config {
  std::string listen_host = "127.0.0.1";  // an IP address literal
  uint16_t listen_port = 8080;            // 0: any free port (logged)
  std::string socket_path;                // the sidecar's gRPC socket
  // Empty: "__Host-radar_sid" when cookie_secure, else "radar_sid" (a
  // "__Host-" cookie without Secure is dropped by browsers).
  std::string cookie_name;
  bool cookie_secure = true;  // adds "; Secure" to Set-Cookie; off only for plain-http runs
  // Origins ("scheme://host[:port]", lower case) whose pages may POST and
  // open /ws; empty: the origin of --listen (set once the port is known).
  std::vector<std::string> public_origins;
  size_t max_connections = 10000;     // open TCP connections (WebSockets too); beyond: 503
  size_t max_queued_requests = 1024;  // requests waiting for or in a sidecar call; beyond: 503
  // How often the sessions of open WebSockets are checked again (a logout
  // on another pod, an expiry): the socket of a session gone is closed.
  int64_t ws_session_check_ms = 60000;
  size_t max_body_bytes = 16384;
  int threads = 2;   // I/O threads (Beast/Asio)
  bool test_hooks = false;  // honour X-Radar-Delay-Ms on POST /cart
  // Once draining, a kept-alive connection is closed by us only after it has
  // been idle this long (its requests meanwhile answered with Connection:
  // close). Longer than the proxy's upstream keepalive_timeout (deploy/nginx:
  // 2 s), so the proxy closes an idle connection first.
  int64_t drain_idle_grace_ms = 3000;
  // Once draining, open WebSockets are closed one by one over this window
  // (at most half the time left before the deadline), in random order, so
  // their clients reconnect to the other pods spread out, not as one spike.
  // 0: all at once.
  int64_t ws_close_spread_ms = 2000;
  // SIGTERM/SIGINT become a Drain of the sidecar (ForwardShutdownSignals).
  // Off in a Kubernetes native-sidecar pod, where the sidecar's preStop
  // hook starts the drain: then a signal only makes the app wait for
  // DRAINING (at most the sidecar's pre-stop delay + 5 s), and an app
  // container restarted alone does not drain its pod.
  bool forward_sigterm = true;
  std::string log_format = "text";  // text | json
  std::string log_level = "info";   // spdlog level name
};

// What main should do after parsing the command line.
struct CommandLine {
  enum class Action { kRun, kPrint };  // kPrint: print `output`, exit 0 (--help)
  Action action = Action::kRun;
  std::string output;
  Config config;
};

// Parses `args` (argv, args[0] the program) and the process environment.
// INVALID_ARGUMENT with one line naming the setting ("RADAR_THREADS
// (--threads): ...") for an unknown flag or a bad value.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args);

}  // namespace radar

#endif  // STATESIDE_APP_CONFIG_H_

// Child processes for tests (redis-server, the sidecar, nginx). The child's
// stdout and stderr go to a log file so a failing test can print it. The
// destructor kills (SIGKILL) and reaps a child that is still running.
// Not thread-safe: one owner.
#ifndef STATESIDE_TESTS_SUPPORT_SUBPROCESS_H_
#define STATESIDE_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::testing {

struct SubprocessOptions {
  std::vector<std::string> argv;  // argv[0] is the program path (or a name on PATH)
  // Added to (or, with clear_env, replacing) the parent's environment.
  std::map<std::string, std::string> env;
  bool clear_env = false;
  std::string log_path;  // stdout+stderr; empty = /dev/null
  std::string stdin_path;  // empty = /dev/null
  // The CPUs the child may run on (sched_setaffinity before exec, so what
  // it counts as its cores at startup); empty: as the parent.
  std::vector<int> cpus;
};

class Subprocess {
 public:
  static absl::StatusOr<Subprocess> Start(SubprocessOptions options);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  bool running();  // not yet exited (reaps if it has)

  void Signal(int signo);
  // Waits up to `timeout` for exit. Returns the exit status (or 128+signal if
  // killed by a signal), nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout);
  // SIGKILL and reap.
  void Kill();

  // The whole log so far (empty if none).
  std::string ReadLog() const;
  const std::string& log_path() const { return log_path_; }

 private:
  Subprocess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::string log_path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read,
// close). For servers that cannot report the port they bound themselves.
int PickFreePort();

// Absolute path of a built executable (build/bin/NAME), from the
// STATESIDE_BIN_DIR that ctest sets.
std::string BinPath(const std::string& name);

// Runs argv to completion (up to `timeout`), capturing stdout and stderr
// separately.
struct RunResult {
  int exit_status = -1;  // -1 if it timed out (and was killed)
  std::string out;
  std::string err;
};
RunResult Run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {},
              absl::Duration timeout = absl::Seconds(30),
              const std::string& stdin_data = "");

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_SUBPROCESS_H_

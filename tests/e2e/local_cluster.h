// The local cluster of deploy/local (redis-server, N pods of sidecar +
// radar-app, nginx in front) started for one test binary in a private
// directory on free ports, and stopped with down.sh. Port layout (the
// contract of deploy/local): nginx = port, redis = port+1, pod i's app =
// port+10+i, its sidecar's admin = port+30+i.
// Not thread-safe except where a method says so: one owner.
#ifndef STATESIDE_TESTS_E2E_LOCAL_CLUSTER_H_
#define STATESIDE_TESTS_E2E_LOCAL_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace stateside::testing {

class LocalCluster {
 public:
  // Runs `deploy/local/up.sh pods` with the extra environment `env` (e.g.
  // RADAR_TEST_HOOKS=true) and returns once it exited 0. On failure the
  // status carries up.sh's output and the tail of every log, and whatever
  // up.sh started has been stopped again.
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(
      int pods, const std::map<std::string, std::string>& env = {});
  ~LocalCluster();  // Stop() unless done

  // down.sh (once; later calls return the first result).
  RunResult Stop();

  int pods() const { return pods_; }
  int nginx_port() const { return port_; }
  int app_port(int pod) const { return port_ + 10 + pod; }     // pod: 1-based
  int admin_port(int pod) const { return port_ + 30 + pod; }
  static std::string Instance(int pod) { return "pod-" + std::to_string(pod); }
  std::string Socket(int pod) const;  // the pod's sidecar socket
  const std::string& dir() const { return dir_.path(); }

  // deploy/local/restart.sh POD (blocks until it exits). Safe to call from
  // another thread than the owner's while the owner only reads.
  RunResult Restart(int pod) const;
  // statesidectl --socket <pod's socket> --json ARGS...
  RunResult Statesidectl(int pod, const std::vector<std::string>& args) const;

  // The last `lines` lines of every *.log under the cluster's directory (the
  // pods' sidecar and app logs, nginx's error log, redis), for diagnostics.
  std::string LogTails(int lines = 40) const;
  // Sanitizer reports (ASan, LSan, UBSan) in those logs, each with the lines
  // that follow it; "" if none. Meant for after Stop(), when every process
  // has exited and the leak checks have run.
  std::string SanitizerReports() const;

 private:
  LocalCluster(int pods, int port, std::map<std::string, std::string> env)
      : pods_(pods), port_(port), env_(std::move(env)) {}
  RunResult Script(const std::vector<std::string>& args) const;
  std::vector<std::string> Logs() const;  // every *.log under dir(), sorted

  const int pods_;
  const int port_;
  std::map<std::string, std::string> env_;  // for every script
  TempDir dir_;
  bool stopped_ = false;
  RunResult stop_result_;
};

// Stops `cluster` (down.sh) and records a test failure if down.sh failed or
// a process's log holds a sanitizer report (the sanitizer builds run the
// whole cluster instrumented; a report in a pod's log fails no request).
void StopAndCheck(LocalCluster& cluster);

// A port p such that p..p+span (and p+also_from..p+also_from+also_count-1)
// all looked free a moment ago (each bound and released), with p+span below
// `upper` (keep everything below the kernel's ephemeral range). -1 if none
// found.
int PickFreePortRange(int span, int upper = 32000, int also_from = 0, int also_count = 0);

// The path of a file of the source tree (STATESIDE_SOURCE_DIR).
std::string SourcePath(const std::string& relative);

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_E2E_LOCAL_CLUSTER_H_

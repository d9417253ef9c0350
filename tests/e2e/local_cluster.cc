// LocalCluster: deploy/local/{up,down,restart}.sh driven from a test.
#include "tests/e2e/local_cluster.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace stateside::testing {
namespace {

// Generous: a sanitizer build starts 3 sidecars and 3 apps on 2 cores, and a
// restart includes the pod's drain (pre-stop delay, in-flight requests).
constexpr absl::Duration kScriptTimeout = absl::Seconds(90);

bool PortLooksFree(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  // No SO_REUSEADDR: a port still in TIME_WAIT counts as taken, which is
  // what the servers (some of which do not set it) would meet too.
  const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return free;
}

std::string Tail(const std::string& path, int lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(std::move(line));
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (const std::string& line : last) absl::StrAppend(&out, "  | ", line, "\n");
  return out;
}

std::string Describe(const RunResult& r) {
  return absl::StrCat("exit ", r.exit_status, "\n--- stdout:\n", r.out, "--- stderr:\n", r.err);
}

}  // namespace

void StopAndCheck(LocalCluster& cluster) {
  RunResult down = cluster.Stop();
  EXPECT_EQ(down.exit_status, 0) << "deploy/local/down.sh: " << Describe(down)
                                 << cluster.LogTails();
  const std::string reports = cluster.SanitizerReports();
  EXPECT_TRUE(reports.empty()) << "sanitizer reports in the cluster's logs:\n" << reports;
}

int PickFreePortRange(int span, int upper, int also_from, int also_count) {
  // Below the ephemeral range (32768+ on Linux) so that no outgoing
  // connection of this machine takes one of the ports between the probe and
  // the servers' bind; random so that test binaries run in parallel by ctest
  // -j rarely meet.
  std::mt19937 rng(static_cast<uint32_t>(getpid()) ^
                   static_cast<uint32_t>(absl::ToUnixNanos(absl::Now())));
  std::uniform_int_distribution<int> base(12000, upper - span);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int p = base(rng);
    bool all_free = true;
    for (int i = 0; i <= span && all_free; ++i) all_free = PortLooksFree(p + i);
    for (int i = 0; i < also_count && all_free; ++i) all_free = PortLooksFree(p + also_from + i);
    if (all_free) return p;
  }
  return -1;
}

std::string SourcePath(const std::string& relative) {
  const char* dir = std::getenv("STATESIDE_SOURCE_DIR");
  return std::string(dir && *dir ? dir : ".") + "/" + relative;
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(
    int pods, const std::map<std::string, std::string>& env) {
  // A Redis Cluster's nodes (port+1..port+6) listen for their bus 10000
  // higher: kept below the ephemeral range too, and checked free.
  const auto layout = env.find("STATESIDE_LOCAL_REDIS");
  const bool cluster_bus = layout != env.end() && layout->second == "cluster";
  const int port = cluster_bus ? PickFreePortRange(40, 32000 - 10000, 10001, 6)
                               : PickFreePortRange(40);
  if (port < 0) return absl::UnavailableError("no free range of 41 ports found");
  std::map<std::string, std::string> all_env = env;
  all_env["STATESIDE_LOCAL_PORT"] = std::to_string(port);
  // The binaries of the build the tests belong to (ctest sets it); without
  // it, up.sh's own default.
  if (const char* bin = std::getenv("STATESIDE_BIN_DIR"); bin != nullptr && *bin) {
    all_env["STATESIDE_BIN_DIR"] = bin;
  }
  std::unique_ptr<LocalCluster> cluster(new LocalCluster(pods, port, std::move(all_env)));
  cluster->env_["STATESIDE_LOCAL_DIR"] = cluster->dir();

  const absl::Time start = absl::Now();
  RunResult up = cluster->Script({"up.sh", std::to_string(pods)});
  if (up.exit_status != 0) {
    std::string message = absl::StrCat("deploy/local/up.sh ", pods, " (port ", port,
                                       ") failed: ", Describe(up), cluster->LogTails());
    RunResult down = cluster->Stop();
    absl::StrAppend(&message, "--- down.sh afterwards: ", Describe(down));
    return absl::UnavailableError(message);
  }
  fprintf(stderr, "[e2e] cluster of %d pods up in %s: nginx on 127.0.0.1:%d, dir %s\n", pods,
          absl::FormatDuration(absl::Now() - start).c_str(), port, cluster->dir().c_str());
  return cluster;
}

LocalCluster::~LocalCluster() {
  RunResult down = Stop();
  if (down.exit_status != 0) {
    fprintf(stderr, "[e2e] down.sh failed: %s\n%s", Describe(down).c_str(), LogTails().c_str());
  }
}

RunResult LocalCluster::Stop() {
  if (!stopped_) {
    stopped_ = true;
    stop_result_ = Script({"down.sh"});
  }
  return stop_result_;
}

std::string LocalCluster::Socket(int pod) const {
  return absl::StrCat(dir(), "/pod-", pod, "/sock/stateside.sock");
}

RunResult LocalCluster::Restart(int pod) const {
  return Script({"restart.sh", std::to_string(pod)});
}

RunResult LocalCluster::Statesidectl(int pod, const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {BinPath("statesidectl"), "--socket", Socket(pod), "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {}, absl::Seconds(20));
}

RunResult LocalCluster::Script(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = args;
  argv[0] = SourcePath("deploy/local/" + args[0]);
  return Run(argv, env_, kScriptTimeout);
}

std::vector<std::string> LocalCluster::Logs() const {
  std::vector<std::string> logs;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir(), ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".log") {
      logs.push_back(it->path().string());
    }
  }
  std::sort(logs.begin(), logs.end());
  return logs;
}

std::string LocalCluster::LogTails(int lines) const {
  std::string out;
  for (const std::string& path : Logs()) {
    absl::StrAppend(&out, "--- tail of ", path, ":\n", Tail(path, lines));
  }
  return out;
}

std::string LocalCluster::SanitizerReports() const {
  constexpr int kContext = 30;  // lines kept after a report's first line
  std::string out;
  for (const std::string& path : Logs()) {
    std::ifstream in(path);
    int keep = 0;
    for (std::string line; std::getline(in, line);) {
      if (absl::StrContains(line, "ERROR: AddressSanitizer") ||
          absl::StrContains(line, "ERROR: LeakSanitizer") ||
          absl::StrContains(line, "runtime error:")) {
        if (keep == 0) absl::StrAppend(&out, "--- ", path, ":\n");
        keep = kContext;
      }
      if (keep > 0) {
        absl::StrAppend(&out, "  | ", line, "\n");
        --keep;
      }
    }
  }
  return out;
}

}  // namespace stateside::testing

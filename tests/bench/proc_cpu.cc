// Reading process CPU time from /proc and getrusage.
#include "tests/bench/proc_cpu.h"

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace stateside::bench {

absl::StatusOr<uint64_t> ParseStatCpuTicks(std::string_view stat) {
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos) {
    return absl::InvalidArgumentError("stat: no ')' after the command name");
  }
  // After "pid (comm)": state is field 3, utime field 14, stime field 15.
  std::istringstream rest{std::string(stat.substr(close + 1))};
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3;
  uint64_t utime = 0, stime = 0;
  if (fields.size() <= kStime || !absl::SimpleAtoi(fields[kUtime], &utime) ||
      !absl::SimpleAtoi(fields[kStime], &stime)) {
    return absl::InvalidArgumentError("stat: no utime/stime fields");
  }
  return utime + stime;
}

absl::StatusOr<absl::Duration> ProcessCpuTime(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("no process ", pid, " (", path, ")"));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto ticks = ParseStatCpuTicks(text.str());
  if (!ticks.ok()) {
    return absl::InternalError(absl::StrCat(path, ": ", ticks.status().message()));
  }
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (ticks_per_second <= 0) return absl::InternalError("sysconf(_SC_CLK_TCK)");
  return absl::Seconds(static_cast<double>(*ticks) /
                       static_cast<double>(ticks_per_second));
}

absl::Duration SelfCpuTime() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) +
         absl::DurationFromTimeval(usage.ru_stime);
}

absl::StatusOr<ProcessGroup> ParseProcessGroup(absl::string_view text) {
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\": expected NAME=PID[,PID...]"));
  }
  ProcessGroup group;
  group.name = std::string(text.substr(0, eq));
  for (absl::string_view part : absl::StrSplit(text.substr(eq + 1), ',')) {
    int pid = 0;
    if (!absl::SimpleAtoi(part, &pid) || pid <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\": \"", part, "\" is not a process id > 0"));
    }
    group.pids.push_back(static_cast<pid_t>(pid));
  }
  return group;
}

absl::StatusOr<absl::Duration> GroupCpuTime(const ProcessGroup& group) {
  absl::Duration sum;
  for (pid_t pid : group.pids) {
    absl::StatusOr<absl::Duration> cpu = ProcessCpuTime(pid);
    if (!cpu.ok()) return cpu.status();
    sum += *cpu;
  }
  return sum;
}

}  // namespace stateside::bench

// Reads /proc/self/stat, /proc/stat and /proc/self/fd for ProcessStats.
#include "sidecar/admin/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace stateside::admin {
namespace {

bool ReadFile(const char* path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

// Boot time (seconds since the epoch): the "btime" line of /proc/stat.
bool BootTime(double* out) {
  std::string text;
  if (!ReadFile("/proc/stat", &text)) return false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.substr(0, 6) == "btime ") return absl::SimpleAtod(line.substr(6), out);
  }
  return false;
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats() {
  std::string stat;
  if (!ReadFile("/proc/self/stat", &stat)) {
    return absl::UnavailableError("cannot read /proc/self/stat");
  }
  // "pid (comm) state ppid ...": comm may hold spaces and ')', so the fields
  // are counted from the last ')'. After it, field 3 (state) is index 0.
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return absl::UnavailableError("unexpected /proc/self/stat");
  }
  // (absl::string_view: Debian's Abseil does not alias std::string_view.)
  std::vector<absl::string_view> f = absl::StrSplit(
      absl::string_view(stat).substr(paren + 1), ' ', absl::SkipEmpty());
  auto field = [&](int n, double* out) {  // n: 1-based field number of proc(5)
    size_t i = static_cast<size_t>(n - 3);
    return i < f.size() && absl::SimpleAtod(f[i], out);
  };
  double utime = 0, stime = 0, start_ticks = 0, vsize = 0, rss_pages = 0;
  if (!field(14, &utime) || !field(15, &stime) || !field(22, &start_ticks) ||
      !field(23, &vsize) || !field(24, &rss_pages)) {
    return absl::UnavailableError("unexpected /proc/self/stat");
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));

  ProcessStats stats;
  stats.cpu_seconds = (utime + stime) / ticks;
  stats.virtual_memory_bytes = vsize;
  stats.resident_memory_bytes = rss_pages * page;
  double boot = 0;
  if (BootTime(&boot)) stats.start_time_seconds = boot + start_ticks / ticks;

  if (DIR* dir = opendir("/proc/self/fd")) {
    const int own = dirfd(dir);  // the listing's own fd is not ours to count
    double count = 0;
    while (dirent* entry = readdir(dir)) {
      int fd = 0;
      if (absl::SimpleAtoi(entry->d_name, &fd) && fd != own) ++count;
    }
    closedir(dir);
    stats.open_fds = count;
  } else {
    return absl::UnavailableError("cannot list /proc/self/fd");
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    stats.max_fds = limit.rlim_cur == RLIM_INFINITY
                        ? 0
                        : static_cast<double>(limit.rlim_cur);
  }
  return stats;
}

}  // namespace stateside::admin

// Reads one field of /proc/PID/status.
#include "tests/support/proc_status.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace stateside::testing {

int64_t ProcStatusKb(int pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, field + ":")) continue;
    std::istringstream values(line.substr(field.size() + 1));
    int64_t kb = -1;
    values >> kb;
    return kb;
  }
  return -1;
}

}  // namespace stateside::testing

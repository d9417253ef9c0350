// Reads the admin port out of a sidecar's log.
#include "tests/support/admin_port.h"

#include "absl/strings/numbers.h"

namespace stateside::testing {

std::optional<int> AdminPortFromLog(const std::string& log, const std::string& host) {
  const std::string marker = "admin listening on " + host + ":";
  const size_t at = log.find(marker);
  if (at == std::string::npos) return std::nullopt;
  const size_t start = at + marker.size();
  int port = 0;
  if (!absl::SimpleAtoi(log.substr(start, log.find('\n', start) - start), &port)) {
    return std::nullopt;
  }
  return port;
}

}  // namespace stateside::testing

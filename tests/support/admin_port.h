// The admin port a sidecar started with port 0 reports in its log
// ("admin listening on HOST:PORT"), for process tests. Pure function.
#ifndef STATESIDE_TESTS_SUPPORT_ADMIN_PORT_H_
#define STATESIDE_TESTS_SUPPORT_ADMIN_PORT_H_

#include <optional>
#include <string>

namespace stateside::testing {

// The port of the first "admin listening on `host`:PORT" line of `log`;
// nullopt until there is one.
std::optional<int> AdminPortFromLog(const std::string& log, const std::string& host);

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_ADMIN_PORT_H_

// Runs statesidectl in-process (cli::RunStatesidectl) against a socket and
// captures what it prints, for the statesidectl tests.
#ifndef STATESIDE_TESTS_UNIT_CLIENT_RUN_STATESIDECTL_H_
#define STATESIDE_TESTS_UNIT_CLIENT_RUN_STATESIDECTL_H_

#include <sstream>
#include <string>
#include <vector>

#include "client/tools/cli.h"

namespace stateside::testing {

struct CliResult {
  int exit_status;
  std::string out;
  std::string err;
};

// statesidectl --socket <socket> args...
inline CliResult RunStatesidectl(const std::string& socket, std::vector<std::string> args) {
  args.insert(args.begin(), {"statesidectl", "--socket", socket});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  const int rc = cli::RunStatesidectl(static_cast<int>(argv.size()), argv.data(), out, err);
  return {rc, out.str(), err.str()};
}

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_CLIENT_RUN_STATESIDECTL_H_

// The statesidectl tests' fixture: a fake sidecar on a socket in a temp dir,
// and statesidectl run in-process (cli::RunStatesidectl) against it with what
// it prints captured.
#ifndef STATESIDE_TESTS_UNIT_CLIENT_STATESIDECTL_FIXTURE_H_
#define STATESIDE_TESTS_UNIT_CLIENT_STATESIDECTL_FIXTURE_H_

#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "client/tools/cli.h"
#include "gtest/gtest.h"
#include "tests/unit/client/fake_sidecar.h"
#include "tests/unit/client/fake_sidecar_fixture.h"

namespace stateside::testing {

struct CliResult {
  int exit_status;
  std::string out;
  std::string err;
};

// statesidectl --socket <socket> args..., in process.
inline CliResult RunStatesidectlAt(const std::string& socket, std::vector<std::string> args) {
  args.insert(args.begin(), {"statesidectl", "--socket", socket});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  const int rc = cli::RunStatesidectl(static_cast<int>(argv.size()), argv.data(), out, err);
  return {rc, out.str(), err.str()};
}

class StatesidectlFixture : public FakeSidecarTest<FakeSidecar> {
 protected:
  // statesidectl --socket <fake> args...
  CliResult Run(std::vector<std::string> args) const { return RunStatesidectlAt(socket_, args); }
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_CLIENT_STATESIDECTL_FIXTURE_H_

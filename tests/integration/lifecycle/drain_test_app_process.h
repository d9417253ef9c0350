// drain_test_app (drain_test_app.cc) started from a test: the app under load,
// ready for a drain. Header-only: shared by the lifecycle process tests.
#ifndef STATESIDE_TESTS_INTEGRATION_LIFECYCLE_DRAIN_TEST_APP_PROCESS_H_
#define STATESIDE_TESTS_INTEGRATION_LIFECYCLE_DRAIN_TEST_APP_PROCESS_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace stateside::testing {

// Starts the app on `socket` with 4 load threads and waits until it printed
// "ready" (100 successful calls made, drain watch attached). ignore_sigterm:
// the app that neither forwards nor acts on SIGTERM (native layout).
inline absl::StatusOr<Subprocess> StartDrainTestApp(const std::string& socket,
                                                    const std::string& log_path,
                                                    bool ignore_sigterm = false) {
  SubprocessOptions options;
  options.argv = {BinPath("drain_test_app"), "--socket", socket, "--workers", "4"};
  if (ignore_sigterm) options.argv.push_back("--ignore-sigterm");
  options.log_path = log_path;
  absl::StatusOr<Subprocess> app = Subprocess::Start(options);
  if (!app.ok()) return app.status();
  if (!WaitFor([&] { return absl::StrContains(app->ReadLog(), "ready"); },
               absl::Seconds(15))) {
    return absl::DeadlineExceededError(
        absl::StrCat("drain_test_app not ready after 15 s: ", app->ReadLog()));
  }
  return app;
}

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_INTEGRATION_LIFECYCLE_DRAIN_TEST_APP_PROCESS_H_

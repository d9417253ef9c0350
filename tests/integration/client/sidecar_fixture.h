// One real `stateside` sidecar (embedded memory store) per test binary, on a
// socket in a private temp dir, shared by the client and statesidectl tests.
// Not thread-safe: used from the gtest main thread.
#ifndef STATESIDE_TESTS_INTEGRATION_CLIENT_SIDECAR_FIXTURE_H_
#define STATESIDE_TESTS_INTEGRATION_CLIENT_SIDECAR_FIXTURE_H_

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace stateside::testing {

class SidecarFixture : public ::testing::Test {
 protected:
  // Starts the sidecar once (for the whole binary); fails the suite if it
  // does not become ready.
  static void SetUpTestSuite();
  static void TearDownTestSuite() {}
  void SetUp() override;

  static const std::string& socket_path();
  static pid_t sidecar_pid();
  // The sidecar's log so far (for failure messages).
  static std::string SidecarLog();
  // A user id no other test uses.
  static std::string UniqueUser(const std::string& base);
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_INTEGRATION_CLIENT_SIDECAR_FIXTURE_H_

// SidecarFixture: starts build/bin/stateside once per test binary.
#include "tests/integration/client/sidecar_fixture.h"

#include <sys/stat.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "stateside/client.h"

namespace stateside::testing {
namespace {

struct Shared {
  TempDir dir;
  std::string socket = dir.File("s.sock");
  std::unique_ptr<Subprocess> process;
  std::string error;  // why it did not start, if it did not
};

// Lives until exit, when its destructor removes the temp dir.
Shared& shared() {
  static Shared s;
  return s;
}

// After the last test: stop the sidecar (SIGKILL via ~Subprocess).
class SidecarEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    shared().process.reset();
  }
};
const auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new SidecarEnvironment());

}  // namespace

void SidecarFixture::SetUpTestSuite() {
  Shared& s = shared();
  if (s.process != nullptr || !s.error.empty()) return;
  const std::string bin = BinPath("stateside");
  struct stat st;
  if (stat(bin.c_str(), &st) != 0) {
    s.error = "sidecar binary not built: " + bin;
    return;
  }
  SubprocessOptions options;
  options.argv = {bin};
  options.env = {{"STATESIDE_SOCKET", s.socket},
                 {"STATESIDE_ADMIN_ADDR", "127.0.0.1:0"},
                 {"STATESIDE_LOG_LEVEL", "debug"},
                 // ListingsComeAPageAtATime holds 1001 sessions of one user,
                 // over the default cap (caps_process_test tests the cap).
                 {"STATESIDE_MAX_SESSIONS_PER_USER", "0"}};
  options.log_path = s.dir.File("sidecar.log");
  auto process = Subprocess::Start(options);
  if (!process.ok()) {
    s.error = process.status().ToString();
    return;
  }
  s.process = std::make_unique<Subprocess>(std::move(*process));
  // The client's own readiness wait is what an app uses; use it here too.
  ClientOptions client_options;
  client_options.socket_path = s.socket;
  client_options.ready_timeout = absl::Seconds(30);
  auto client = Client::Connect(client_options);
  if (!client.ok()) {
    s.error = absl::StrCat("sidecar not ready: ", client.status().ToString(),
                           "\n--- sidecar log ---\n", s.process->ReadLog());
  }
}

void SidecarFixture::SetUp() {
  ASSERT_TRUE(shared().error.empty()) << shared().error;
  ASSERT_TRUE(shared().process->running()) << "sidecar exited:\n" << SidecarLog();
}

const std::string& SidecarFixture::socket_path() { return shared().socket; }

pid_t SidecarFixture::sidecar_pid() {
  return shared().process ? shared().process->pid() : -1;
}

std::string SidecarFixture::SidecarLog() {
  return shared().process ? shared().process->ReadLog() : "";
}

std::string SidecarFixture::UniqueUser(const std::string& base) {
  static std::atomic<int> counter{0};
  return absl::StrCat(base, "-", getpid(), "-", counter++);
}

}  // namespace stateside::testing

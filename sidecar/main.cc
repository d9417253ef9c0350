// stateside: parse the configuration (exit 2 if it is bad), start logging,
// build the Server and run it until its drain (SIGTERM/SIGINT, Drain, POST
// /drain) has shut it down (exit 0; the drain's hard timeout exits 1).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/debugging/failure_signal_handler.h"
#include "absl/debugging/symbolize.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "sidecar/crypto/random.h"
#include "sidecar/lifecycle/instance.h"
#include "sidecar/server/config.h"
#include "sidecar/server/hardening.h"
#include "sidecar/server/logging.h"
#include "sidecar/server/server.h"
#include "sidecar/server/signals.h"
#include "spdlog/spdlog.h"

namespace {

constexpr int kExitUsage = 2;    // bad configuration or environment
constexpr int kExitFailure = 1;  // could not run

// Configuration-class errors name a setting and mean "fix and retry".
int ExitCodeFor(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ||
                 status.code() == absl::StatusCode::kFailedPrecondition
             ? kExitUsage
             : kExitFailure;
}

// Before logging starts: a plain line on stderr.
int Fail(const absl::Status& status) {
  std::fprintf(stderr, "stateside: %s\n", std::string(status.message()).c_str());
  return ExitCodeFor(status);
}

// Once logging runs: one log line (still on stderr, in the chosen format).
int FailLogged(const absl::Status& status) {
  spdlog::critical("{}", std::string(status.message()));
  return ExitCodeFor(status);
}

// The last line of a crash report, naming the instance:
// "stateside[<instance id>]: fatal signal, stack trace above". Filled once
// before the handler is installed; read only by the handler.
char crash_trailer[192];

// absl's handler writes the report to stderr itself and hands it here too in
// pieces, then nullptr at the end: write(2) only, async-signal-safe.
void WriteCrashReport(const char* data) {
  if (data != nullptr) return;
  (void)!write(STDERR_FILENO, crash_trailer, std::strlen(crash_trailer));
}

// SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE (and SIGTRAP): a symbolized stack
// trace on stderr naming the instance, then the default action (core dump,
// exit by signal). absl hooks SIGTERM too, but SIGTERM is blocked in every
// thread (BlockShutdownSignals) and read from a signalfd: the drain's.
// Not under a sanitizer: its own report is the better one.
void InstallCrashHandler(const char* argv0, const std::string& instance_id) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  (void)argv0;
  (void)instance_id;
  return;
#endif
  std::snprintf(crash_trailer, sizeof(crash_trailer),
                "stateside[%s]: fatal signal, stack trace above\n",
                instance_id.c_str());
  absl::InitializeSymbolizer(argv0);
  absl::FailureSignalHandlerOptions options;
  options.writerfn = WriteCrashReport;
  absl::InstallFailureSignalHandler(options);
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists, so that every thread inherits the mask and the
  // signals wait for the server's watcher.
  stateside::BlockShutdownSignals();
  // Before a secret is read: no core file, no /proc/<pid>/mem for others.
  if (absl::Status s = stateside::DisableCoreDumps(); !s.ok()) return Fail(s);

  const std::vector<std::string> args(argv, argv + argc);
  stateside::Environment env = stateside::ProcessEnvironment();
  auto command_line = stateside::ParseCommandLine(args, env);
  // Read once: the secrets leave the environment (and the copy of it) now,
  // while no other thread can be calling getenv.
  stateside::WipeEnvironment(env);
  stateside::ScrubEnvironment(stateside::SecretEnvironmentNames());
  if (!command_line.ok()) return Fail(command_line.status());
  if (command_line->action != stateside::CommandLine::Action::kRun) {
    std::fputs(command_line->output.c_str(), stdout);
    return 0;
  }
  stateside::Config& config = command_line->config;

  auto random = stateside::crypto::NewSecureRandom();
  auto identity = stateside::lifecycle::MakeIdentity(config.instance_id,
                                                     *random, absl::Now());
  if (!identity.ok()) return Fail(identity.status());
  InstallCrashHandler(argv[0], identity->id);
#ifdef NDEBUG
  // Abseil's lock-order graph costs every Mutex operation; a release build
  // does not pay for a debugging aid.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  if (absl::Status s = stateside::InitLogging(config.log_format, config.log_level,
                                              identity->id);
      !s.ok()) {
    return Fail(s);
  }

  stateside::ServerOptions options;
  options.random = std::move(random);
  auto server = stateside::Server::Create(std::move(config), *std::move(identity),
                                          std::move(options));
  if (!server.ok()) return FailLogged(server.status());
  if (absl::Status s = (*server)->Run(); !s.ok()) return FailLogged(s);
  return 0;
}

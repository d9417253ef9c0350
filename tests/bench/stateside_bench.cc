// stateside-bench: a closed-loop load generator for the sidecar's gRPC API
// over its Unix socket (or its frame socket, --transport frames), and an
// open-loop publisher for the realtime ops (realtime_bench.h). Exit status:
// 0 measured (at least one call succeeded), 1 the sidecar could not be
// reached / set up or no call succeeded, 2 bad usage.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "tests/bench/bench_options.h"
#include "tests/bench/frames_transport.h"
#include "tests/bench/load_runner.h"
#include "tests/bench/proc_cpu.h"
#include "tests/bench/realtime_bench.h"
#include "tests/bench/report.h"
#include "tests/bench/transport.h"
#include "tests/bench/workload.h"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "stateside-bench: %.*s\n", static_cast<int>(message.size()),
               message.data());
  if (code == kExitUsage) std::fprintf(stderr, "(stateside-bench --help lists the flags)\n");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  namespace bench = stateside::bench;
  auto parsed = bench::ParseBenchOptions(std::vector<std::string>(argv, argv + argc));
  if (!parsed.ok()) return Fail(kExitUsage, parsed.status().message());
  if (!parsed->options.has_value()) {
    std::fputs(parsed->help.c_str(), stdout);
    return 0;
  }
  const bench::BenchOptions& options = *parsed->options;
  if (options.server_pid.has_value()) {
    if (auto cpu = bench::ProcessCpuTime(*options.server_pid); !cpu.ok()) {
      return Fail(kExitUsage, absl::StrCat("--server-pid: ", cpu.status().message()));
    }
  }
  for (const bench::ProcessGroup& group : options.cpu_of) {
    if (auto cpu = bench::GroupCpuTime(group); !cpu.ok()) {
      return Fail(kExitUsage, absl::StrCat("--cpu-of ", group.name, ": ", cpu.status().message()));
    }
  }
  // Open loop, its own driver.
  if (bench::OpIsRealtime(options.op)) return bench::RunRealtime(options);

  // The gRPC socket the session is prepared on: --socket itself, or for
  // --transport frames the sidecar's socket beside its frame socket (none
  // for a bare frame server).
  const bool frames = options.transport == bench::TransportKind::kFrames;
  const std::string setup_socket =
      frames ? bench::FramesSetupSocket(options.socket_path) : options.socket_path;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  absl::StatusOr<bench::Workload> workload;
  if (setup_socket.empty()) {
    workload = bench::FramesOnlyWorkload(options);
  } else {
    channels = bench::MakeChannels(setup_socket, frames ? 1 : options.channels);
    if (absl::Status s = bench::ConnectChannels(setup_socket, channels, options.connect_timeout);
        !s.ok()) {
      return Fail(kExitFailure, s.message());
    }
    workload = bench::PrepareWorkload(options, channels.front());
  }
  if (!workload.ok()) {
    return Fail(kExitFailure, absl::StrCat("setup failed: ",
                                           absl::StatusCodeToString(workload.status().code()),
                                           ": ", workload.status().message()));
  }
  std::vector<std::string> warnings = workload->warnings;
  if (options.channels > options.inflight) {
    warnings.push_back(absl::StrCat("--channels ", options.channels,
                                    " > --inflight ", options.inflight,
                                    ": some channels stay idle"));
  }

  bench::RunnerOptions runner_options;
  runner_options.inflight = options.inflight;
  runner_options.warmup = options.warmup;
  runner_options.duration = options.duration;
  runner_options.server_pid = options.server_pid;
  runner_options.cpu_of = options.cpu_of;
  runner_options.drain_timeout = options.call_timeout + absl::Seconds(5);
  bench::LoadRunner runner(runner_options);

  bench::TransportParams params;
  params.workload = &*workload;
  params.channels = channels;
  params.slots = options.inflight;
  params.call_timeout = options.call_timeout;
  params.sink = &runner;
  params.socket_path = options.socket_path;
  params.connections = options.channels;
  auto transport = bench::MakeTransport(options.transport, std::move(params));
  if (!transport.ok()) {
    if (!channels.empty()) bench::CleanupWorkload(*workload, channels.front(), absl::Seconds(2));
    // Unreachable (a frame socket that is not there) is not a usage error.
    return Fail(absl::IsUnavailable(transport.status()) ? kExitFailure : kExitUsage,
                transport.status().message());
  }

  auto result = runner.Run(**transport);
  if (!result.ok()) {
    Fail(kExitFailure, result.status().message());
    // Calls are still outstanding on the transport: leave without running
    // destructors that would free what they use.
    std::fflush(stdout);
    _exit(kExitFailure);
  }
  transport->reset();
  if (!channels.empty()) bench::CleanupWorkload(*workload, channels.front(), absl::Seconds(2));

  const std::string out = options.json
                              ? bench::FormatJson(options, *result, warnings) + "\n"
                              : bench::FormatText(options, *result, warnings);
  std::fputs(out.c_str(), stdout);
  if (result->calls == 0) {
    return Fail(kExitFailure, "no call succeeded in the measured window");
  }
  return 0;
}

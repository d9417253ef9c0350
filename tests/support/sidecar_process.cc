// Starting, waiting for and stopping the real sidecar binary.
#include "tests/support/sidecar_process.h"

#include <signal.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "tests/support/admin_port.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"
#include "tests/support/web_client.h"

namespace stateside::testing {

absl::StatusOr<SidecarProcess> StartSidecarProcess(SidecarProcessOptions options) {
  SubprocessOptions process_options;
  process_options.argv = {BinPath("stateside")};
  process_options.env = std::move(options.env);
  process_options.env["STATESIDE_SOCKET"] = options.socket_path;
  process_options.env["STATESIDE_ADMIN_ADDR"] = options.admin_host + ":0";
  process_options.clear_env = options.clear_env;
  process_options.cpus = options.cpus;
  process_options.log_path = options.log_path;
  auto process = Subprocess::Start(std::move(process_options));
  if (!process.ok()) return process.status();
  int admin_port = 0;
  const bool serving = WaitFor(
      [&] {
        const std::string log = process->ReadLog();
        if (!absl::StrContains(log, "serving on unix:")) return false;
        admin_port = AdminPortFromLog(log, options.admin_host).value_or(0);
        return admin_port != 0;
      },
      options.start_timeout);
  if (!serving) {
    return absl::DeadlineExceededError("the sidecar did not serve: " + process->ReadLog());
  }
  return SidecarProcess{*std::move(process), admin_port};
}

absl::StatusOr<BackendSidecar> StartBackendSidecar(bool on_redis,
                                                   SidecarProcessOptions options) {
  std::unique_ptr<RedisServer> redis;
  if (on_redis) {
    absl::StatusOr<std::unique_ptr<RedisServer>> started = RedisServer::Start();
    if (!started.ok()) return started.status();
    redis = *std::move(started);
    options.env["REDIS_URL"] = redis->url();
    options.env["SESSION_ENCRYPTION_KEY"] = kTestKeyHex;
    options.env["SESSION_SECRET"] = kTestSecret;
  }
  absl::StatusOr<SidecarProcess> sidecar = StartSidecarProcess(std::move(options));
  if (!sidecar.ok()) return sidecar.status();
  return BackendSidecar{std::move(redis), *std::move(sidecar)};
}

std::optional<int> StopSidecar(Subprocess& sidecar, absl::Duration timeout) {
  sidecar.Signal(SIGTERM);
  return sidecar.Wait(timeout);
}

int ReadyStatus(int admin_port) {
  HttpRequest request;
  request.target = "/health/ready";
  absl::StatusOr<HttpResponse> response = HttpCall(admin_port, request, absl::Seconds(2));
  return response.ok() ? response->status : 0;
}

}  // namespace stateside::testing

// radar-app: parse the settings (exit 2 if bad), connect to the sidecar,
// serve HTTP + WebSocket until the drain, then exit 0.
//
// Drain: starts on the sidecar's DRAINING (DrainWatcher) — which our own
// SIGTERM/SIGINT triggers, forwarded as Drain (RADAR_FORWARD_SIGTERM, the
// default), or the sidecar's preStop hook in a Kubernetes native-sidecar pod
// (forwarding off) — or on our own when the sidecar could not be told or
// said nothing within its pre-stop delay + 5 s of our signal. The drain
// lasts until the deadline the sidecar sent. Then: stop accepting, answer in-flight
// requests with Connection: close, close idle keep-alive connections (after a 1 s grace),
// close WebSockets with 1012, wait for in-flight work (bounded by the
// deadline), ReportDrained, exit 0. A second signal exits at once with
// status 1 (the drain was cut short).
#include <pthread.h>
#include <signal.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "app/config.h"
#include "app/drain.h"
#include "app/http_server.h"
#include "app/logging.h"
#include "app/routes.h"
#include "app/websocket_hub.h"
#include "app/websocket_session.h"
#include "spdlog/spdlog.h"
#include "stateside/client.h"
#include "stateside/drain_watcher.h"
#include "stateside/shutdown_signals.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;
// Our own drain (sidecar unreachable, or no deadline given): as long as the
// sidecar's default STATESIDE_DRAIN_TIMEOUT.
constexpr absl::Duration kOwnDrainTimeout = absl::Seconds(10);
// Finish this much before the sidecar's deadline, so that ReportDrained
// arrives while the sidecar still waits for it.
constexpr absl::Duration kReportMargin = absl::Milliseconds(250);
// After our signal the sidecar says DRAINING after its pre-stop delay (it
// reports the delay in GetInstance); if it has not this much later (it went
// away, or, not forwarding, our container is restarted alone), drain alone.
constexpr absl::Duration kDrainingLateBy = absl::Seconds(5);
// The wait for a sidecar that does not report its pre-stop delay.
constexpr absl::Duration kUnknownPrestopWait = absl::Seconds(60);

void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

std::string HostPort(const std::string& host, uint16_t port) {
  return host.find(':') == std::string::npos ? absl::StrCat(host, ":", port)
                                              : absl::StrCat("[", host, "]:", port);
}

// Config phase: the command line. The config, or the exit status when the
// process ends here (a printing action such as --help: 0; bad usage: 2).
std::optional<radar::Config> LoadConfig(int argc, char** argv, int* exit_status) {
  auto command_line = radar::ParseCommandLine(std::vector<std::string>(argv, argv + argc));
  if (!command_line.ok()) {
    std::fprintf(stderr, "radar-app: %s\n", std::string(command_line.status().message()).c_str());
    *exit_status = kExitUsage;
    return std::nullopt;
  }
  if (command_line->action == radar::CommandLine::Action::kPrint) {
    std::fputs(command_line->output.c_str(), stdout);
    *exit_status = 0;
    return std::nullopt;
  }
  return command_line->config;
}

// Client connect phase: the client and the instance it serves (logged as
// critical when either fails).
struct Sidecar {
  std::unique_ptr<stateside::Client> client;
  stateside::InstanceInfo instance;
};

std::optional<Sidecar> ConnectToSidecar(const radar::Config& config) {
  stateside::ClientOptions client_options;
  client_options.socket_path = config.socket_path;
  // The app may start before its sidecar (same pod): wait for it a while.
  client_options.ready_timeout = absl::Seconds(30);
  auto client = stateside::Client::Connect(client_options);
  if (!client.ok()) {
    spdlog::critical("cannot reach the sidecar at {}: {}", config.socket_path,
                     client.status().ToString());
    return std::nullopt;
  }
  auto instance = (*client)->GetInstance();
  if (!instance.ok()) {
    spdlog::critical("GetInstance: {}", instance.status().ToString());
    return std::nullopt;
  }
  return Sidecar{*std::move(client), *std::move(instance)};
}

// Logging phase, once the instance is known: its id names every line.
void LogAsInstance(const radar::Config& config, const std::string& instance_id) {
  (void)radar::InitLogging(config.log_format, config.log_level, instance_id);
  if (config.test_hooks) {
    spdlog::warn("test hooks ON: POST /cart honours X-Radar-Delay-Ms (never in production)");
  } else {
    spdlog::info("test hooks off");
  }
}

// Our SIGTERM/SIGINT: forwarded to the sidecar as a Drain (or, forwarding
// off, only counted); a second one exits at once with status 1.
absl::StatusOr<std::unique_ptr<stateside::ShutdownSignalForwarder>> ForwardSignals(
    stateside::Client* client, const radar::Config& config, radar::DrainState* drain) {
  stateside::ShutdownSignalOptions signal_options;
  signal_options.on_forwarded = [drain](int signo, const absl::Status& status) {
    if (status.ok()) {
      spdlog::info("signal {}: asked the sidecar to drain", signo);
      return;
    }
    spdlog::warn("signal {}: sidecar unreachable ({}): draining on our own", signo,
                 status.ToString());
    drain->Begin(absl::Now() + kOwnDrainTimeout, "signal, sidecar unreachable");
  };
  signal_options.on_second_signal = [](int signo) {
    spdlog::warn("second signal {}: exiting at once (status 1)", signo);
    std::_Exit(kExitFailure);
  };
  signal_options.forward = config.forward_sigterm;
  return stateside::ForwardShutdownSignals(client, signal_options);
}

// Server build phase: what serves HTTP and WebSockets, wired together.
// Members are declared (so built, and destroyed in reverse) in dependency
// order. Not thread-safe: main drives it.
class AppServer {
 public:
  AppServer(stateside::Client* client, const radar::Config& config,
            const std::string& instance_id, radar::DrainState* drain)
      : config_(config),
        ioc_(config.threads),
        hub_(client, absl::Milliseconds(config.ws_session_check_ms)),
        routes_(client, config, instance_id, drain, &hub_),
        websocket_deps_{client, &hub_, drain, instance_id, config.max_body_bytes},
        server_(ioc_, radar::HttpDeps{&routes_, drain, &websocket_deps_,
                                      config.max_body_bytes, config.public_origins,
                                      config.max_connections, config.max_queued_requests}) {}

  // Binds the listener and subscribes the hub (logged as critical on failure).
  bool Listen() {
    if (absl::Status s = server_.Listen(config_.listen_host, config_.listen_port); !s.ok()) {
      spdlog::critical("{}", std::string(s.message()));
      return false;
    }
    if (absl::Status s = hub_.Start(); !s.ok()) {
      spdlog::critical("realtime subscribe: {}", s.ToString());
      return false;
    }
    return true;
  }

  // Run phase: accepts connections on config.threads I/O threads.
  void Serve(const std::string& instance_id) {
    work_.emplace(boost::asio::make_work_guard(ioc_));
    server_.Start();
    for (int i = 0; i < config_.threads; ++i) io_threads_.emplace_back([this] { ioc_.run(); });
    spdlog::info("radar-app listening on {} as {}",
                 HostPort(config_.listen_host, server_.port()), instance_id);
  }

  // Drain phase: see the file comment. Returns once every connection and
  // WebSocket is closed or `finish_by` has passed.
  void Drain(radar::DrainState& drain, absl::Time finish_by);

  // Ends the I/O threads (after Drain).
  void Stop() {
    work_.reset();
    ioc_.stop();
    for (std::thread& t : io_threads_) t.join();
  }

 private:
  const radar::Config& config_;
  boost::asio::io_context ioc_;
  radar::WebSocketHub hub_;
  const radar::Routes routes_;
  const radar::WebSocketDeps websocket_deps_;
  radar::HttpServer server_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
};

void AppServer::Drain(radar::DrainState& drain, absl::Time finish_by) {
  spdlog::info("draining ({}): {} in flight, finishing within {}", drain.reason(),
               drain.in_flight(), absl::FormatDuration(std::max(finish_by - absl::Now(),
                                                                absl::ZeroDuration())));
  server_.StopAccepting();
  // WebSockets close one by one over the spread (at most half the time left,
  // so the last clients still reconnect elsewhere before our deadline): a
  // pod's thousands of clients reconnecting to the other pods in the same
  // millisecond would be a thundering herd on their sidecars and Redis.
  const absl::Duration ws_spread =
      std::clamp((finish_by - absl::Now()) / 2, absl::ZeroDuration(),
                 absl::Milliseconds(config_.ws_close_spread_ms));
  std::thread ws_closer([this, ws_spread] {
    hub_.CloseAll(boost::beast::websocket::close_code::service_restart, ws_spread);
  });
  // Kept-alive connections: a proxy (nginx's upstream keep-alive pool) goes
  // on sending requests over the connections it holds, each answered and
  // then closed by us (Connection: close). We close a connection ourselves
  // only once it has been idle for the grace (--drain-idle-grace-ms), longer
  // than the proxy's upstream keepalive_timeout (deploy/nginx: 2 s): the
  // proxy has then closed it first, so no request of its meets our close,
  // which it could retry only for idempotent methods. Closing every idle
  // connection at one instant would race with a request nginx is writing
  // onto one it used a millisecond ago. Until the deadline, each connection
  // is checked again as its idle time runs out.
  const absl::Duration idle_grace = absl::Milliseconds(config_.drain_idle_grace_ms);
  absl::SleepFor(std::clamp(finish_by - absl::Now(), absl::ZeroDuration(), idle_grace));
  spdlog::info("closing idle keep-alive connections (idle for {})",
               absl::FormatDuration(idle_grace));
  constexpr absl::Duration kIdleRecheck = absl::Milliseconds(100);
  bool finished = false;
  while (!finished && absl::Now() < finish_by) {
    server_.CloseIdle(idle_grace);
    const absl::Time next = std::min(finish_by, absl::Now() + kIdleRecheck);
    finished = drain.WaitIdle(next) && server_.OpenConnections() == 0;
    if (!finished) absl::SleepFor(std::max(next - absl::Now(), absl::ZeroDuration()));
  }
  if (!finished) {
    spdlog::warn(
        "drain deadline reached with {} request(s)/WebSocket(s) in flight and {} "
        "connection(s) open",
        drain.in_flight(), server_.OpenConnections());
  }
  hub_.Stop();  // closes at once what the spread has not reached yet
  ws_closer.join();
}

// The sidecar's DRAINING (or DRAINED) begins our drain. Ready only once the
// watcher is attached: a drain started after that waits for our
// ReportDrained.
absl::StatusOr<std::unique_ptr<stateside::DrainWatcher>> WatchSidecarDrain(
    stateside::Client& client, radar::DrainState* drain) {
  auto watcher = stateside::DrainWatcher::Start(
      client, [drain](const stateside::DrainNotice& notice) {
        if (notice.state == stateside::DrainState::kDraining) {
          drain->set_drain_token(notice.drain_token);
          const absl::Time deadline = notice.deadline == absl::InfiniteFuture()
                                          ? absl::Now() + kOwnDrainTimeout
                                          : notice.deadline;
          drain->Begin(deadline, "the sidecar is draining");
        } else if (notice.state == stateside::DrainState::kDrained) {
          // The sidecar is shutting down without having waited for us.
          drain->Begin(absl::Now(), "the sidecar shut down");
        }
      });
  if (!watcher.ok()) return watcher.status();
  // The watcher has no hook for its attach; poll.
  const absl::Time attach_deadline = absl::Now() + absl::Seconds(10);
  while ((*watcher)->attached_count() == 0 && absl::Now() < attach_deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  if ((*watcher)->attached_count() == 0) spdlog::warn("drain watcher not attached yet");
  return watcher;
}

// Run phase: waits until the drain begins; its deadline. After a signal
// with no DRAINING from the sidecar in time, drains on our own.
absl::Time WaitForDrain(radar::DrainState& drain,
                        const stateside::ShutdownSignalForwarder& forwarder,
                        const stateside::InstanceInfo& instance, const radar::Config& config) {
  const absl::Duration draining_wait = instance.prestop_delay.has_value()
                                           ? *instance.prestop_delay + kDrainingLateBy
                                           : kUnknownPrestopWait;
  spdlog::info("SIGTERM: {}; DRAINING expected within {} of it",
               config.forward_sigterm ? "forwarded to the sidecar as a drain"
                                      : "not forwarded (the sidecar's preStop hook drains)",
               absl::FormatDuration(draining_wait));
  std::optional<absl::Time> deadline;
  std::optional<absl::Time> signalled_at;
  // Polls the signal count (without forwarding, the forwarder has no hook).
  while (!(deadline = drain.WaitForBegin(absl::Seconds(1))).has_value()) {
    if (forwarder.signals_received() == 0) continue;
    if (!signalled_at.has_value()) signalled_at = absl::Now();
    if (absl::Now() - *signalled_at > draining_wait) {
      drain.Begin(absl::Now() + kOwnDrainTimeout, "no DRAINING from the sidecar after a signal");
    }
  }
  return *deadline;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists: every thread inherits the blocked mask, and
  // the forwarder's signalfd is the only place SIGTERM/SIGINT arrive.
  BlockShutdownSignals();

  int exit_status = 0;
  const std::optional<radar::Config> loaded = LoadConfig(argc, argv, &exit_status);
  if (!loaded.has_value()) return exit_status;
  const radar::Config& config = *loaded;
  (void)radar::InitLogging(config.log_format, config.log_level, "radar-app");

  std::optional<Sidecar> sidecar = ConnectToSidecar(config);
  if (!sidecar.has_value()) return kExitFailure;
  std::unique_ptr<stateside::Client>& client = sidecar->client;
  const stateside::InstanceInfo& instance = sidecar->instance;
  LogAsInstance(config, instance.id);

  radar::DrainState drain;
  auto forwarder = ForwardSignals(client.get(), config, &drain);
  if (!forwarder.ok()) {
    spdlog::critical("signals: {}", forwarder.status().ToString());
    return kExitFailure;
  }

  AppServer server(client.get(), config, instance.id, &drain);
  if (!server.Listen()) return kExitFailure;
  auto watcher = WatchSidecarDrain(*client, &drain);
  if (!watcher.ok()) {
    spdlog::critical("drain watcher: {}", watcher.status().ToString());
    return kExitFailure;
  }

  server.Serve(instance.id);
  const absl::Time deadline = WaitForDrain(drain, **forwarder, instance, config);
  // The sidecar's deadline (its drain timeout after the pre-stop delay), or
  // ours when it sent none.
  server.Drain(drain, deadline - kReportMargin);
  // With the sidecar's token: a retried report counts once.
  if (absl::Status s = client->ReportDrained(drain.drain_token()); !s.ok()) {
    spdlog::warn("ReportDrained: {}", s.ToString());
  } else {
    spdlog::info("drained; reported to the sidecar");
  }
  server.Stop();
  // End the client's calls still running (an asynchronous GET /me past the
  // drain deadline: CANCELLED) while the routes their callbacks use exist.
  watcher->reset();
  forwarder->reset();
  client.reset();
  spdlog::info("radar-app exiting");
  return 0;
}

// Server: the drain sequence, whole. The DrainController decides when; this
// file does what each step means: the DrainActions (readiness, the shutdown
// work on a thread of its own, the forced exit) and their metrics, leaving
// the cluster registry and realtime presence (also done by Stop), and the
// waits that Run and the tests use.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "sidecar/rpc/grpc_server.h"
#include "sidecar/server/frame_server.h"
#include "sidecar/server/server.h"
#include "spdlog/spdlog.h"

namespace stateside {
namespace {

// A fast shutdown (second signal) still lets calls in flight end, briefly.
constexpr absl::Duration kFastGrace = absl::Seconds(1);
// Once the app has drained, session calls still in flight are short (a
// Redis round trip at most), but gRPC's graceful shutdown also waits for
// idle client connections to acknowledge the GOAWAY, which an idle sync
// client only does on its 5 s backup poll. So the graceful part is capped:
// past this (or twice the Redis command timeout, if longer) what remains is
// cancelled and the connections closed.
constexpr absl::Duration kGraceCap = absl::Seconds(2);
// gRPC cancels what is left this long before the hard deadline, so that the
// graceful path ends (exit 0) before the forced exit (exit 1) would fire.
constexpr absl::Duration kHardDeadlineMargin = absl::Milliseconds(500);

}  // namespace

class Server::Actions final : public DrainActions {
 public:
  explicit Actions(Server* server) : server_(server) {}

  void SetReady(bool ready) override {
    if (!ready) server_->OnDrainStarted();
  }
  void BeginShutdown(bool fast) override { server_->BeginShutdown(fast); }
  void ForceExit(int status) override {
    server_->parts_->metrics->ForcedExit();
    if (server_->drain_->state() == DrainState::kHolding) {
      spdlog::critical(
          "held after the drain, but no SIGTERM came within "
          "STATESIDE_SHUTDOWN_TIMEOUT ({}): forced exit {}",
          absl::FormatDuration(server_->config_.shutdown_timeout), status);
    } else {
      spdlog::critical(
          "shutdown did not finish within STATESIDE_SHUTDOWN_TIMEOUT ({}) or "
          "was interrupted: forced exit {}",
          absl::FormatDuration(server_->config_.shutdown_timeout), status);
    }
    spdlog::default_logger()->flush();
    std::_Exit(status);
  }
  void Stopped() override { server_->OnDrainStopped(); }
  void AppDrainFinished(absl::Duration waited, bool timed_out) override {
    server_->parts_->metrics->DrainFinished(absl::ToDoubleSeconds(waited), timed_out);
    if (timed_out) {
      spdlog::warn(
          "app drain timed out after {} (STATESIDE_DRAIN_TIMEOUT): shutting "
          "down anyway",
          absl::FormatDuration(waited));
    } else {
      spdlog::info("app drain finished after {}", absl::FormatDuration(waited));
    }
  }

 private:
  Server* const server_;
};

std::unique_ptr<DrainActions> Server::NewDrainActions() {
  return std::make_unique<Actions>(this);
}

void Server::OnDrainStarted() {
  absl::MutexLock lock(&mu_);
  if (draining_) return;
  draining_ = true;
  shutdown_requested_ = true;
  drain_started_ = absl::Now();
  drain_timeline_.emplace_back(drain_started_, "drain started: not ready, serving on");
  ApplyReadyLocked();
  parts_->metrics->SetDrainState(admin::DrainPhase::kDraining);
  parts_->instance->set_drain_state(DrainState::kDraining);
  spdlog::info(
      "drain started: not ready; serving on; watchers told after {}",
      absl::FormatDuration(config_.prestop_delay));
}

void Server::BeginShutdown(bool fast) {
  parts_->metrics->SetDrainState(admin::DrainPhase::kDrained);
  parts_->instance->set_drain_state(DrainState::kDrained);
  spdlog::info("drained: shutting down{}", fast ? " (fast)" : "");
  absl::MutexLock lock(&mu_);
  drain_timeline_.emplace_back(absl::Now(), fast ? "drained: shutting down (fast)"
                                                 : "drained: shutting down");
  // The controller asks once; the caller (an RPC, the admin thread, the
  // ticker) must not block. A server being destroyed starts nothing new.
  if (shutdown_thread_.joinable() || destroying_) return;
  shutdown_thread_ = std::thread([this, fast] { ShutdownWork(fast); });
}

void Server::ShutdownWork(bool fast) {
  std::shared_ptr<rpc::GrpcServer> grpc;
  absl::Time deadline;
  {
    absl::MutexLock lock(&mu_);
    grpc = grpc_;  // alive until this is done, whatever Stop does meanwhile
    const absl::Time hard =
        drain_started_ + config_.shutdown_timeout - kHardDeadlineMargin;
    const absl::Duration grace =
        fast ? kFastGrace
             : std::max(kGraceCap, 2 * config_.redis.command_timeout);
    deadline = std::min(hard, absl::Now() + grace);
  }
  // The app has drained: leave the cluster registry at once, so that other
  // instances stop counting this one (and its connections).
  Deregister();
  // Subscribe streams end (after writing what they hold) and this
  // instance's connections leave the cluster's presence.
  ShutdownRealtime();
  // No new calls; calls in flight (session calls of the app's last
  // requests) finish, up to the deadline. The frame socket stops reading
  // first, then its connections and gRPC wind down side by side: a frame
  // client that stops reading its answers holds its own connection until
  // the deadline, not the gRPC calls that fell back meanwhile.
  {
    std::shared_ptr<FrameServer> frames;
    {
      absl::MutexLock lock(&mu_);
      frames = frames_;
    }
    if (frames != nullptr) frames->StopReading();
  }
  std::thread frames_stopped([this, deadline] { StopFrames(deadline); });
  if (grpc != nullptr) grpc->Shutdown(deadline);
  frames_stopped.join();
  spdlog::info("gRPC stopped; flushing");
  spdlog::default_logger()->flush();
  // STOPPED (OnDrainStopped: Run returns), or HOLDING until our SIGTERM.
  drain_->ShutdownComplete();
  if (drain_->state() == DrainState::kHolding) {
    spdlog::info(
        "drained and shut down; holding (not ready, serving nothing) until "
        "SIGTERM, as the drain request asked, or exit 1 at "
        "STATESIDE_SHUTDOWN_TIMEOUT");
  }
}

void Server::OnDrainStopped() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

void Server::RequestShutdown() {
  drain_->StartDrain("shutdown requested");
  ticker_->Poke();
}

bool Server::WaitForShutdownRequest(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](bool* requested) { return *requested; }, &shutdown_requested_),
      timeout);
}

bool Server::WaitForStopped(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(+[](bool* stopped) { return *stopped; }, &stopped_),
      timeout);
}

void Server::Deregister() {
  std::unique_ptr<PeriodicTask> heartbeat;
  {
    absl::MutexLock lock(&mu_);
    const bool was_listed = registered_ && !deregistered_;
    deregistered_ = true;
    if (!was_listed) return;
    heartbeat = std::move(heartbeat_);
  }
  heartbeat.reset();  // waits for a heartbeat in progress
  if (absl::Status s = parts_->registry->Remove(parts_->instance->id()); !s.ok()) {
    spdlog::warn("could not remove this instance from the cluster registry "
                 "(it expires within {}): {}",
                 absl::FormatDuration(kHeartbeatsPerTtl * config_.heartbeat_interval),
                 std::string(s.message()));
  } else {
    spdlog::info("removed from the cluster registry");
  }
}

void Server::ShutdownRealtime() {
  // No hub: Build failed before it (the destructor of a refused Server).
  if (parts_->hub == nullptr || realtime_shut_down_.exchange(true)) return;
  // The session event streams end with the realtime ones (UNAVAILABLE once
  // what they queued is written).
  if (parts_->session_changes != nullptr) parts_->session_changes->Shutdown();
  if (absl::Status s = parts_->hub->Shutdown(); !s.ok()) {
    spdlog::warn("could not remove this instance's realtime presence (other instances "
                 "drop it within {}): {}",
                 absl::FormatDuration(kHeartbeatsPerTtl * config_.heartbeat_interval),
                 std::string(s.message()));
  } else {
    spdlog::info("realtime connections removed from the cluster");
  }
}

}  // namespace stateside

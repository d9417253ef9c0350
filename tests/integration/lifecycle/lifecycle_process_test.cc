// The drain sequence end to end on the real binary: SIGTERM / POST /drain /
// Drain → readiness 503 at once while liveness stays 200, WatchDrain events,
// ReportDrained, the drain and pre-stop timeouts, a second signal, exit
// statuses and the socket file; the preStop drain of the native-sidecar
// layout (`statesidectl drain --no-follow`, held until SIGTERM); /metrics
// through promtool; hostile HTTP on the admin port never blocks the probes.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/integration/lifecycle/drain_test_app_process.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/unit/admin/http_test_client.h"

namespace stateside {
namespace {

namespace v1 = ::stateside::v1;
using testing::RawConnection;
using testing::Subprocess;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(5)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

// The value of the first series of `name` whose line holds every label.
std::optional<double> MetricValue(const std::string& text, const std::string& name,
                                  const std::vector<std::string>& labels = {}) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name)) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    bool all = true;
    for (const std::string& label : labels) all = all && absl::StrContains(line, label);
    if (!all) continue;
    double value = 0;
    const size_t space = line.rfind(' ');
    if (absl::SimpleAtod(line.substr(space + 1), &value)) return value;
  }
  return std::nullopt;
}

class LifecycleProcessTest : public ::testing::Test {
 protected:
  // Starts the sidecar with these settings (plus a socket in the temp dir
  // and an admin port of its own) and waits until it serves.
  void StartSidecar(std::map<std::string, std::string> env = {}) {
    env["INSTANCE_ID"] = "lifecycle-test";
    auto sidecar = testing::StartSidecarProcess(
        {.socket_path = socket_, .env = env, .log_path = dir_.File("sidecar.log")});
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    process_.emplace(std::move(sidecar->process));
    admin_port_ = sidecar->admin_port;
    channel_ = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
    sessions_ = v1::SessionService::NewStub(channel_);
    lifecycle_ = v1::LifecycleService::NewStub(channel_);
  }

  // One request on a fresh connection; nullopt if no answer in time.
  std::optional<testing::RawResponse> Http(const std::string& path,
                                           const std::string& method = "GET",
                                           absl::Duration timeout = absl::Seconds(2)) {
    auto connection = RawConnection::Connect(admin_port_);
    if (!connection.ok()) return std::nullopt;
    std::string request = testing::GetRequest(path, method);
    if (!connection->Send(request)) return std::nullopt;
    return connection->ReadResponse(timeout);
  }
  int HttpStatus(const std::string& path, const std::string& method = "GET") {
    auto response = Http(path, method);
    return response.has_value() ? response->status : 0;
  }

  bool CreateOne() {
    v1::CreateSessionRequest request;
    v1::CreateSessionResponse response;
    return sessions_->Create(Context().get(), request, &response).ok();
  }

  // Until /health says the drain holds (drained, waiting for SIGTERM).
  bool WaitForHolding() {
    return testing::WaitFor(
        [&] {
          auto health = Http("/health");
          return health.has_value() &&
                 absl::StrContains(health->body, "\"drain_state\":\"HOLDING\"");
        },
        absl::Seconds(10));
  }

  std::optional<int> WaitExit(absl::Duration timeout = absl::Seconds(10)) {
    return process_->Wait(timeout);
  }

  testing::TempDir dir_;
  std::string socket_ = dir_.File("run/api.sock");
  std::optional<Subprocess> process_;
  int admin_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SessionService::Stub> sessions_;
  std::unique_ptr<v1::LifecycleService::Stub> lifecycle_;
};

// A WatchDrain stream read on the test thread.
class Watcher {
 public:
  explicit Watcher(v1::LifecycleService::Stub* stub)
      : context_(Context(absl::Seconds(60))),
        reader_(stub->WatchDrain(context_.get(), v1::WatchDrainRequest())) {}
  std::optional<v1::DrainEvent> Next() {
    v1::DrainEvent event;
    if (!reader_->Read(&event)) return std::nullopt;
    return event;
  }
  grpc::Status Finish() { return reader_->Finish(); }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReader<v1::DrainEvent>> reader_;
};

TEST_F(LifecycleProcessTest, SigtermUnderLoadLosesNothingUntilTheAppReports) {
  StartSidecar({{"STATESIDE_DRAIN_TIMEOUT", "20s"},
                {"STATESIDE_SHUTDOWN_TIMEOUT", "30s"}});
  Watcher watcher(lifecycle_.get());
  auto first = watcher.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->state(), v1::DRAIN_STATE_SERVING);

  std::atomic<bool> stop{false}, reported{false};
  std::atomic<int> ok{0}, failed_before_report{0};
  std::thread load([&] {
    while (!stop.load()) {
      if (CreateOne()) {
        ok.fetch_add(1);
      } else if (!reported.load()) {
        failed_before_report.fetch_add(1);
      }
    }
  });
  ASSERT_TRUE(testing::WaitFor([&] { return ok.load() >= 20; }, absl::Seconds(10)));

  const absl::Time signalled = absl::Now();
  process_->Signal(SIGTERM);
  absl::Time not_ready = absl::InfiniteFuture();
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        if (HttpStatus("/health/ready") != 503) return false;
        not_ready = absl::Now();
        return true;
      },
      absl::Seconds(2)));
  EXPECT_LE(not_ready - signalled, absl::Milliseconds(100));
  EXPECT_EQ(HttpStatus("/health/live"), 200);

  auto draining = watcher.Next();
  ASSERT_TRUE(draining.has_value());
  EXPECT_EQ(draining->state(), v1::DRAIN_STATE_DRAINING);
  EXPECT_GT(draining->deadline().seconds(), absl::ToUnixSeconds(signalled));
  // The app's drain: session calls keep working meanwhile.
  const int at_draining = ok.load();
  ASSERT_TRUE(testing::WaitFor([&] { return ok.load() >= at_draining + 50; },
                               absl::Seconds(10)));
  EXPECT_EQ(HttpStatus("/health/live"), 200);
  EXPECT_EQ(HttpStatus("/health/ready"), 503);

  reported.store(true);
  v1::ReportDrainedResponse response;
  ASSERT_TRUE(lifecycle_->ReportDrained(Context().get(), {}, &response).ok());
  auto drained = watcher.Next();
  ASSERT_TRUE(drained.has_value());
  EXPECT_EQ(drained->state(), v1::DRAIN_STATE_DRAINED);
  EXPECT_FALSE(watcher.Next().has_value());
  EXPECT_TRUE(watcher.Finish().ok());

  EXPECT_EQ(WaitExit(), 0) << process_->ReadLog();
  stop.store(true);
  load.join();
  EXPECT_EQ(failed_before_report.load(), 0);
  EXPECT_FALSE(Exists(socket_));
}

TEST_F(LifecycleProcessTest, WatcherThatNeverReportsEndsAtTheDrainTimeout) {
  StartSidecar({{"STATESIDE_DRAIN_TIMEOUT", "1s"},
                {"STATESIDE_SHUTDOWN_TIMEOUT", "10s"}});
  Watcher watcher(lifecycle_.get());
  ASSERT_EQ(watcher.Next()->state(), v1::DRAIN_STATE_SERVING);
  const absl::Time signalled = absl::Now();
  process_->Signal(SIGTERM);
  auto draining = watcher.Next();
  ASSERT_TRUE(draining.has_value());
  EXPECT_EQ(draining->state(), v1::DRAIN_STATE_DRAINING);
  auto drained = watcher.Next();
  ASSERT_TRUE(drained.has_value());
  EXPECT_EQ(drained->state(), v1::DRAIN_STATE_DRAINED);
  EXPECT_GE(absl::Now() - signalled, absl::Seconds(1));
  EXPECT_EQ(WaitExit(), 0) << process_->ReadLog();
  EXPECT_LT(absl::Now() - signalled, absl::Seconds(8));
  EXPECT_THAT(process_->ReadLog(), ::testing::HasSubstr("app drain timed out"));
  EXPECT_FALSE(Exists(socket_));
}

TEST_F(LifecycleProcessTest, WithNoWatcherExitsAfterThePrestopDelay) {
  StartSidecar({{"STATESIDE_PRESTOP_DELAY", "500ms"},
                {"STATESIDE_DRAIN_TIMEOUT", "20s"},
                {"STATESIDE_SHUTDOWN_TIMEOUT", "30s"}});
  const absl::Time signalled = absl::Now();
  process_->Signal(SIGTERM);
  EXPECT_TRUE(testing::WaitFor([&] { return HttpStatus("/health/ready") == 503; },
                               absl::Seconds(1)));
  // During the pre-stop delay everything still serves.
  EXPECT_TRUE(CreateOne());
  EXPECT_EQ(WaitExit(), 0) << process_->ReadLog();
  const absl::Duration took = absl::Now() - signalled;
  EXPECT_GE(took, absl::Milliseconds(500));
  EXPECT_LT(took, absl::Seconds(3)) << process_->ReadLog();
}

TEST_F(LifecycleProcessTest, SecondSignalDuringTheDrainShutsDownFast) {
  StartSidecar({{"STATESIDE_DRAIN_TIMEOUT", "60s"},
                {"STATESIDE_SHUTDOWN_TIMEOUT", "90s"}});
  Watcher watcher(lifecycle_.get());
  ASSERT_EQ(watcher.Next()->state(), v1::DRAIN_STATE_SERVING);
  process_->Signal(SIGTERM);
  ASSERT_EQ(watcher.Next()->state(), v1::DRAIN_STATE_DRAINING);
  const absl::Time second = absl::Now();
  process_->Signal(SIGTERM);
  auto drained = watcher.Next();
  ASSERT_TRUE(drained.has_value());
  EXPECT_EQ(drained->state(), v1::DRAIN_STATE_DRAINED);
  EXPECT_EQ(WaitExit(absl::Seconds(10)), 0) << process_->ReadLog();
  EXPECT_LT(absl::Now() - second, absl::Seconds(5));
  EXPECT_FALSE(Exists(socket_));
}

TEST_F(LifecycleProcessTest, PostDrainStartsTheSameSequence) {
  StartSidecar({{"STATESIDE_DRAIN_TIMEOUT", "20s"},
                {"STATESIDE_SHUTDOWN_TIMEOUT", "30s"}});
  Watcher watcher(lifecycle_.get());
  ASSERT_EQ(watcher.Next()->state(), v1::DRAIN_STATE_SERVING);
  auto response = Http("/drain", "POST");
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 202);
  EXPECT_EQ(response->Header("x-instance-id"), "lifecycle-test");
  EXPECT_EQ(HttpStatus("/health/ready"), 503);
  ASSERT_EQ(watcher.Next()->state(), v1::DRAIN_STATE_DRAINING);
  EXPECT_TRUE(CreateOne());
  v1::ReportDrainedResponse reported;
  ASSERT_TRUE(lifecycle_->ReportDrained(Context().get(), {}, &reported).ok());
  EXPECT_EQ(watcher.Next()->state(), v1::DRAIN_STATE_DRAINED);
  EXPECT_EQ(WaitExit(), 0) << process_->ReadLog();
}

TEST_F(LifecycleProcessTest, DrainRpcStartsTheSameSequence) {
  StartSidecar({{"STATESIDE_DRAIN_TIMEOUT", "20s"},
                {"STATESIDE_SHUTDOWN_TIMEOUT", "30s"}});
  Watcher watcher(lifecycle_.get());
  ASSERT_EQ(watcher.Next()->state(), v1::DRAIN_STATE_SERVING);
  v1::DrainResponse drained;
  ASSERT_TRUE(lifecycle_->Drain(Context().get(), {}, &drained).ok());
  EXPECT_EQ(HttpStatus("/health/ready"), 503);
  ASSERT_EQ(watcher.Next()->state(), v1::DRAIN_STATE_DRAINING);
  v1::GetInstanceResponse instance;
  ASSERT_TRUE(lifecycle_->GetInstance(Context().get(), {}, &instance).ok());
  EXPECT_EQ(instance.instance().drain_state(), v1::DRAIN_STATE_DRAINING);
  EXPECT_FALSE(instance.instance().ready());
  EXPECT_EQ(instance.instance().admin_address(),
            absl::StrCat("127.0.0.1:", admin_port_));
  v1::ReportDrainedResponse reported;
  ASSERT_TRUE(lifecycle_->ReportDrained(Context().get(), {}, &reported).ok());
  EXPECT_EQ(watcher.Next()->state(), v1::DRAIN_STATE_DRAINED);
  EXPECT_EQ(WaitExit(), 0) << process_->ReadLog();
}

// The native-sidecar order: the kubelet runs the sidecar's preStop hook
// (`statesidectl drain --no-follow`) while it sends SIGTERM to an app that
// ignores it; the app drains on DRAINING alone; the sidecar, drained, stays
// up until its own SIGTERM (sent once the app has exited), then exits 0 at
// once.
TEST_F(LifecycleProcessTest, PreStopDrainOfAnAppIgnoringSigtermHoldsUntilTheSidecarsSigterm) {
  // Long enough that starting statesidectl (under a sanitizer, on a loaded
  // machine: over 2 s seen) cannot use up the delay the hook must beat.
  constexpr absl::Duration kPrestop = absl::Seconds(5);
  StartSidecar({{"STATESIDE_PRESTOP_DELAY", "5s"},
                {"STATESIDE_DRAIN_TIMEOUT", "15s"},
                {"STATESIDE_SHUTDOWN_TIMEOUT", "30s"}});
  v1::GetInstanceResponse instance;
  ASSERT_TRUE(lifecycle_->GetInstance(Context().get(), {}, &instance).ok());
  EXPECT_EQ(instance.instance().prestop_delay().seconds(), 5);  // the app's bound

  auto app = testing::StartDrainTestApp(socket_, dir_.File("app.log"),
                                        /*ignore_sigterm=*/true);
  ASSERT_TRUE(app.ok()) << app.status();

  // t=0: SIGTERM to the app (ignored) and the sidecar's preStop hook.
  app->Signal(SIGTERM);
  const absl::Time hook = absl::Now();
  testing::RunResult run = testing::Run(
      {testing::BinPath("statesidectl"), "--socket", socket_, "drain", "--no-follow"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_LT(absl::Now() - hook, kPrestop) << "the hook returns before the drain is told";
  EXPECT_EQ(HttpStatus("/health/ready"), 503);

  // The app gets DRAINING, finishes its in-flight calls, reports, exits 0.
  ASSERT_EQ(app->Wait(absl::Seconds(30)), 0) << app->ReadLog();
  const std::string app_log = app->ReadLog();
  EXPECT_THAT(app_log, ::testing::HasSubstr("failed=0 first_error=OK reported=OK"));
  EXPECT_GE(absl::Now() - hook, kPrestop);  // the pre-stop delay came first

  // The sidecar holds: drained, shut down, but alive until its signal.
  ASSERT_TRUE(WaitForHolding()) << process_->ReadLog();
  EXPECT_TRUE(process_->running());
  EXPECT_EQ(HttpStatus("/health/live"), 200);
  EXPECT_EQ(HttpStatus("/health/ready"), 503);
  EXPECT_FALSE(CreateOne()) << "serving nothing new";
  const std::string held_log = process_->ReadLog();
  EXPECT_THAT(held_log, ::testing::HasSubstr("app drain finished"));
  EXPECT_THAT(held_log, ::testing::Not(::testing::HasSubstr("app drain timed out")));

  // The kubelet's SIGTERM, after the app exited: exit 0, with no second
  // pre-stop delay.
  const absl::Time signalled = absl::Now();
  process_->Signal(SIGTERM);
  EXPECT_EQ(WaitExit(), 0) << process_->ReadLog();
  EXPECT_LT(absl::Now() - signalled, kPrestop);
  EXPECT_FALSE(Exists(socket_));
}

TEST_F(LifecycleProcessTest, AHeldDrainWithoutItsSigtermEndsAtTheShutdownTimeoutWithExitOne) {
  StartSidecar({{"STATESIDE_DRAIN_TIMEOUT", "1s"},
                {"STATESIDE_SHUTDOWN_TIMEOUT", "2s"}});
  const absl::Time hook = absl::Now();
  testing::RunResult run = testing::Run(
      {testing::BinPath("statesidectl"), "--socket", socket_, "drain", "--no-follow"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  ASSERT_TRUE(WaitForHolding()) << process_->ReadLog();
  EXPECT_EQ(WaitExit(), 1) << process_->ReadLog();
  EXPECT_GE(absl::Now() - hook, absl::Seconds(2));
  EXPECT_THAT(process_->ReadLog(), ::testing::HasSubstr("no SIGTERM came"));
}

TEST_F(LifecycleProcessTest, MetricsPassPromtoolAndCountCreates) {
  StartSidecar();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(CreateOne());
  v1::GetSessionRequest missing;
  missing.mutable_key()->set_id("no-such-session");
  v1::GetSessionResponse ignored;
  (void)sessions_->Get(Context().get(), missing, &ignored);
  auto before = Http("/metrics");
  ASSERT_TRUE(before.has_value());
  ASSERT_EQ(before->status, 200);
  EXPECT_THAT(before->Header("content-type"), ::testing::HasSubstr("version=0.0.4"));
  const testing::RunResult check =
      testing::Run({"promtool", "check", "metrics"}, {}, absl::Seconds(30), before->body);
  EXPECT_EQ(check.exit_status, 0) << check.out << check.err;

  const std::vector<std::string> create_ok = {"method=\"SessionService/Create\"",
                                              "code=\"OK\""};
  const double created0 =
      MetricValue(before->body, "stateside_sessions_created_total").value_or(-1);
  const double rpcs0 =
      MetricValue(before->body, "stateside_rpc_requests_total", create_ok).value_or(-1);
  EXPECT_EQ(created0, 5);
  EXPECT_EQ(rpcs0, 5);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(CreateOne());
  auto after = Http("/metrics");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(MetricValue(after->body, "stateside_sessions_created_total"), created0 + 10);
  EXPECT_EQ(MetricValue(after->body, "stateside_rpc_requests_total", create_ok),
            rpcs0 + 10);
  EXPECT_EQ(MetricValue(after->body, "stateside_rpc_in_flight"), 0);
  EXPECT_EQ(MetricValue(after->body, "stateside_drain_state", {"state=\"serving\""}), 1);
}

TEST_F(LifecycleProcessTest, HostileHttpNeverBlocksTheProbes) {
  StartSidecar();
  std::vector<RawConnection> hostile;
  for (int i = 0; i < 4; ++i) {  // slowloris: a request that never ends
    auto c = RawConnection::Connect(admin_port_);
    ASSERT_TRUE(c.ok());
    c->Send("GET /health/ready HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    hostile.push_back(*std::move(c));
  }
  for (int i = 0; i < 2; ++i) {  // not HTTP at all
    auto c = RawConnection::Connect(admin_port_);
    ASSERT_TRUE(c.ok());
    c->Send(std::string("\x16\x03\x01\x00\xff garbage\r\n\r\n", 18));
    hostile.push_back(*std::move(c));
  }
  {
    auto c = RawConnection::Connect(admin_port_);  // huge header
    ASSERT_TRUE(c.ok());
    c->Send("GET / HTTP/1.1\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
    hostile.push_back(*std::move(c));
  }
  for (int i = 0; i < 10; ++i) {
    const absl::Time start = absl::Now();
    auto ready = Http("/health/ready", "GET", absl::Seconds(1));
    ASSERT_TRUE(ready.has_value());
    EXPECT_EQ(ready->status, 200);
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  }
  EXPECT_EQ(HttpStatus("/nope"), 404);
  EXPECT_EQ(HttpStatus("/health/ready", "DELETE"), 405);
  process_->Signal(SIGTERM);
  EXPECT_EQ(WaitExit(), 0) << process_->ReadLog();
}

}  // namespace
}  // namespace stateside

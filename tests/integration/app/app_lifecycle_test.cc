// radar-app as a process: settings errors, the drain on SIGTERM (forwarded
// to the sidecar; both exit 0), a second signal, the sidecar going away,
// test hooks being off by default, and slow requests holding no thread.
// Each test runs its own processes.
#include <signal.h>

#include <algorithm>
#include <string>
#include <vector>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "tests/integration/app/app_pod.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;
using Cookie = std::pair<std::string, std::string>;

class RadarAppLifecycleTest : public ::testing::Test {
 protected:
  void StartPod(AppPodOptions options) {
    auto pod = AppPod::Start(std::move(options));
    ASSERT_TRUE(pod.ok()) << pod.status();
    pod_ = *std::move(pod);
  }
  void TearDown() override {
    if (HasFailure() && pod_ != nullptr) ADD_FAILURE() << pod_->Logs();
  }

  Cookie Login(const std::string& user) {
    auto cookie = pod_->Login(user);
    EXPECT_TRUE(cookie.ok()) << cookie.status();
    return cookie.ok() ? *cookie : Cookie{};
  }

  std::unique_ptr<WebSocketClient> OpenSocket(const Cookie& cookie) {
    auto ws = WebSocketClient::Connect(pod_->port(), "/ws", {cookie});
    EXPECT_TRUE(ws.ok()) << ws.status();
    if (!ws.ok()) return nullptr;
    auto hello = (*ws)->ReadUntil("\"hello\"", absl::Seconds(10));
    EXPECT_TRUE(hello.ok()) << hello.status();
    return *std::move(ws);
  }

  // Waits until a POST /cart of `cookie` has read (touched) its session, so
  // that the request is known to be in flight.
  void WaitUntilTouched(const Cookie& cookie, absl::Time after) {
    ClientOptions options;
    options.socket_path = pod_->socket_path();
    auto client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    const SessionRef ref = SessionRef::Cookie(cookie.second.substr(cookie.second.find('=') + 1));
    ASSERT_TRUE(WaitFor([&] {
      auto session = (*client)->GetSession(ref, /*touch=*/false);
      return session.ok() && session->info.last_access > after;
    }));
  }

  std::unique_ptr<AppPod> pod_;
};

TEST_F(RadarAppLifecycleTest, BadSettingExitsWithStatus2NamingIt) {
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"--threads=abc"}, {}, "RADAR_THREADS (--threads)"},
      {{"--threads=0"}, {}, "RADAR_THREADS (--threads)"},
      {{}, {{"RADAR_MAX_BODY_BYTES", "-1"}}, "RADAR_MAX_BODY_BYTES (--max-body-bytes)"},
      {{"--listen=nowhere"}, {}, "RADAR_LISTEN (--listen)"},
      {{"--listen=127.0.0.1:70000"}, {}, "RADAR_LISTEN (--listen)"},
      {{}, {{"RADAR_COOKIE_NAME", "bad;name"}}, "RADAR_COOKIE_NAME (--cookie-name)"},
      {{"--cookie-secure=maybe"}, {}, "RADAR_COOKIE_SECURE (--cookie-secure)"},
      {{}, {{"RADAR_TEST_HOOKS", "perhaps"}}, "RADAR_TEST_HOOKS (--test-hooks)"},
      {{}, {{"STATESIDE_LOG_FORMAT", "xml"}}, "STATESIDE_LOG_FORMAT (--log-format)"},
      {{"--log-level=loud"}, {}, "STATESIDE_LOG_LEVEL (--log-level)"},
      {{"--ws-close-spread-ms=-5"}, {}, "RADAR_WS_CLOSE_SPREAD_MS (--ws-close-spread-ms)"},
      {{"--max-queued-requests=4097"}, {}, "RADAR_MAX_QUEUED_REQUESTS (--max-queued-requests)"},
      {{"--no-such-flag"}, {}, "--no-such-flag"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {BinPath("radar-app")};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    RunResult result = testing::Run(argv, c.env);
    EXPECT_EQ(result.exit_status, 2) << c.names << "\n" << result.err;
    EXPECT_THAT(result.err, StartsWith("radar-app: ")) << c.names;
    EXPECT_THAT(result.err, HasSubstr(c.names));
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  }
  RunResult help = testing::Run({BinPath("radar-app"), "--help"});
  EXPECT_EQ(help.exit_status, 0);
  EXPECT_THAT(help.out, HasSubstr("RADAR_MAX_BODY_BYTES"));
}

TEST_F(RadarAppLifecycleTest, SigtermDrainsTheAppAndItsSidecarWhichBothExit0) {
  StartPod(PodOptions("drain-pod", {"--test-hooks", "--drain-idle-grace-ms=3000"}));
  const Cookie cookie = Login("drainer");
  auto ws = OpenSocket(cookie);
  ASSERT_NE(ws, nullptr);
  // Two kept-alive connections, idle when the drain starts: a proxy sends one
  // more request on the first during the grace; the second stays unused.
  auto idle = HttpConnection::Open(pod_->port());
  auto unused = HttpConnection::Open(pod_->port());
  ASSERT_TRUE(idle.ok());
  ASSERT_TRUE(unused.ok());
  HttpRequest health;
  health.target = "/healthz";
  ASSERT_TRUE((*idle)->Send(health).ok());  // now idle, kept alive
  ASSERT_TRUE((*unused)->Send(health).ok());

  // A slow request is in flight when the drain starts: the drain waits for it.
  absl::StatusOr<HttpResponse> slow;
  const absl::Time before = absl::Now();
  std::thread adder([&] {
    slow = pod_->Call("POST", "/cart", json{{"item", "in-flight"}}.dump(),
                      {cookie, {"X-Radar-Delay-Ms", "4000"}}, absl::Seconds(30));
  });
  WaitUntilTouched(cookie, before);

  pod_->app().Signal(SIGTERM);
  auto closed = ws->Read(absl::Seconds(20));
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_TRUE(closed->closed) << closed->text;
  EXPECT_EQ(closed->close_code, 1012);  // service restart: reconnect elsewhere
  // The listener is closed: new connections are refused ...
  EXPECT_FALSE(pod_->Call("GET", "/healthz", "", {}, absl::Seconds(2)).ok());
  // ... a request on a kept-alive connection during the grace is answered
  // (not cut off: a proxy could not retry a POST) and ends the connection ...
  absl::StatusOr<HttpResponse> late = (*idle)->Send(health, absl::Seconds(2));
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->status, 503) << late->body;  // /healthz says draining
  EXPECT_FALSE(late->keep_alive);
  // ... and after the grace the unused one is closed ...
  ASSERT_TRUE(WaitFor(
      [&] { return absl::StrContains(pod_->app().ReadLog(), "closing idle keep-alive"); },
      absl::Seconds(10)));
  EXPECT_FALSE((*unused)->Send(health, absl::Seconds(2)).ok());
  // ... while the app still waits for the slow request.
  EXPECT_TRUE(pod_->app().running());
  adder.join();
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_EQ(slow->status, 200) << slow->body;
  EXPECT_FALSE(slow->keep_alive);  // Connection: close while draining

  EXPECT_EQ(pod_->app().Wait(absl::Seconds(20)), 0);
  // The sidecar drained because the app forwarded the signal, and was told.
  EXPECT_EQ(pod_->sidecar().Wait(absl::Seconds(20)), 0);
  EXPECT_THAT(pod_->app().ReadLog(), HasSubstr("asked the sidecar to drain"));
  EXPECT_THAT(pod_->app().ReadLog(), HasSubstr("drained; reported to the sidecar"));
}

TEST_F(RadarAppLifecycleTest, WebSocketsCloseSpreadOverTheDrainWindow) {
  // 2 s of spread, well under half the sidecar's drain timeout: the whole
  // window is used.
  StartPod(PodOptions("spread-pod", {"--ws-close-spread-ms=2000"}));
  constexpr int kSockets = 8;
  std::vector<std::unique_ptr<WebSocketClient>> sockets;
  for (int i = 0; i < kSockets; ++i) {
    sockets.push_back(OpenSocket(Login(absl::StrCat("spread-", i))));
    ASSERT_NE(sockets.back(), nullptr);
  }
  std::vector<absl::Time> closed_at(kSockets, absl::InfiniteFuture());
  std::vector<int> close_codes(kSockets, 0);
  std::vector<std::thread> readers;
  for (int i = 0; i < kSockets; ++i) {
    readers.emplace_back([&, i] {
      for (;;) {
        auto message = sockets[i]->Read(absl::Seconds(20));
        if (!message.ok()) return;
        if (message->closed) {
          closed_at[i] = absl::Now();
          close_codes[i] = message->close_code;
          return;
        }
      }
    });
  }
  pod_->app().Signal(SIGTERM);
  for (std::thread& t : readers) t.join();
  for (int i = 0; i < kSockets; ++i) EXPECT_EQ(close_codes[i], 1012) << "socket " << i;
  const auto [first, last] = std::minmax_element(closed_at.begin(), closed_at.end());
  ASSERT_NE(*last, absl::InfiniteFuture());
  // Evenly spread, the last close comes 7/8 of the window after the first;
  // all at once, within milliseconds.
  EXPECT_GE(*last - *first, absl::Seconds(1)) << "closes not spread";
  EXPECT_LT(*last - *first, absl::Seconds(5));
  EXPECT_EQ(pod_->app().Wait(absl::Seconds(20)), 0);
  EXPECT_EQ(pod_->sidecar().Wait(absl::Seconds(20)), 0);
}

TEST_F(RadarAppLifecycleTest, SecondSignalExitsAtOnceWithStatus1) {
  StartPod(PodOptions("impatient-pod", {"--test-hooks"}));
  const Cookie cookie = Login("impatient");
  auto ws = OpenSocket(cookie);
  ASSERT_NE(ws, nullptr);
  const absl::Time before = absl::Now();
  std::thread adder([&] {
    (void)pod_->Call("POST", "/cart", json{{"item", "never"}}.dump(),
                     {cookie, {"X-Radar-Delay-Ms", "10000"}}, absl::Seconds(30));
  });
  WaitUntilTouched(cookie, before);
  pod_->app().Signal(SIGTERM);
  auto closed = ws->Read(absl::Seconds(20));  // the drain has begun
  ASSERT_TRUE(closed.ok() && closed->closed);
  const absl::Time second = absl::Now();
  pod_->app().Signal(SIGTERM);
  EXPECT_EQ(pod_->app().Wait(absl::Seconds(5)), 1);
  EXPECT_LT(absl::Now() - second, absl::Seconds(5));
  adder.join();
}

TEST_F(RadarAppLifecycleTest, DrainsOnItsOwnWhenTheSidecarIsGone) {
  StartPod(PodOptions("orphan-pod"));
  auto ws = OpenSocket(Login("orphan"));
  ASSERT_NE(ws, nullptr);
  pod_->sidecar().Kill();
  pod_->app().Signal(SIGTERM);
  auto closed = ws->Read(absl::Seconds(30));
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_TRUE(closed->closed);
  EXPECT_EQ(closed->close_code, 1012);
  EXPECT_EQ(pod_->app().Wait(absl::Seconds(30)), 0);
  EXPECT_THAT(pod_->app().ReadLog(), HasSubstr("draining on our own"));
}

// RADAR_FORWARD_SIGTERM=false (a Kubernetes native-sidecar pod): a SIGTERM
// to the app alone — its container restarted, the pod not terminating —
// leaves the sidecar serving; the app waits the pre-stop delay + 5 s for a
// DRAINING that does not come, then drains on its own and exits 0.
TEST_F(RadarAppLifecycleTest, WithoutForwardingASigtermToTheAppAloneDoesNotDrainThePod) {
  StartPod(PodOptions("restarted-app-pod", {}, {{"RADAR_FORWARD_SIGTERM", "false"}}));
  auto ws = OpenSocket(Login("restarted"));
  ASSERT_NE(ws, nullptr);
  const absl::Time signalled = absl::Now();
  pod_->app().Signal(SIGTERM);
  EXPECT_EQ(pod_->app().Wait(absl::Seconds(20)), 0);
  EXPECT_GE(absl::Now() - signalled, absl::Seconds(5));  // prestop 0 s + 5 s
  EXPECT_THAT(pod_->app().ReadLog(), HasSubstr("no DRAINING from the sidecar after a signal"));
  EXPECT_THAT(pod_->app().ReadLog(), ::testing::Not(HasSubstr("asked the sidecar to drain")));
  ClientOptions options;
  options.socket_path = pod_->socket_path();
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  auto instance = (*client)->GetInstance();
  ASSERT_TRUE(instance.ok()) << instance.status();
  EXPECT_EQ(instance->drain_state, DrainState::kServing);
  EXPECT_TRUE(instance->ready);
  EXPECT_TRUE(pod_->sidecar().running());
}

TEST_F(RadarAppLifecycleTest, RealtimeSurvivesASidecarRestart) {
  StartPod(PodOptions("phoenix-pod"));
  const Cookie cookie = Login("phoenix");
  auto ws = OpenSocket(cookie);
  ASSERT_NE(ws, nullptr);
  ASSERT_TRUE(ws->Send(R"({"join":"ashes"})").ok());
  ASSERT_TRUE(ws->ReadUntil("\"joined\"").ok());

  pod_->sidecar().Kill();
  ASSERT_TRUE(pod_->RestartSidecar().ok()) << pod_->Logs();
  // The app subscribes again and re-registers the open WebSocket (room included).
  ASSERT_TRUE(WaitFor(
      [&] { return absl::StrContains(pod_->app().ReadLog(), "re-registered 1 connection(s)"); },
      absl::Seconds(20)));
  // The memory store forgot the session: log in again, then broadcast.
  const Cookie again = Login("phoenix");
  auto response = pod_->Call("POST", "/broadcast", R"({"room":"ashes","msg":"reborn"})", {again});
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 200) << response->body;
  auto got = ws->ReadUntil("reborn", absl::Seconds(10));
  EXPECT_TRUE(got.ok()) << got.status();
}

TEST_F(RadarAppLifecycleTest, TestHookHeaderIsIgnoredWhenHooksAreOff) {
  // Settings come from the environment too, and a flag wins over its
  // variable: hooks end up off, the cookie name is the variable's.
  StartPod(PodOptions("plain-pod", {"--test-hooks=false"},
                      {{"RADAR_TEST_HOOKS", "true"}, {"RADAR_COOKIE_NAME", "env_sid"}}));
  EXPECT_THAT(pod_->app().ReadLog(), HasSubstr("test hooks off"));
  const Cookie cookie = Login("plain");
  EXPECT_THAT(cookie.second, StartsWith("env_sid="));
  // With hooks on, the first would sleep 10 s (past the 5 s timeout) and the
  // second would be a 400.
  for (const char* value : {"10000", "not-a-number"}) {
    auto response = pod_->Call("POST", "/cart", json{{"item", value}}.dump(),
                               {cookie, {"X-Radar-Delay-Ms", value}}, absl::Seconds(5));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200) << response->body;
  }
}

// The HTTP routes chain the client's Async forms and the test hook waits on
// a timer: with one I/O thread, carts held up by the hook keep no other
// request waiting, and do not wait for one another.
TEST_F(RadarAppLifecycleTest, SlowRequestsHoldNoThread) {
  StartPod(PodOptions("no-hop-pod", {"--test-hooks", "--threads=1"}));
  const Cookie cookie = Login("no-hop");
  constexpr int kSlow = 3;
  const absl::Duration kDelay = absl::Seconds(3);
  std::vector<absl::StatusOr<HttpResponse>> slow(kSlow);
  std::vector<std::thread> adders;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kSlow; ++i) {
    adders.emplace_back([&, i] {
      slow[i] = pod_->Call("POST", "/cart", json{{"item", absl::StrCat("slow-", i)}}.dump(),
                           {cookie, {"X-Radar-Delay-Ms", "3000"}}, absl::Seconds(30));
    });
  }
  WaitUntilTouched(cookie, start);
  // While they wait: each of these would queue behind a blocked thread.
  const absl::Time fast_start = absl::Now();
  auto fast = pod_->Call("POST", "/cart", json{{"item", "fast"}}.dump(), {cookie},
                         absl::Seconds(10));
  auto other = pod_->Login("no-hop-2");
  auto me = pod_->Call("GET", "/me", "", {cookie}, absl::Seconds(10));
  const absl::Duration fast_took = absl::Now() - fast_start;
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_EQ(fast->status, 200) << fast->body;
  EXPECT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(me.ok()) << me.status();
  EXPECT_EQ(me->status, 200) << me->body;
  EXPECT_LT(fast_took, kDelay - absl::Milliseconds(500));
  for (std::thread& adder : adders) adder.join();
  for (int i = 0; i < kSlow; ++i) {
    ASSERT_TRUE(slow[i].ok()) << slow[i].status();
    EXPECT_EQ(slow[i]->status, 200) << slow[i]->body;
  }
  // Side by side, not one after the other.
  EXPECT_LT(absl::Now() - start, 2 * kDelay);
}

}  // namespace
}  // namespace stateside::testing

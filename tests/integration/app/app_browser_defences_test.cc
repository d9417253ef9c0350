// radar-app's browser defences, against real processes:
// JSON-only POSTs (415), public origins on every POST and on the WebSocket
// upgrade (403), the __Host- Secure cookie by default, sockets closed with
// their session, the connection and queue caps (503), and the page's
// security headers.
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "tests/integration/app/app_pod.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;
using Cookie = std::pair<std::string, std::string>;

constexpr char kEvil[] = "http://evil.example";

class BrowserDefencesTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && pod_ != nullptr) ADD_FAILURE() << pod_->Logs();
  }

  void StartPod(AppPodOptions options = PodOptions("defences")) {
    auto pod = AppPod::Start(std::move(options));
    ASSERT_TRUE(pod.ok()) << pod.status();
    pod_ = *std::move(pod);
  }

  HttpResponse Call(std::string method, std::string target, std::string body = "",
                    Headers headers = {}) {
    auto response = pod_->Call(std::move(method), std::move(target), std::move(body),
                               std::move(headers));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse{};
  }

  Cookie Login(const std::string& user) {
    auto cookie = pod_->Login(user);
    EXPECT_TRUE(cookie.ok()) << cookie.status();
    return cookie.ok() ? *cookie : Cookie{"Cookie", ""};
  }

  // An open socket past its hello, or null.
  std::unique_ptr<WebSocketClient> Open(const Cookie& cookie, Headers extra = {}) {
    extra.push_back(cookie);
    auto ws = WebSocketClient::Connect(pod_->port(), "/ws", extra);
    EXPECT_TRUE(ws.ok()) << ws.status();
    if (!ws.ok()) return nullptr;
    auto hello = (*ws)->ReadUntil("\"hello\"", absl::Seconds(10));
    EXPECT_TRUE(hello.ok()) << hello.status();
    return hello.ok() ? *std::move(ws) : nullptr;
  }

  // The socket is still served: a join is acknowledged.
  static void ExpectServed(WebSocketClient& ws, const std::string& room) {
    ASSERT_TRUE(ws.Send(json{{"join", room}}.dump()).ok());
    auto ack = ws.ReadUntil("\"joined\"", absl::Seconds(10));
    EXPECT_TRUE(ack.ok()) << ack.status();
  }

  // The server closes the socket with 1008 (skipping messages before it).
  static void ExpectClosed(WebSocketClient& ws, absl::Duration within = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + within;
    for (;;) {
      auto message = ws.Read(std::max(deadline - absl::Now(), absl::Milliseconds(1)));
      ASSERT_TRUE(message.ok()) << "not closed: " << message.status();
      if (message->closed) {
        EXPECT_EQ(message->close_code, 1008);
        return;
      }
    }
  }

  std::unique_ptr<AppPod> pod_;
};

TEST_F(BrowserDefencesTest, PostWithoutJsonContentTypeIs415) {
  StartPod();
  const Headers same = {{"Origin", pod_->origin()}};
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded",
                           "multipart/form-data; boundary=x"}) {
    Headers headers = same;
    headers.emplace_back("Content-Type", type);
    HttpResponse response = Call("POST", "/login", json{{"user", "typed"}}.dump(), headers);
    EXPECT_EQ(response.status, 415) << type << ": " << response.body;
    EXPECT_TRUE(response.SetCookies().empty());
  }
  // No Content-Type at all (a client library would add one).
  const std::string body = json{{"user", "untyped"}}.dump();
  const int fd = RawConnect(pod_->port(), absl::StrCat("POST /login HTTP/1.1\r\nHost: x\r\n",
                                                       "Content-Length: ", body.size(),
                                                       "\r\nConnection: close\r\n\r\n", body));
  ASSERT_GE(fd, 0);
  const std::string raw = RawRead(fd, absl::Seconds(10));
  close(fd);
  EXPECT_THAT(raw, ::testing::StartsWith("HTTP/1.1 415")) << raw;
  // The media type with a parameter is JSON.
  Headers json_utf8 = same;
  json_utf8.emplace_back("Content-Type", "Application/JSON; charset=utf-8");
  EXPECT_EQ(Call("POST", "/login", json{{"user", "typed"}}.dump(), json_utf8).status, 200);
}

TEST_F(BrowserDefencesTest, CrossOriginPostsAre403AndSameOriginOnesWork) {
  StartPod();
  for (const std::string& origin :
       {pod_->origin(), absl::StrCat("http://localhost:", pod_->port())}) {
    HttpResponse response = Call("POST", "/login", json{{"user", "local"}}.dump(),
                                 {{"Origin", origin}, {"Sec-Fetch-Site", "same-origin"}});
    EXPECT_EQ(response.status, 200) << origin << ": " << response.body;
  }
  HttpResponse login =
      Call("POST", "/login", json{{"user", "mallory"}}.dump(), {{"Origin", kEvil}});
  EXPECT_EQ(login.status, 403) << login.body;
  EXPECT_TRUE(login.SetCookies().empty());
  // A cross-site HTML form: urlencoded, from another origin.
  HttpResponse form = Call("POST", "/login", "user=mallory",
                           {{"Origin", kEvil},
                            {"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(form.status, 403) << form.body;
  EXPECT_EQ(Call("POST", "/login", json{{"user", "x"}}.dump(), {{"Origin", "null"}}).status, 403);
  // A victim's cookie rides along: still refused, the session lives on.
  const Cookie victim = Login("victim");
  EXPECT_EQ(Call("POST", "/cart", json{{"item", "x"}}.dump(), {victim, {"Origin", kEvil}}).status,
            403);
  EXPECT_EQ(Call("POST", "/logout", "", {victim, {"Origin", kEvil}}).status, 403);
  HttpResponse me = Call("GET", "/me", "", {victim});
  EXPECT_EQ(me.status, 200);
  EXPECT_EQ(Body(me)["cart"], json::array());
}

TEST_F(BrowserDefencesTest, PostWithoutOriginIsCheckedBySecFetchSite) {
  StartPod();
  for (const char* site : {"cross-site", "same-site"}) {
    HttpResponse response =
        Call("POST", "/login", json{{"user", "fetcher"}}.dump(), {{"Sec-Fetch-Site", site}});
    EXPECT_EQ(response.status, 403) << site;
  }
  EXPECT_EQ(Call("POST", "/login", json{{"user", "fetcher"}}.dump(),
                 {{"Sec-Fetch-Site", "same-origin"}})
                .status,
            200);
}

TEST_F(BrowserDefencesTest, ConfiguredPublicOriginsReplaceTheListenOrigin) {
  StartPod(PodOptions("origins", {},
                      {{"RADAR_PUBLIC_ORIGINS", "https://radar.example.com, https://b.example"}}));
  EXPECT_EQ(Call("POST", "/login", json{{"user", "a"}}.dump(),
                 {{"Origin", "https://radar.example.com"}})
                .status,
            200);
  EXPECT_EQ(Call("POST", "/login", json{{"user", "a"}}.dump(), {{"Origin", "https://b.example"}})
                .status,
            200);
  EXPECT_EQ(Call("POST", "/login", json{{"user", "a"}}.dump(), {{"Origin", pod_->origin()}})
                .status,
            403);
}

TEST_F(BrowserDefencesTest, CrossOriginWebSocketUpgradeIs403) {
  StartPod();
  const Cookie cookie = Login("socket-owner");
  auto refused = WebSocketClient::Connect(pod_->port(), "/ws", {cookie, {"Origin", kEvil}});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("403"));
  auto same = Open(cookie, {{"Origin", pod_->origin()}});
  ASSERT_NE(same, nullptr);
  ExpectServed(*same, "same-origin-room");
}

TEST_F(BrowserDefencesTest, CookieIsHostPrefixedAndSecureByDefault) {
  AppPodOptions options = PodOptions("secure-cookie");
  options.insecure_cookie = false;
  StartPod(options);
  HttpResponse login = Call("POST", "/login", json{{"user", "secure"}}.dump());
  ASSERT_EQ(login.status, 200) << login.body;
  ASSERT_EQ(login.SetCookies().size(), 1u);
  const std::string value = login.Cookie("__Host-radar_sid").value_or("");
  ASSERT_FALSE(value.empty());
  EXPECT_EQ(login.SetCookies()[0],
            "__Host-radar_sid=" + value + "; Path=/; HttpOnly; SameSite=Lax; Secure");
  HttpResponse logout = Call("POST", "/logout", "", {{"Cookie", "__Host-radar_sid=" + value}});
  ASSERT_EQ(logout.SetCookies().size(), 1u);
  EXPECT_EQ(logout.SetCookies()[0],
            "__Host-radar_sid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure");
}

TEST_F(BrowserDefencesTest, InsecureCookieSettingUsesAPlainName) {
  StartPod();  // RADAR_COOKIE_SECURE=false
  HttpResponse login = Call("POST", "/login", json{{"user", "plain"}}.dump());
  ASSERT_EQ(login.status, 200) << login.body;
  ASSERT_EQ(login.SetCookies().size(), 1u);
  const std::string value = login.Cookie("radar_sid").value_or("");
  ASSERT_FALSE(value.empty());
  EXPECT_EQ(login.SetCookies()[0], "radar_sid=" + value + "; Path=/; HttpOnly; SameSite=Lax");
  // A __Host- name without Secure would be dropped by browsers: refused.
  RunResult bad = testing::Run({BinPath("radar-app")},
                      {{"RADAR_COOKIE_SECURE", "false"}, {"RADAR_COOKIE_NAME", "__Host-x"}});
  EXPECT_EQ(bad.exit_status, 2) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("RADAR_COOKIE_NAME (--cookie-name)"));
}

TEST_F(BrowserDefencesTest, LogoutClosesThatSessionsSocketsAndEverywhereAllOfTheUsers) {
  StartPod();
  const Cookie first = Login("two-tabs");
  const Cookie second = Login("two-tabs");  // no cookie sent: another session
  const Cookie other = Login("bystander");
  auto first_a = Open(first);
  auto first_b = Open(first);
  auto second_a = Open(second);
  auto others = Open(other);
  ASSERT_TRUE(first_a && first_b && second_a && others);

  ASSERT_EQ(Call("POST", "/logout", "", {first}).status, 200);
  ExpectClosed(*first_a);
  ExpectClosed(*first_b);
  ExpectServed(*second_a, "after-logout");
  ExpectServed(*others, "after-logout");

  ASSERT_EQ(Call("POST", "/logout", json{{"everywhere", true}}.dump(), {second}).status, 200);
  ExpectClosed(*second_a);
  EXPECT_EQ(Call("GET", "/me", "", {second}).status, 401);
  ExpectServed(*others, "after-everywhere");
  EXPECT_EQ(Call("GET", "/me", "", {other}).status, 200);
}

TEST_F(BrowserDefencesTest, PeriodicCheckClosesSocketsOfASessionEndedElsewhere) {
  StartPod(PodOptions("recheck", {}, {{"RADAR_WS_SESSION_CHECK_MS", "200"}}));
  const Cookie cookie = Login("elsewhere");
  auto ws = Open(cookie);
  ASSERT_NE(ws, nullptr);
  // Another pod's logout, as this pod sees it: the session is just gone.
  ClientOptions options;
  options.socket_path = pod_->socket_path();
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  auto destroyed = (*client)->DestroySession(
      SessionRef::Cookie(cookie.second.substr(cookie.second.find('=') + 1)));
  ASSERT_TRUE(destroyed.ok() && *destroyed) << destroyed.status();
  ExpectClosed(*ws);
}

TEST_F(BrowserDefencesTest, ConnectionsBeyondTheCapAre503) {
  StartPod(PodOptions("capped", {}, {{"RADAR_MAX_CONNECTIONS", "2"}}));
  HttpRequest health;
  health.target = "/healthz";
  auto one = HttpConnection::Open(pod_->port());
  auto two = HttpConnection::Open(pod_->port());
  ASSERT_TRUE(one.ok() && two.ok());
  // Answered: both are counted now.
  ASSERT_EQ((*one)->Send(health)->status, 200);
  ASSERT_EQ((*two)->Send(health)->status, 200);
  auto third = HttpCall(pod_->port(), health);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->status, 503);
  EXPECT_EQ(third->Header("Retry-After"), "1");
  one->reset();  // frees a place
  EXPECT_TRUE(WaitFor([&] {
    auto again = HttpCall(pod_->port(), health);
    return again.ok() && again->status == 200;
  }));
}

// The sidecar's per-user caps reach the browser as 429 with JSON naming the
// cap.
TEST_F(BrowserDefencesTest, SidecarCapsPerUserAre429NamingTheCap) {
  AppPodOptions options = PodOptions("user-caps");
  options.sidecar_env["STATESIDE_MAX_SESSIONS_PER_USER"] = "2";
  options.sidecar_env["STATESIDE_PUBLISH_RATE_PER_USER"] = "1";
  options.sidecar_env["STATESIDE_PUBLISH_BURST_PER_USER"] = "2";
  StartPod(std::move(options));

  // Sessions: two logins of one user hold two sessions; a third is refused.
  const Cookie cookie = Login("greedy");
  Login("greedy");
  HttpResponse third = Call("POST", "/login", R"({"user":"greedy"})");
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_THAT(Body(third).value("error", ""), HasSubstr("STATESIDE_MAX_SESSIONS_PER_USER"));
  EXPECT_EQ(third.Header("Retry-After"), "1");

  // Publishes: two broadcasts pass (the burst), the third in a row is refused.
  auto ws = Open(cookie);
  ASSERT_NE(ws, nullptr);
  ASSERT_TRUE(ws->Send(R"({"join":"loud"})").ok());
  ASSERT_TRUE(ws->ReadUntil("\"joined\"", absl::Seconds(10)).ok());
  const std::string body = R"({"room":"loud","msg":"m"})";
  EXPECT_EQ(Call("POST", "/broadcast", body, {cookie}).status, 200);
  EXPECT_EQ(Call("POST", "/broadcast", body, {cookie}).status, 200);
  HttpResponse limited = Call("POST", "/broadcast", body, {cookie});
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_THAT(Body(limited).value("error", ""), HasSubstr("STATESIDE_PUBLISH_RATE_PER_USER"));
}

TEST_F(BrowserDefencesTest, QueuedRequestsBeyondTheCapAre503) {
  StartPod(PodOptions("queue", {"--test-hooks"}, {{"RADAR_MAX_QUEUED_REQUESTS", "1"}}));
  const Cookie cookie = Login("queued");
  ClientOptions options;
  options.socket_path = pod_->socket_path();
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  const SessionRef ref = SessionRef::Cookie(cookie.second.substr(cookie.second.find('=') + 1));
  auto before = (*client)->GetSession(ref, /*touch=*/false);
  ASSERT_TRUE(before.ok()) << before.status();
  absl::StatusOr<HttpResponse> slow;
  std::thread adder([&] {
    slow = pod_->Call("POST", "/cart", json{{"item", "slow"}}.dump(),
                      {cookie, {"X-Radar-Delay-Ms", "3000"}}, absl::Seconds(20));
  });
  // The slow add has touched the session: it holds the one queue place.
  EXPECT_TRUE(WaitFor([&] {
    auto now = (*client)->GetSession(ref, /*touch=*/false);
    return now.ok() && now->info.last_access > before->info.last_access;
  }));
  HttpResponse refused = Call("POST", "/cart", json{{"item", "fast"}}.dump(), {cookie});
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.Header("Retry-After"), "1");
  adder.join();
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_EQ(slow->status, 200) << slow->body;
  EXPECT_EQ(Call("POST", "/cart", json{{"item", "fast"}}.dump(), {cookie}).status, 200);
}

TEST_F(BrowserDefencesTest, PageCarriesCspNosniffAndFrameAncestorsAndSaysDemoOnly) {
  StartPod();
  HttpResponse page = Call("GET", "/");
  ASSERT_EQ(page.status, 200);
  const std::string csp = page.Header("Content-Security-Policy");
  EXPECT_THAT(csp, HasSubstr("frame-ancestors 'none'"));
  EXPECT_THAT(csp, HasSubstr("script-src 'self'"));
  EXPECT_THAT(csp, HasSubstr("default-src 'none'"));
  EXPECT_THAT(csp, Not(HasSubstr("unsafe-inline")));
  EXPECT_EQ(page.Header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(page.Header("X-Frame-Options"), "DENY");
  // No inline script or style: the CSP would block them.
  EXPECT_THAT(page.body, HasSubstr("<script src=\"/app.js\"></script>"));
  EXPECT_THAT(page.body, Not(HasSubstr("<script>")));
  EXPECT_THAT(page.body, Not(HasSubstr("<style")));
  EXPECT_THAT(page.body, HasSubstr("Demo only"));
  HttpResponse script = Call("GET", "/app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_THAT(script.Header("Content-Type"), HasSubstr("javascript"));
  EXPECT_THAT(script.body, HasSubstr("fetch("));
  EXPECT_EQ(script.Header("X-Content-Type-Options"), "nosniff");
  HttpResponse health = Call("GET", "/healthz");
  EXPECT_EQ(health.Header("X-Content-Type-Options"), "nosniff");
  EXPECT_THAT(health.Header("Content-Security-Policy"), HasSubstr("frame-ancestors 'none'"));
}

}  // namespace
}  // namespace stateside::testing

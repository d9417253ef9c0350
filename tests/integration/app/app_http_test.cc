// radar-app's HTTP contract, against a real sidecar and a real
// radar-app process shared by the suite (RadarAppTest).
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "tests/integration/app/app_pod.h"
#include "tests/integration/app/shared_pod_test.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using json = nlohmann::json;

TEST_F(RadarAppTest, LoginSetsHttpOnlyLaxCookieWithTheConfiguredName) {
  const std::string user = UniqueUser("alice");
  HttpResponse response = Call("POST", "/login", json{{"user", user}}.dump());
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Body(response), (json{{"user", user}, {"instance", pod().instance()}}));
  EXPECT_THAT(response.Header("Content-Type"), StartsWith("application/json"));
  const std::vector<std::string> cookies = response.SetCookies();
  ASSERT_EQ(cookies.size(), 1u);
  EXPECT_THAT(cookies[0], StartsWith(std::string(kCookieName) + "="));
  EXPECT_THAT(cookies[0], HasSubstr("; Path=/"));
  EXPECT_THAT(cookies[0], HasSubstr("; HttpOnly"));
  EXPECT_THAT(cookies[0], HasSubstr("; SameSite=Lax"));
  EXPECT_THAT(cookies[0], Not(HasSubstr("Secure")));  // not configured
  // The sidecar's signed value "id.signature", not the default name.
  EXPECT_THAT(response.Cookie(kCookieName).value_or(""), HasSubstr("."));
  EXPECT_FALSE(response.Cookie("radar_sid").has_value());
}

TEST_F(RadarAppTest, MeAnswersTheSessionsUser) {
  const std::string user = UniqueUser("me");
  const auto cookie = LoginAs(user);
  HttpResponse response = Call("GET", "/me", "", {cookie});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Body(response),
            (json{{"user", user}, {"cart", json::array()}, {"instance", pod().instance()}}));
}

TEST_F(RadarAppTest, MeWithoutOrWithAForgedCookieIs401) {
  const auto cookie = LoginAs(UniqueUser("forger"));
  const std::string value = cookie.second.substr(cookie.second.find('=') + 1);
  std::string tampered = value;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  const std::vector<Headers> cases = {
      {},
      {{"Cookie", std::string(kCookieName) + "=garbage"}},
      {{"Cookie", std::string(kCookieName) + "=" + tampered}},
      {{"Cookie", std::string(kCookieName) + "=" + std::string(300, 'x') + ".sig"}},
      {{"Cookie", "radar_sid=" + value}},  // the right value under the default name
  };
  for (const Headers& headers : cases) {
    HttpResponse response = Call("GET", "/me", "", headers);
    EXPECT_EQ(response.status, 401) << (headers.empty() ? "" : headers[0].second);
    EXPECT_EQ(Body(response), (json{{"error", "no valid session"}}));
    EXPECT_EQ(response.Header("X-Instance-Id"), pod().instance());
  }
}

TEST_F(RadarAppTest, CartAddWithAForgedOrUnusableCookieIs401AndWritesNothing) {
  const auto cookie = LoginAs(UniqueUser("cart-forger"));
  const std::string value = cookie.second.substr(cookie.second.find('=') + 1);
  std::string tampered = value;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  // The add is one update of the sidecar: NOT_FOUND (a forged or unknown
  // cookie) and the INVALID_ARGUMENT of a cookie it cannot use (longer than
  // its 512-byte key limit) both answer as a read would, without a write.
  const std::vector<std::string> values = {"garbage", tampered,
                                           std::string(300, 'x') + ".sig",
                                           value + std::string(600, 'x')};
  for (const std::string& bad : values) {
    HttpResponse response = Call("POST", "/cart", json{{"item", "stolen"}}.dump(),
                                 {{"Cookie", std::string(kCookieName) + "=" + bad}});
    EXPECT_EQ(response.status, 401) << bad.substr(0, 40);
    EXPECT_EQ(Body(response), (json{{"error", "no valid session"}}));
  }
  HttpResponse me = Call("GET", "/me", "", {cookie});
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(Body(me)["cart"], json::array());
}

TEST_F(RadarAppTest, CartAddsAreListedSorted) {
  const auto cookie = LoginAs(UniqueUser("cart"));
  for (const std::string item : {"pear", "apple", "a long item with spaces", "pear"}) {
    HttpResponse response = Call("POST", "/cart", json{{"item", item}}.dump(), {cookie});
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(Body(response), (json{{"item", item}, {"instance", pod().instance()}}));
  }
  // Items that cannot be an attribute name as they are (too long for
  // "cart:<item>", not ASCII) are kept too.
  const std::string long_item(128, 'z');
  const std::string unicode = "caf\xc3\xa9";
  for (const std::string& item : {long_item, unicode}) {
    EXPECT_EQ(Call("POST", "/cart", json{{"item", item}}.dump(), {cookie}).status, 200);
  }
  HttpResponse me = Call("GET", "/me", "", {cookie});
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(Body(me)["cart"],
            (json{"a long item with spaces", "apple", unicode, "pear", long_item}));
}

TEST_F(RadarAppTest, AFullCartIs400NamingTheLimitAndTheSessionLivesOn) {
  const auto cookie = LoginAs(UniqueUser("full"));
  // The sidecar's default STATESIDE_MAX_ATTRIBUTES is 64 per session.
  int added = 0;
  HttpResponse response;
  for (int i = 0; i < 100; ++i) {
    response = Call("POST", "/cart", json{{"item", absl::StrCat("item-", i)}}.dump(), {cookie});
    if (response.status != 200) break;
    ++added;
  }
  EXPECT_EQ(added, 64);
  EXPECT_EQ(response.status, 400) << response.body;
  EXPECT_THAT(Body(response).value("error", ""), HasSubstr("attributes"));
  HttpResponse me = Call("GET", "/me", "", {cookie});
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(Body(me)["cart"].size(), 64u);
}

TEST_F(RadarAppTest, FiftyConcurrentDistinctAddsAllSurvive) {
  const auto cookie = LoginAs(UniqueUser("crowd"));
  constexpr int kAdds = 50;
  std::vector<int> statuses(kAdds, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kAdds; ++i) {
    threads.emplace_back([&, i] {
      auto response = pod().Call("POST", "/cart",
                                 json{{"item", absl::StrCat("item-", i < 10 ? "0" : "", i)}}.dump(),
                                 {cookie}, absl::Seconds(30));
      statuses[i] = response.ok() ? response->status : -1;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kAdds; ++i) EXPECT_EQ(statuses[i], 200) << "add " << i;
  HttpResponse me = Call("GET", "/me", "", {cookie});
  ASSERT_EQ(me.status, 200);
  json expected = json::array();
  for (int i = 0; i < kAdds; ++i) expected.push_back(absl::StrCat("item-", i < 10 ? "0" : "", i));
  EXPECT_EQ(Body(me)["cart"], expected);
}

TEST_F(RadarAppTest, LogoutClearsTheCookieAndTheSessionStaysGone) {
  const auto cookie = LoginAs(UniqueUser("leaver"));
  HttpResponse response = Call("POST", "/logout", "", {cookie});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Body(response), (json{{"logged_out", true}}));
  ASSERT_EQ(response.SetCookies().size(), 1u);
  EXPECT_EQ(response.SetCookies()[0],
            std::string(kCookieName) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
  EXPECT_EQ(Call("GET", "/me", "", {cookie}).status, 401);
  // A write after logout answers 401 and does not bring the session back.
  EXPECT_EQ(Call("POST", "/cart", json{{"item", "x"}}.dump(), {cookie}).status, 401);
  EXPECT_EQ(Call("GET", "/me", "", {cookie}).status, 401);
  // Logging out twice (or without a session) is fine.
  EXPECT_EQ(Call("POST", "/logout", "", {cookie}).status, 200);
  EXPECT_EQ(Call("POST", "/logout").status, 200);
}

TEST_F(RadarAppTest, SlowCartAddRacingLogoutCannotRecreateTheSession) {
  const auto cookie = LoginAs(UniqueUser("racer"));
  ClientOptions options;
  options.socket_path = pod().socket_path();
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  const SessionRef ref =
      SessionRef::Cookie(cookie.second.substr(cookie.second.find('=') + 1));
  auto before = (*client)->GetSession(ref, /*touch=*/false);
  ASSERT_TRUE(before.ok()) << before.status();

  absl::StatusOr<HttpResponse> slow;
  std::thread adder([&] {
    slow = pod().Call("POST", "/cart", json{{"item", "late"}}.dump(),
                      {cookie, {"X-Radar-Delay-Ms", "1500"}}, absl::Seconds(20));
  });
  // The add has read (touched) the session and now sleeps before writing.
  EXPECT_TRUE(WaitFor([&] {
    auto now = (*client)->GetSession(ref, /*touch=*/false);
    return now.ok() && now->info.last_access > before->info.last_access;
  }));
  EXPECT_EQ(Call("POST", "/logout", "", {cookie}).status, 200);
  adder.join();
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_EQ(slow->status, 401) << slow->body;
  EXPECT_EQ((*client)->GetSession(ref, false).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Call("GET", "/me", "", {cookie}).status, 401);
}

TEST_F(RadarAppTest, TestHookHeaderIsValidatedWhenEnabled) {
  const auto cookie = LoginAs(UniqueUser("hook"));
  HttpResponse response = Call("POST", "/cart", json{{"item", "x"}}.dump(),
                               {cookie, {"X-Radar-Delay-Ms", "10001"}});
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(Body(response), (json{{"error", "X-Radar-Delay-Ms: 0..10000"}}));
}

TEST_F(RadarAppTest, LoginAgainReplacesTheSession) {
  const std::string alice = UniqueUser("again");
  const auto first = LoginAs(alice);
  ASSERT_EQ(Call("POST", "/cart", json{{"item", "kept"}}.dump(), {first}).status, 200);

  // Same user: a new id (fixation defence), same data; the old cookie dies.
  HttpResponse same = Call("POST", "/login", json{{"user", alice}}.dump(), {first});
  ASSERT_EQ(same.status, 200);
  const std::string second_value = same.Cookie(kCookieName).value_or("");
  ASSERT_FALSE(second_value.empty());
  const std::pair<std::string, std::string> second = {"Cookie",
                                                      std::string(kCookieName) + "=" + second_value};
  EXPECT_NE(second, first);
  EXPECT_EQ(Call("GET", "/me", "", {first}).status, 401);
  EXPECT_EQ(Body(Call("GET", "/me", "", {second}))["cart"], (json{"kept"}));

  // Another user: the old session is destroyed, the new one starts empty.
  const std::string bob = UniqueUser("bob");
  HttpResponse other = Call("POST", "/login", json{{"user", bob}}.dump(), {second});
  ASSERT_EQ(other.status, 200);
  const std::pair<std::string, std::string> third = {
      "Cookie", std::string(kCookieName) + "=" + other.Cookie(kCookieName).value_or("")};
  EXPECT_EQ(Call("GET", "/me", "", {second}).status, 401);
  HttpResponse me = Call("GET", "/me", "", {third});
  EXPECT_EQ(Body(me)["user"], bob);
  EXPECT_EQ(Body(me)["cart"], json::array());
}

TEST_F(RadarAppTest, LoginKeepsTheGuestsCart) {
  HttpResponse guest = Call("POST", "/guest");
  ASSERT_EQ(guest.status, 200);
  EXPECT_EQ(Body(guest)["user"], "");
  const std::pair<std::string, std::string> anonymous = {
      "Cookie", std::string(kCookieName) + "=" + guest.Cookie(kCookieName).value_or("")};
  ASSERT_EQ(Call("POST", "/cart", json{{"item", "boots"}}.dump(), {anonymous}).status, 200);
  EXPECT_EQ(Body(Call("GET", "/me", "", {anonymous}))["user"], "");

  const std::string carol = UniqueUser("carol");
  HttpResponse login = Call("POST", "/login", json{{"user", carol}}.dump(), {anonymous});
  ASSERT_EQ(login.status, 200);
  const std::pair<std::string, std::string> logged_in = {
      "Cookie", std::string(kCookieName) + "=" + login.Cookie(kCookieName).value_or("")};
  EXPECT_NE(logged_in, anonymous);
  // The guest's id ended (fixation defence); its cart is carol's now.
  EXPECT_EQ(Call("GET", "/me", "", {anonymous}).status, 401);
  HttpResponse me = Call("GET", "/me", "", {logged_in});
  EXPECT_EQ(Body(me)["user"], carol);
  EXPECT_EQ(Body(me)["cart"], (json{"boots"}));
  // And it is one of carol's sessions: logging out everywhere ends it.
  ASSERT_EQ(Call("POST", "/logout", R"({"everywhere":true})", {logged_in}).status, 200);
  EXPECT_EQ(Call("GET", "/me", "", {logged_in}).status, 401);
}

TEST_F(RadarAppTest, OptOutIsReadAndWrittenForTheSessionsUser) {
  const std::string user = UniqueUser("optout");
  const auto cookie = LoginAs(user);
  EXPECT_EQ(Body(Call("GET", "/analytics/opt-out", "", {cookie})),
            (json{{"subject", user}, {"opted_out", false}}));
  HttpResponse set = Call("POST", "/analytics/opt-out", R"({"opted_out":true})", {cookie});
  EXPECT_EQ(set.status, 200);
  EXPECT_EQ(Body(set), (json{{"subject", user}, {"opted_out", true}}));
  EXPECT_EQ(Body(Call("GET", "/analytics/opt-out", "", {cookie})),
            (json{{"subject", user}, {"opted_out", true}}));
  // It belongs to the user, not the session: a new login sees it.
  const auto again = LoginAs(user);
  EXPECT_EQ(Body(Call("GET", "/analytics/opt-out", "", {again}))["opted_out"], true);
  EXPECT_EQ(Body(Call("POST", "/analytics/opt-out", R"({"opted_out":false})", {again})),
            (json{{"subject", user}, {"opted_out", false}}));

  EXPECT_EQ(Call("POST", "/analytics/opt-out", R"({"opted_out":"yes"})", {cookie}).status, 400);
  EXPECT_EQ(Call("GET", "/analytics/opt-out").status, 401);
  EXPECT_EQ(Call("POST", "/analytics/opt-out", R"({"opted_out":true})").status, 401);
}

TEST_F(RadarAppTest, ErrorsHaveExactCodesAndJsonBodies) {
  const auto cookie = LoginAs(UniqueUser("errors"));
  struct Case {
    std::string method, target, body;
    bool with_cookie;
    int status;
    std::string error;
  };
  const std::string big(20000, 'x');
  const std::vector<Case> cases = {
      {"GET", "/nope", "", false, 404, "not found"},
      {"GET", "/me/", "", true, 404, "not found"},
      {"DELETE", "/me", "", true, 405, "method not allowed"},
      {"GET", "/login", "", false, 405, "method not allowed"},
      {"PUT", "/analytics/opt-out", "{}", true, 405, "method not allowed"},
      {"POST", "/login", "not json", false, 400, "body must be a JSON object"},
      {"POST", "/login", "[1,2]", false, 400, "body must be a JSON object"},
      {"POST", "/login", R"({"user":42})", false, 400, "user: a string is required"},
      {"POST", "/login", R"({"user":""})", false, 400,
       "user: 1..128 bytes of printable ASCII without spaces"},
      {"POST", "/login", json{{"user", std::string(129, 'u')}}.dump(), false, 400,
       "user: 1..128 bytes of printable ASCII without spaces"},
      {"POST", "/login", "{\"user\":\"\xff\"}", false, 400, "body must be a JSON object"},
      {"POST", "/login", json{{"user", big}}.dump(), false, 413, "request body too large"},
      {"POST", "/cart", R"({"item":"x"})", false, 401, "no valid session"},
      {"POST", "/cart", R"({"item":""})", true, 400, "item: a string of 1..128 bytes is required"},
      {"POST", "/cart", json{{"item", std::string(129, 'i')}}.dump(), true, 400,
       "item: a string of 1..128 bytes is required"},
      {"POST", "/cart", "{", true, 400, "body must be a JSON object"},
      {"POST", "/broadcast", R"({"room":"r","msg":"m"})", false, 401, "no valid session"},
      {"POST", "/broadcast", R"({"room":"r"})", true, 400, "msg: a string is required"},
      {"POST", "/broadcast", R"({"room":"r","user":"u","msg":"m"})", true, 400,
       "exactly one of room or user (a non-empty string) is required"},
      {"POST", "/broadcast", R"({"msg":"m"})", true, 400,
       "exactly one of room or user (a non-empty string) is required"},
  };
  for (const Case& c : cases) {
    Headers headers;
    if (c.with_cookie) headers.push_back(cookie);
    HttpResponse response = Call(c.method, c.target, c.body, headers);
    EXPECT_EQ(response.status, c.status) << c.method << " " << c.target << " " << c.body.substr(0, 60);
    EXPECT_EQ(Body(response), (json{{"error", c.error}})) << c.method << " " << c.target;
    EXPECT_THAT(response.Header("Content-Type"), StartsWith("application/json"));
    EXPECT_EQ(response.Header("X-Instance-Id"), pod().instance());
  }
  EXPECT_EQ(Call("DELETE", "/me", "", {cookie}).Header("Allow"), "GET");
  EXPECT_EQ(Call("PUT", "/analytics/opt-out").Header("Allow"), "GET, POST");
  // A room name the sidecar refuses is a 400 with its reason.
  EXPECT_EQ(Call("POST", "/broadcast", R"({"room":"bad room","msg":"m"})", {cookie}).status, 400);
}

TEST_F(RadarAppTest, EveryResponseCarriesTheInstanceId) {
  const auto cookie = LoginAs(UniqueUser("stamp"));
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/"}, {"GET", "/healthz"}, {"GET", "/me"}, {"POST", "/logout"},
           {"GET", "/analytics/opt-out"}, {"GET", "/missing"}}) {
    HttpResponse response = Call(method, target, "", {cookie});
    EXPECT_EQ(response.Header("X-Instance-Id"), pod().instance()) << method << " " << target;
  }
}

TEST_F(RadarAppTest, HealthzAndThePage) {
  HttpResponse health = Call("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Body(health), (json{{"status", "ok"}, {"instance", pod().instance()}}));
  HttpResponse page = Call("GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.Header("Content-Type"), StartsWith("text/html"));
  for (const char* id : {"user", "login", "me", "room", "join", "messages", "status",
                         "broadcast", "msg", "send", "logout", "logout-all", "pods", "log",
                         "item", "add", "cart", "hammer-n", "hammer", "hammer-result",
                         "optout", "socket-pod", "notices"}) {
    EXPECT_THAT(page.body, HasSubstr(absl::StrCat("id=\"", id, "\""))) << id;
  }
}

TEST_F(RadarAppTest, KeepAliveServesManyRequestsOnOneConnection) {
  const auto cookie = LoginAs(UniqueUser("keeper"));
  auto connection = HttpConnection::Open(pod().port());
  ASSERT_TRUE(connection.ok()) << connection.status();
  for (int i = 0; i < 20; ++i) {
    HttpRequest request;
    request.target = i % 2 == 0 ? "/me" : "/healthz";
    request.headers = {cookie};
    auto response = (*connection)->Send(request);
    ASSERT_TRUE(response.ok()) << i << ": " << response.status();
    EXPECT_EQ(response->status, 200);
    EXPECT_TRUE(response->keep_alive);
  }
}

// Writes raw bytes on a new TCP connection; returns what came back until
// the server closed it (or 10 s passed).
std::string RawExchange(int port, const std::string& bytes) {
  const int fd = RawConnect(port, bytes);
  if (fd < 0) return "";
  std::string reply = RawRead(fd, absl::Seconds(10));
  close(fd);
  return reply;
}

TEST_F(RadarAppTest, GarbageOnTheSocketIs400AndTheAppKeepsServing) {
  const std::vector<std::string> garbage = {
      std::string("\x00\xff\xfe garbage\r\n\r\n", sizeof("\x00\xff\xfe garbage\r\n\r\n") - 1),
      "GET / HTTX/1.1\r\n\r\n",
      "POST /login HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\n" + std::string(20000, 'a') + ": b\r\n\r\n",
  };
  for (const std::string& bytes : garbage) {
    const std::string reply = RawExchange(pod().port(), bytes);
    // Either a 4xx answer and the close, or just the close.
    if (!reply.empty()) {
      EXPECT_THAT(reply, ::testing::AnyOf(StartsWith("HTTP/1.1 400"), StartsWith("HTTP/1.1 431")))
          << reply.substr(0, 80);
      EXPECT_THAT(reply, HasSubstr("X-Instance-Id: " + pod().instance()));
    }
  }
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

TEST_F(RadarAppTest, OversizedBodyWithoutContentLengthIs413) {
  // Chunked: the limit applies to what arrives, not only to a declared length.
  std::string request = "POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) request += "400\r\n" + std::string(1024, 'a') + "\r\n";
  request += "0\r\n\r\n";
  EXPECT_THAT(RawExchange(pod().port(), request), StartsWith("HTTP/1.1 413"));
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

}  // namespace
}  // namespace stateside::testing

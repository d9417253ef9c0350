// RadarAppTest: a gtest fixture sharing one AppPod (sidecar + radar-app,
// with --test-hooks and a non-default cookie name) across a test binary,
// plus helpers to call it. Used from the gtest main thread; Call() and
// Login helpers may also run on other threads (they only read the pod).
#ifndef STATESIDE_TESTS_INTEGRATION_APP_SHARED_POD_TEST_H_
#define STATESIDE_TESTS_INTEGRATION_APP_SHARED_POD_TEST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/app/app_pod.h"
#include "tests/support/web_client.h"

namespace stateside::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

inline constexpr char kCookieName[] = "radar_test_sid";

class RadarAppTest : public ::testing::Test {
 protected:
  using json = nlohmann::json;

  static void SetUpTestSuite() {
    AppPodOptions options =
        PodOptions("app-shared-pod", {"--test-hooks", std::string("--cookie-name=") + kCookieName});
    // Some tests publish thousands of events from one user as fast as they
    // can (a client that does not read); the publish cap has its own tests.
    options.sidecar_env["STATESIDE_PUBLISH_RATE_PER_USER"] = "0";
    auto pod = AppPod::Start(options);
    if (pod.ok()) {
      pod_ = pod->release();
    } else {
      error_ = new std::string(pod.status().ToString());
    }
  }
  static void TearDownTestSuite() {
    delete pod_;
    pod_ = nullptr;
    delete error_;
    error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(error_, nullptr) << *error_;
    ASSERT_TRUE(pod_->app().running()) << pod_->Logs();
  }
  void TearDown() override {
    if (HasFailure()) ADD_FAILURE() << pod_->Logs();
  }

  static AppPod& pod() { return *pod_; }

  // Logs `user` in; the Cookie header to send.
  static std::pair<std::string, std::string> LoginAs(const std::string& user) {
    auto cookie = pod_->Login(user);
    EXPECT_TRUE(cookie.ok()) << cookie.status();
    return cookie.ok() ? *cookie : std::make_pair(std::string("Cookie"), std::string());
  }

  static HttpResponse Call(std::string method, std::string target, std::string body = "",
                           Headers headers = {}, absl::Duration timeout = absl::Seconds(10)) {
    auto response = pod_->Call(std::move(method), std::move(target), std::move(body),
                               std::move(headers), timeout);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse{};
  }

  // An open WebSocket of the session `cookie`, past its hello.
  static std::unique_ptr<WebSocketClient> OpenSocket(const std::pair<std::string, std::string>& cookie,
                                                     json* hello = nullptr) {
    auto ws = WebSocketClient::Connect(pod_->port(), "/ws", {cookie});
    EXPECT_TRUE(ws.ok()) << ws.status();
    if (!ws.ok()) return nullptr;
    auto first = (*ws)->Read(absl::Seconds(10));
    EXPECT_TRUE(first.ok()) << first.status();
    if (!first.ok()) return nullptr;
    const json parsed = json::parse(first->text, nullptr, false);
    EXPECT_EQ(parsed.value("event", ""), "hello") << first->text;
    if (hello != nullptr) *hello = parsed;
    return *std::move(ws);
  }

  static void Join(WebSocketClient& ws, const std::string& room) {
    ASSERT_TRUE(ws.Send(json{{"join", room}}.dump()).ok());
    auto ack = ws.ReadUntil("\"joined\"", absl::Seconds(10));
    ASSERT_TRUE(ack.ok()) << ack.status();
    EXPECT_EQ(json::parse(*ack), (json{{"joined", room}}));
  }

  static inline AppPod* pod_ = nullptr;
  static inline std::string* error_ = nullptr;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_INTEGRATION_APP_SHARED_POD_TEST_H_

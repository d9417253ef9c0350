// The browser check: headless Chromium, driven through chromedriver's
// W3C WebDriver API, uses radar-app's page through nginx: logs in, sees its
// user, joins a room over the WebSocket, and shows a broadcast that another
// user posted on another pod; a form on another origin cannot post to it.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/browser_fixture.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/radar_calls.h"
#include "tests/support/wait.h"
#include "tests/support/web_client.h"

namespace stateside::testing {
namespace {

TEST_F(BrowserE2eTest, PageLogsInAndShowsABroadcastFromAnotherPod) {
  const std::string page = absl::StrCat("http://127.0.0.1:", cluster_->nginx_port(), "/");
  absl::Status step = driver_->Navigate(page);
  ASSERT_TRUE(step.ok()) << step;

  step = TypeInto("#user", "browser-user");
  ASSERT_TRUE(step.ok()) << step;
  step = ClickOn("#login");
  ASSERT_TRUE(step.ok()) << step;
  ASSERT_TRUE(TextShows("#me", "browser-user"));

  step = TypeInto("#room", "browser-room");
  ASSERT_TRUE(step.ok()) << step;
  step = ClickOn("#join");
  ASSERT_TRUE(step.ok()) << step;
  ASSERT_TRUE(TextShows("#status", "connected to pod-"));

  // The page's join is confirmed cluster-wide (presence), and names the pod
  // holding the browser's WebSocket.
  std::string browser_pod;
  std::string presence;
  ASSERT_TRUE(WaitFor(
      [&] {
        RunResult run = cluster_->Statesidectl(1, {"presence", "--room", "browser-room"});
        presence = run.out + run.err;
        const nlohmann::json j = nlohmann::json::parse(run.out, nullptr, false);
        if (run.exit_status != 0 || j.value("count", 0) != 1) return false;
        browser_pod = j["connections"][0].value("instance", "");
        return true;
      },
      absl::Seconds(10), absl::Milliseconds(50)))
      << "the browser's join never showed in presence: " << presence;

  int other = 1;
  while (LocalCluster::Instance(other) == browser_pod) ++other;
  auto publisher = Login(cluster_->app_port(other), "browser-publisher");
  ASSERT_TRUE(publisher.ok()) << publisher.status();
  // Only a member may broadcast into a room: the publisher joins it too.
  auto publisher_socket = OpenSocket(cluster_->app_port(other), *publisher);
  ASSERT_TRUE(publisher_socket.ok()) << publisher_socket.status();
  ASSERT_TRUE(Join(*publisher_socket->ws, "browser-room").ok());
  auto published = HttpCall(
      cluster_->app_port(other),
      RadarPost("/broadcast", {{"room", "browser-room"}, {"msg", "hello browser"}}, *publisher));
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_EQ(published->status, 200) << Describe(*published);
  EXPECT_EQ(published->Header("X-Instance-Id"), LocalCluster::Instance(other));
  fprintf(stderr, "[e2e] browser on %s, broadcast posted on %s\n", browser_pod.c_str(),
          LocalCluster::Instance(other).c_str());

  EXPECT_TRUE(TextShows("#messages", "hello browser"));
}

// The classic cross-site request forgery: a page of another origin submits
// a form to radar-app whose text/plain body is valid JSON. Without the
// origin check radar-app would log the browser in as "forged".
TEST_F(BrowserE2eTest, AFormOnAnotherOriginCannotPostToRadar) {
  // Another origin: pod 1 under the name localhost, which no pod lists as
  // public. Its /healthz answer has no form-action policy to stop the form.
  absl::Status step =
      driver_->Navigate(absl::StrCat("http://localhost:", cluster_->app_port(1), "/healthz"));
  ASSERT_TRUE(step.ok()) << step;
  const std::string target = absl::StrCat("http://127.0.0.1:", cluster_->nginx_port(), "/login");
  auto submitted = driver_->Execute(R"js(
    const form = document.createElement("form");
    form.method = "POST";
    form.action = arguments[0];
    form.enctype = "text/plain";
    const input = document.createElement("input");
    input.name = '{"user":"forged","x":"';
    input.value = '"}';
    form.appendChild(input);
    document.body.appendChild(form);
    form.submit();
  )js", nlohmann::json::array({target}));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_TRUE(TextShows("body", "cross-origin request refused"));
}

}  // namespace
}  // namespace stateside::testing

// statesidectl (the real binary) against the real sidecar: the README tour,
// exit statuses, human and JSON output.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/client/sidecar_fixture.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::RunResult;

class StatesidectlSidecarTest : public testing::SidecarFixture {
 protected:
  // statesidectl --socket <sidecar> args...
  static RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {testing::BinPath("statesidectl"), "--socket", socket_path()});
    return testing::Run(args, {}, absl::Seconds(30));
  }

  // The value of the "name:" line of human output.
  static std::string Field(const std::string& out, const std::string& name) {
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      if (absl::ConsumePrefix(&line, name + ":")) {
        return std::string(absl::StripLeadingAsciiWhitespace(line));
      }
    }
    return "";
  }
};

TEST_F(StatesidectlSidecarTest, CreateThenGetByCookieReturnsTheSession) {
  const RunResult created = Ctl({"session", "create", "--user", "alice", "--set", "cart=[]"});
  ASSERT_EQ(created.exit_status, 0) << created.err;
  const std::string id = Field(created.out, "id");
  const std::string cookie = Field(created.out, "cookie");
  ASSERT_EQ(id.size(), 43u) << created.out;
  ASSERT_THAT(cookie, StartsWith(id + "."));

  const RunResult human = Ctl({"session", "get", cookie});
  ASSERT_EQ(human.exit_status, 0) << human.err;
  EXPECT_EQ(Field(human.out, "id"), id);
  EXPECT_EQ(Field(human.out, "user"), "alice");
  EXPECT_THAT(human.out, HasSubstr("  cart = \"[]\"\n"));

  const RunResult json = Ctl({"--json", "session", "get", cookie});
  ASSERT_EQ(json.exit_status, 0) << json.err;
  const auto parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["id"], id);
  EXPECT_EQ(parsed["user_id"], "alice");
  EXPECT_EQ(parsed["attributes"]["cart"], "[]");
  EXPECT_TRUE(parsed["binary_attributes"].empty());
}

TEST_F(StatesidectlSidecarTest, UpdateWithWrongExpectedVersionExitsOneWithAborted) {
  const RunResult created = Ctl({"--json", "session", "create", "--user", "bob"});
  ASSERT_EQ(created.exit_status, 0) << created.err;
  const auto session = nlohmann::json::parse(created.out);
  const std::string id = session["id"];
  const uint64_t version = session["version"];

  const RunResult conflict = Ctl({"session", "update", id, "--set", "a=1",
                                  "--expect-version", std::to_string(version + 5)});
  EXPECT_EQ(conflict.exit_status, 1);
  EXPECT_THAT(conflict.err, StartsWith("statesidectl: ABORTED: "));
  EXPECT_EQ(conflict.out, "");

  const RunResult ok = Ctl({"--json", "session", "update", id, "--set", "a=1",
                            "--expect-version", std::to_string(version)});
  ASSERT_EQ(ok.exit_status, 0) << ok.err;
  EXPECT_GT(nlohmann::json::parse(ok.out)["version"].get<uint64_t>(), version);
}

TEST_F(StatesidectlSidecarTest, DestroyThenGetExitsOneWithNotFound) {
  const RunResult created = Ctl({"--json", "session", "create"});
  ASSERT_EQ(created.exit_status, 0) << created.err;
  const std::string id = nlohmann::json::parse(created.out)["id"];
  const RunResult destroyed = Ctl({"session", "destroy", id});
  ASSERT_EQ(destroyed.exit_status, 0) << destroyed.err;
  EXPECT_EQ(destroyed.out, "destroyed\n");
  const RunResult got = Ctl({"session", "get", id});
  EXPECT_EQ(got.exit_status, 1);
  EXPECT_THAT(got.err, StartsWith("statesidectl: NOT_FOUND: "));
}

TEST_F(StatesidectlSidecarTest, ListShowsTheUsersSessions) {
  const std::string user = UniqueUser("lister");
  const RunResult created = Ctl({"--json", "session", "create", "--user", user});
  ASSERT_EQ(created.exit_status, 0) << created.err;
  const std::string id = nlohmann::json::parse(created.out)["id"];
  const RunResult list = Ctl({"--json", "session", "list", "--user", user});
  ASSERT_EQ(list.exit_status, 0) << list.err;
  const auto parsed = nlohmann::json::parse(list.out);
  ASSERT_EQ(parsed["sessions"].size(), 1u);
  EXPECT_EQ(parsed["sessions"][0]["id"], id);
  EXPECT_THAT(Ctl({"session", "list", "--user", user}).out, HasSubstr(id));

  // One page at a time: the token printed leads to the next page.
  ASSERT_EQ(Ctl({"session", "create", "--user", user}).exit_status, 0);
  const RunResult first = Ctl({"--json", "session", "list", "--user", user, "--page-size", "1"});
  ASSERT_EQ(first.exit_status, 0) << first.err;
  const auto page = nlohmann::json::parse(first.out);
  ASSERT_EQ(page["sessions"].size(), 1u);
  const std::string token = page["next_page_token"];
  ASSERT_FALSE(token.empty());
  EXPECT_THAT(Ctl({"session", "list", "--user", user, "--page-size", "1"}).out,
              HasSubstr("next page: --page-token " + token));
  const RunResult second = Ctl({"--json", "session", "list", "--user", user, "--page-token", token});
  ASSERT_EQ(second.exit_status, 0) << second.err;
  const auto next = nlohmann::json::parse(second.out);
  ASSERT_EQ(next["sessions"].size(), 1u);
  EXPECT_NE(next["sessions"][0]["id"], page["sessions"][0]["id"]);
  EXPECT_EQ(next["next_page_token"], "");
  const RunResult bad = Ctl({"session", "list", "--user", user, "--page-token", "bogus"});
  EXPECT_EQ(bad.exit_status, 1);
  EXPECT_THAT(bad.err, HasSubstr("INVALID_ARGUMENT"));
}

TEST_F(StatesidectlSidecarTest, WatchPrintsTheChangesOfTheKindsAskedFor) {
  // `session watch --count 1` exits after its first event: sessions are
  // made and destroyed until it has seen one.
  const std::string user = UniqueUser("watched");
  testing::SubprocessOptions options;
  options.argv = {testing::BinPath("statesidectl"), "--socket", socket_path(), "--json",
                  "session", "watch", "--kind", "destroyed", "--count", "1"};
  options.log_path = socket_path() + ".watch.log";
  auto watch = testing::Subprocess::Start(options);
  ASSERT_TRUE(watch.ok()) << watch.status();
  std::vector<std::string> destroyed;
  const bool exited = testing::WaitFor([&] {
    if (!watch->running()) return true;
    const RunResult created = Ctl({"--json", "session", "create", "--user", user});
    if (created.exit_status != 0) return false;
    destroyed.push_back(nlohmann::json::parse(created.out)["id"]);
    return Ctl({"session", "destroy", destroyed.back()}).exit_status == 0 && !watch->running();
  }, absl::Seconds(20));
  ASSERT_TRUE(exited) << watch->ReadLog();
  EXPECT_EQ(watch->Wait(absl::Seconds(5)), 0);
  const auto line = nlohmann::json::parse(watch->ReadLog());
  EXPECT_EQ(line["kind"], "destroyed");
  EXPECT_THAT(destroyed, ::testing::Contains(line["session_id"].get<std::string>()));

  const RunResult bad = Ctl({"session", "watch", "--kind", "touched"});
  EXPECT_EQ(bad.exit_status, 2);
}

TEST_F(StatesidectlSidecarTest, InfoHealthAndOptOutWork) {
  const RunResult info = Ctl({"--json", "info"});
  ASSERT_EQ(info.exit_status, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["pid"], sidecar_pid());
  const RunResult health = Ctl({"--wait", "5s", "health"});
  EXPECT_EQ(health.exit_status, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
  const std::string subject = UniqueUser("s");
  EXPECT_EQ(Ctl({"optout", "set", subject}).exit_status, 0);
  EXPECT_EQ(Ctl({"optout", "get", subject}).out, subject + ": opted out\n");
}

TEST_F(StatesidectlSidecarTest, SocketComesFromTheEnvironment) {
  const RunResult r = testing::Run({testing::BinPath("statesidectl"), "health"},
                                   {{"STATESIDE_SOCKET", socket_path()}});
  EXPECT_EQ(r.exit_status, 0) << r.err;
}

TEST_F(StatesidectlSidecarTest, BadUsageExitsTwo) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{},
                                             {"session", "create", "--set", "cart"},
                                             {"session", "frobnicate"},
                                             {"session", "update", "x"},
                                             {"--timeout", "never", "info"}}) {
    const RunResult r = Ctl(args);
    EXPECT_EQ(r.exit_status, 2) << ::testing::PrintToString(args) << r.err;
    EXPECT_FALSE(r.err.empty());
  }
}

TEST(StatesidectlNoSidecarTest, AbsentSidecarExitsOneWithUnavailableSoon) {
  testing::TempDir dir;
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"session", "get", "abc.def"},
                                             {"session", "create", "--user", "u"},
                                             {"--wait", "1s", "info"}}) {
    std::vector<std::string> argv = {testing::BinPath("statesidectl"), "--socket",
                                     dir.File("absent.sock")};
    argv.insert(argv.end(), args.begin(), args.end());
    const absl::Time start = absl::Now();
    const RunResult r = testing::Run(argv, {}, absl::Seconds(30));
    EXPECT_EQ(r.exit_status, 1) << ::testing::PrintToString(args) << r.err;
    EXPECT_THAT(r.err, StartsWith("statesidectl: UNAVAILABLE: "));
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  }
}

}  // namespace
}  // namespace stateside

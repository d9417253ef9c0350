// statesidectl's lifecycle commands in-process: drain, watch-drain,
// instances against the fake sidecar; metrics and health --admin against a
// tiny HTTP server.
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "client/tools/cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/temp_dir.h"
#include "tests/unit/client/fake_sidecar.h"
#include "tests/unit/client/statesidectl_fixture.h"
#include "tests/unit/client/tiny_http_server.h"

namespace stateside {
namespace {

using client_internal::Rpc;
using testing::FakeSidecar;
using testing::TinyHttpServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kDeadline = 1'800'000'000;  // 2027-01-15T08:00:00Z

constexpr char kMetricsReply[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
    "Content-Length: 215\r\nConnection: close\r\n\r\n"
    "# HELP stateside_rpc_requests_total RPCs.\n"
    "# TYPE stateside_rpc_requests_total counter\n"
    "stateside_rpc_requests_total{method=\"Get\",code=\"OK\"} 12\n"
    "stateside_up 1\n"
    "stateside_rpc_requests_total{method=\"Create\",code=\"OK\"} 3\n";

using Result = testing::CliResult;

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

using StatesidectlLifecycleTest = testing::StatesidectlFixture;

TEST_F(StatesidectlLifecycleTest, DrainStartsTheDrainAndFollowsItToTheEnd) {
  fake_->DrainImmediatelyOnRequest(kDeadline);
  const Result r = Run({"drain"});
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\nDRAINING deadline=2027-01-15T08:00:00.000Z\nDRAINED\n");
  EXPECT_EQ(fake_->calls(Rpc::kDrain), 1);
  // Followed by hand: the sidecar exits once drained, as before.
  EXPECT_FALSE(fake_->last_drain().hold_until_signal());
}

TEST_F(StatesidectlLifecycleTest, DrainNoFollowStartsAHeldDrainAndReturnsAtOnce) {
  // The fake never ends the drain: a command that followed it would block.
  const Result r = Run({"drain", "--no-follow"});
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "drain started; the sidecar exits on its SIGTERM\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(fake_->calls(Rpc::kDrain), 1);
  EXPECT_TRUE(fake_->last_drain().hold_until_signal());
  EXPECT_EQ(fake_->watch_calls(), 0);
}

TEST_F(StatesidectlLifecycleTest, DrainNoFollowJson) {
  const Result r = Run({"drain", "--no-follow", "--json"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), (nlohmann::json{{"event", "drain_started"}}));
}

TEST_F(StatesidectlLifecycleTest, DrainNoFollowWithoutASidecarIsExitOneWithTheReason) {
  fake_.reset();
  const Result r = testing::RunStatesidectlAt(
      dir_.File("nobody.sock"), {"drain", "--no-follow", "--timeout", "300ms"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, ::testing::StartsWith("statesidectl: UNAVAILABLE: "));
}

TEST_F(StatesidectlLifecycleTest, DrainJsonIsOneObjectPerLine) {
  fake_->DrainImmediatelyOnRequest(kDeadline);
  const Result r = Run({"drain", "--json"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(nlohmann::json::parse(lines[0]), (nlohmann::json{{"state", "SERVING"}}));
  EXPECT_EQ(nlohmann::json::parse(lines[1]),
            (nlohmann::json{{"state", "DRAINING"}, {"deadline", "2027-01-15T08:00:00.000Z"}}));
  EXPECT_EQ(nlohmann::json::parse(lines[2])["state"], "DRAINED");
}

TEST_F(StatesidectlLifecycleTest, DrainRefusedIsExitOne) {
  fake_->FailNext(Rpc::kDrain, 1,
                  grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "already stopped"));
  const Result r = Run({"drain"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_EQ(r.err, "statesidectl: FAILED_PRECONDITION: already stopped\n");
  EXPECT_EQ(fake_->watch_calls(), 0);
}

TEST_F(StatesidectlLifecycleTest, WatchDrainPrintsEachEventUntilTheStreamEnds) {
  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINING, kDeadline);
  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINED);
  fake_->EndDrainStreams();
  const Result r = Run({"watch-drain"});
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("SERVING", "DRAINING deadline=2027-01-15T08:00:00.000Z",
                                        "DRAINED"));
  EXPECT_EQ(fake_->calls(Rpc::kDrain), 0);
}

TEST_F(StatesidectlLifecycleTest, WatchDrainSidecarGoneAfterDrainingIsSuccess) {
  fake_->PushDrainEvent(v1::DRAIN_STATE_DRAINING, kDeadline);
  fake_->EndDrainStreams(grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone"));
  const Result r = Run({"watch-drain"});
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(Lines(r.out).back(), "sidecar gone");
}

TEST_F(StatesidectlLifecycleTest, WatchDrainBrokenWhileServingIsExitOne) {
  fake_->EndDrainStreams(grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone"));
  const Result r = Run({"watch-drain"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_EQ(r.err, "statesidectl: UNAVAILABLE: gone\n");
}

TEST_F(StatesidectlLifecycleTest, InstancesListsEveryInstance) {
  const Result text = Run({"instances"});
  ASSERT_EQ(text.exit_status, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("fake-1"));
  EXPECT_THAT(text.out, HasSubstr("fake-2"));
  EXPECT_EQ(Lines(text.out).size(), 3u) << "header + 2 rows";

  const Result json = Run({"instances", "--json"});
  ASSERT_EQ(json.exit_status, 0) << json.err;
  const auto parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed["instances"].size(), 2u);
  EXPECT_EQ(parsed["instances"][1]["id"], "fake-2");
  EXPECT_EQ(parsed["instances"][1]["drain_state"], "SERVING");
}

TEST_F(StatesidectlLifecycleTest, InstancesUnimplementedIsPrinted) {
  fake_->FailNext(Rpc::kListInstances, 1,
                  grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no registry"));
  const Result r = Run({"instances"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_EQ(r.err, "statesidectl: UNIMPLEMENTED: no registry\n");
}

TEST_F(StatesidectlLifecycleTest, MetricsPrintsThePageAndGreps) {
  TinyHttpServer server(kMetricsReply);
  const Result all = Run({"metrics", "--admin", server.address()});
  ASSERT_EQ(all.exit_status, 0) << all.err;
  EXPECT_EQ(Lines(all.out).size(), 5u) << all.out;
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_THAT(server.requests()[0], ::testing::StartsWith("GET /metrics HTTP/1.0\r\n"));

  const Result some = Run({"metrics", "--admin", server.address(), "--grep", "Create"});
  ASSERT_EQ(some.exit_status, 0) << some.err;
  EXPECT_THAT(Lines(some.out),
              ElementsAre("stateside_rpc_requests_total{method=\"Create\",code=\"OK\"} 3"));
}

TEST_F(StatesidectlLifecycleTest, MetricsJsonHasOneSamplePerLine) {
  TinyHttpServer server(kMetricsReply);
  const Result r = Run({"--json", "metrics", "--admin", server.address(), "--grep",
                        "requests"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;  // the HELP/TYPE comments are not samples
  EXPECT_EQ(nlohmann::json::parse(lines[0]),
            (nlohmann::json{{"name", "stateside_rpc_requests_total"},
                            {"labels", {{"method", "Get"}, {"code", "OK"}}},
                            {"value", 12.0}}));
}

TEST_F(StatesidectlLifecycleTest, MetricsHttpErrorIsExitOne) {
  TinyHttpServer server("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  const Result r = Run({"metrics", "--admin", server.address()});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(r.err, HasSubstr("HTTP 503"));
}

TEST_F(StatesidectlLifecycleTest, MetricsWithNothingListeningIsExitOne) {
  std::string address;
  {
    TinyHttpServer server("");
    address = server.address();
  }  // closed: the port now refuses connections
  const Result r = Run({"metrics", "--admin", address});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.err, HasSubstr("statesidectl: UNAVAILABLE: GET http://" + address));
}

TEST_F(StatesidectlLifecycleTest, MetricsBadAddressIsRejected) {
  const Result r = Run({"metrics", "--admin", "no-port"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
}

TEST_F(StatesidectlLifecycleTest, HealthWithAdminShowsBoth) {
  const std::string body = R"({"status":"ok","drain_state":"SERVING"})";
  TinyHttpServer server(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(),
                                     "\r\n\r\n", body));
  const Result text = Run({"health", "--admin", server.address()});
  ASSERT_EQ(text.exit_status, 0) << text.err;
  EXPECT_EQ(text.out, "SERVING\nadmin /health: " + body + "\n");

  const Result json = Run({"--json", "health", "--admin", server.address()});
  ASSERT_EQ(json.exit_status, 0) << json.err;
  const auto parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["status"], "SERVING");
  EXPECT_EQ(parsed["admin"]["drain_state"], "SERVING");
  EXPECT_THAT(server.requests()[0], ::testing::StartsWith("GET /health HTTP/1.0\r\n"));
}

// A sweep report as the sidecar's /keys/rewrap answers it.
std::string RewrapReply(const std::string& state, int left) {
  const std::string body =
      nlohmann::json{{"state", state},
                     {"primary", "k2"},
                     {"sessions", 4},
                     {"opt_outs", 2},
                     {"unsealed_opt_outs", 0},
                     {"conflicts", 1},
                     {"errors", 0},
                     {"last_error", ""},
                     {"keys",
                      {{"k1", {{"found", 10}, {"rewrapped", 10 - left}, {"left", left}}},
                       {"k2", {{"found", 3}, {"rewrapped", 0}, {"left", 0}}}}}}
          .dump();
  return absl::StrCat("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n",
                      "Content-Length: ", body.size(), "\r\n\r\n", body);
}

TEST_F(StatesidectlLifecycleTest, KeysRewrapPostsWithTheTokenAndReportsPerKeyId) {
  TinyHttpServer server(RewrapReply("done", 0));
  testing::TempDir dir;
  const std::string token_file = dir.WriteFile("token", "an-admin-token-of-some-length\n");
  const Result r = Run({"keys", "rewrap", "--admin", server.address(), "--rate", "50",
                        "--admin-token-file", token_file});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out,
            "rewrap to k2: done - 4 sessions, 2 opt-outs (0 without a sealed subject), "
            "1 conflicts, 0 errors\n"
            "  key k1: found 10, rewrapped 10, left 0\n"
            "  key k2: found 3, rewrapped 0, left 0 (primary)\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_THAT(server.requests()[0],
              ::testing::StartsWith("POST /keys/rewrap?rate=50 HTTP/1.0\r\n"));
  EXPECT_THAT(server.requests()[0],
              HasSubstr("\r\nAuthorization: Bearer an-admin-token-of-some-length\r\n"));
}

TEST_F(StatesidectlLifecycleTest, KeysRewrapFailsWhileAnythingIsLeftUnderAnOldKey) {
  TinyHttpServer server(RewrapReply("done", 3));
  const Result r = Run({"keys", "rewrap", "--admin", server.address()});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.out, HasSubstr("key k1: found 10, rewrapped 7, left 3"));
  EXPECT_THAT(r.err, HasSubstr("3 values are still under old keys"));
}

// Values under the primary that did not open are reported on their own
// line and hold nothing under an old key: the keys may go. A sidecar that
// counted them as left under the primary gets the same verdict.
TEST_F(StatesidectlLifecycleTest, KeysRewrapDoesNotBlameOldKeysForUnopenableValuesUnderThePrimary) {
  for (const int primary_left : {0, 2}) {
    const std::string body =
        nlohmann::json{{"state", "done"},
                       {"primary", "k2"},
                       {"errors", 0},
                       {"keys",
                        {{"k1", {{"found", 4}, {"rewrapped", 4}, {"left", 0}}},
                         {"k2",
                          {{"found", 5}, {"rewrapped", 3}, {"left", primary_left},
                           {"unopenable", 2}}}}}}
            .dump();
    TinyHttpServer server(absl::StrCat("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n",
                                       "Content-Length: ", body.size(), "\r\n\r\n", body));
    const Result r = Run({"keys", "rewrap", "--admin", server.address()});
    EXPECT_EQ(r.exit_status, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("  2 values did not open under their key (tampered, or sealed "
                                 "under other bytes for that key id): they read as not found\n"));
    EXPECT_THAT(r.err, ::testing::Not(HasSubstr("old keys")));
  }
}

TEST_F(StatesidectlLifecycleTest, KeysStatusGetsTheReportAndARefusalIsExitOne) {
  TinyHttpServer server(RewrapReply("running", 0));
  const Result r = Run({"--json", "keys", "status", "--admin", server.address()});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["state"], "running");
  EXPECT_THAT(server.requests()[0], ::testing::StartsWith("GET /keys/rewrap HTTP/1.0\r\n"));

  TinyHttpServer refusing(
      "HTTP/1.1 401 Unauthorized\r\nContent-Length: 30\r\n\r\n"
      "{\"error\":\"admin token needed\"}");
  const Result refused = Run({"keys", "rewrap", "--admin", refusing.address()});
  EXPECT_EQ(refused.exit_status, 1);
  EXPECT_THAT(refused.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(refused.err, HasSubstr("admin token needed"));
}

}  // namespace
}  // namespace stateside

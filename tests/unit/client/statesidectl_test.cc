// statesidectl run in-process against a fake sidecar: exit codes, usage
// errors, human and JSON output.
#include <sstream>
#include <string>
#include <vector>

#include "client/tools/cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/temp_dir.h"
#include "tests/unit/client/fake_sidecar.h"
#include "tests/unit/client/statesidectl_fixture.h"

namespace stateside {
namespace {

using client_internal::Rpc;
using testing::FakeSidecar;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using Result = testing::CliResult;

class StatesidectlTest : public testing::StatesidectlFixture {
 protected:
  int TotalCalls() const {
    int total = 0;
    for (Rpc rpc : client_internal::kAllRpcs) total += fake_->calls(rpc);
    return total;
  }
};

TEST_F(StatesidectlTest, BadUsageExitsTwoWithoutCalling) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"bogus"},
      {"session"},
      {"session", "get"},
      {"session", "get", "a", "b"},
      {"session", "create", "--set", "novalue"},
      {"session", "create", "--set", "=v"},
      {"session", "create", "--set", "a=1", "--set", "a=2"},
      {"session", "create", "--set", "a=1", "b=2"},
      {"session", "create", "--idle-ttl", "soon"},
      {"session", "update", "x"},
      {"session", "update", "x", "--set", "a=1", "--expect-version", "-1"},
      {"session", "update", "x", "--set", "a=1", "--expect-version", "abc"},
      {"session", "list"},
      {"optout", "set"},
      {"--timeout", "0s", "info"},
      {"--timeout", "xyz", "info"},
      {"--no-such-flag", "info"},
  };
  for (const auto& args : cases) {
    const Result r = Run(args);
    EXPECT_EQ(r.exit_status, cli::kExitUsage) << ::testing::PrintToString(args)
                                              << " stderr: " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  EXPECT_EQ(TotalCalls(), 0);
}

TEST_F(StatesidectlTest, HelpExitsZero) {
  const Result r = Run({"--help"});
  EXPECT_EQ(r.exit_status, cli::kExitOk);
  EXPECT_THAT(r.out, HasSubstr("session"));
}

TEST_F(StatesidectlTest, GetPrintsSessionForPeopleWithEscapes) {
  const Result r = Run({"session", "get", FakeSidecar::kCookie});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(std::string("id:              ") + FakeSidecar::kSessionId));
  EXPECT_THAT(r.out, HasSubstr(std::string("cookie:          ") + FakeSidecar::kCookie));
  EXPECT_THAT(r.out, HasSubstr("user:            alice"));
  EXPECT_THAT(r.out, HasSubstr("created:         2023-11-14T22:13:20.250Z"));
  EXPECT_THAT(r.out, HasSubstr("  cart = \"[]\"\n"));
  EXPECT_THAT(r.out, HasSubstr("  blob = \"\\x00\\xff\\n\"\n"));
}

TEST_F(StatesidectlTest, GetPrintsJsonWithBinaryValuesInBase64) {
  const Result r = Run({"--json", "session", "get", FakeSidecar::kSessionId});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["id"], FakeSidecar::kSessionId);
  EXPECT_EQ(json["cookie"], FakeSidecar::kCookie);
  EXPECT_EQ(json["version"], 7);
  EXPECT_EQ(json["attributes"]["cart"], "[]");
  EXPECT_FALSE(json["attributes"].contains("blob"));
  EXPECT_EQ(json["binary_attributes"]["blob"], "AP8K");
}

TEST_F(StatesidectlTest, JsonFlagIsAcceptedAfterTheSubcommand) {
  const Result r = Run({"session", "get", FakeSidecar::kSessionId, "--json"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["version"], 7);
}

TEST_F(StatesidectlTest, CreateSendsRawValuesAndPrintsIdAndCookie) {
  const Result r = Run({"session", "create", "--user", "alice", "--set", "cart=[]",
                        "--set", "eq=a=b", "--set", "empty="});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(std::string("id:              ") + FakeSidecar::kSessionId));
  EXPECT_THAT(r.out, HasSubstr(std::string("cookie:          ") + FakeSidecar::kCookie));
  const v1::CreateSessionRequest sent = fake_->last_create();
  EXPECT_EQ(sent.user_id(), "alice");
  EXPECT_EQ(sent.attributes().at("cart"), "[]");
  EXPECT_EQ(sent.attributes().at("eq"), "a=b");
  EXPECT_EQ(sent.attributes().at("empty"), "");
}

TEST_F(StatesidectlTest, UpdateSendsSetDeleteAndExpectedVersion) {
  const Result r = Run({"session", "update", "sid", "--set", "a=1", "--delete", "b",
                        "--delete", "c", "--expect-version", "7"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("version:         8"));
  const v1::UpdateSessionRequest sent = fake_->last_update();
  EXPECT_EQ(sent.key().id(), "sid");
  EXPECT_EQ(sent.set().at("a"), "1");
  EXPECT_EQ(sent.remove_size(), 2);
  EXPECT_EQ(sent.expected_version(), 7u);
}

TEST_F(StatesidectlTest, FailedCallExitsOneWithCodeAndMessage) {
  fake_->FailNext(Rpc::kGetSession, 1,
                  grpc::Status(grpc::StatusCode::NOT_FOUND, "session not found"));
  const Result r = Run({"session", "get", "nope"});
  EXPECT_EQ(r.exit_status, cli::kExitFailed);
  EXPECT_EQ(r.err, "statesidectl: NOT_FOUND: session not found\n");
  EXPECT_EQ(r.out, "");

  fake_->FailNext(Rpc::kUpdateSession, 1,
                  grpc::Status(grpc::StatusCode::ABORTED, "version mismatch"));
  const Result u = Run({"session", "update", "x", "--set", "a=1", "--expect-version", "1"});
  EXPECT_EQ(u.exit_status, cli::kExitFailed);
  EXPECT_THAT(u.err, StartsWith("statesidectl: ABORTED: "));
}

TEST_F(StatesidectlTest, IdsBeginningWithADashAreNotTakenForOptions) {
  const std::string dashed = "-" + std::string(FakeSidecar::kSessionId).substr(1);
  EXPECT_EQ(Run({"session", "get", dashed}).exit_status, 0);
  EXPECT_EQ(Run({"session", "get", dashed + ".sig", "--no-touch"}).exit_status, 0);
  EXPECT_EQ(Run({"session", "update", dashed, "--set", "a=1"}).exit_status, 0);
  EXPECT_EQ(fake_->last_update().key().id(), dashed);
  EXPECT_EQ(Run({"session", "destroy-user", "--user", "u", "--keep", dashed}).exit_status, 0);
  EXPECT_EQ(Run({"session", "destroy", "--", dashed}).exit_status, 0);
  EXPECT_EQ(fake_->calls(Rpc::kGetSession), 2);
  EXPECT_EQ(fake_->calls(Rpc::kDestroyUserSessions), 1);
  EXPECT_EQ(fake_->calls(Rpc::kDestroySession), 1);
}

TEST_F(StatesidectlTest, OtherCommandsSucceed) {
  const std::vector<std::vector<std::string>> cases = {
      {"info"},
      {"--json", "info"},
      {"health"},
      {"session", "touch", "x"},
      {"session", "destroy", "x"},
      {"session", "regenerate", "x"},
      {"session", "list", "--user", "alice"},
      {"--json", "session", "list", "--user", "alice"},
      {"session", "destroy-user", "--user", "alice"},
      {"optout", "set", "alice"},
      {"optout", "set", "alice", "--off", "--ttl", "1h"},
      {"optout", "get", "alice"},
  };
  for (const auto& args : cases) {
    const Result r = Run(args);
    EXPECT_EQ(r.exit_status, 0) << ::testing::PrintToString(args) << r.err;
    EXPECT_FALSE(r.out.empty()) << ::testing::PrintToString(args);
  }
  const std::string info = Run({"info"}).out;
  EXPECT_THAT(info, HasSubstr("drain state:   DRAINING"));
  EXPECT_THAT(info, HasSubstr("api revision:  1\n"));
  EXPECT_THAT(info, HasSubstr("topology:      cluster\n"));
  EXPECT_THAT(info, HasSubstr("capabilities:  pipe request-ids\n"));
  const nlohmann::json json = nlohmann::json::parse(Run({"--json", "info"}).out);
  EXPECT_EQ(json["api_revision"], 1);
  EXPECT_EQ(json["capabilities"]["pipe"], true);
  EXPECT_EQ(json["capabilities"]["session_events"], false);
  EXPECT_EQ(json["capabilities"]["request_ids"], true);
  EXPECT_EQ(json["capabilities"]["topology"], "cluster");
  EXPECT_EQ(nlohmann::json::parse(Run({"--json", "optout", "get", "alice"}).out)["opted_out"],
            true);
}

// --request-id: a script that runs the command again sends the same one;
// without it each run has a fresh one.
TEST_F(StatesidectlTest, CreateAndRegenerateCarryTheRequestIdAskedFor) {
  ASSERT_EQ(Run({"session", "create", "--user", "u", "--request-id", "job-7"}).exit_status, 0);
  EXPECT_EQ(fake_->last_create().request_id(), "job-7");
  ASSERT_EQ(Run({"session", "create", "--user", "u"}).exit_status, 0);
  const std::string fresh = fake_->last_create().request_id();
  EXPECT_EQ(fresh.size(), 32u);
  ASSERT_EQ(Run({"session", "create", "--user", "u"}).exit_status, 0);
  EXPECT_NE(fake_->last_create().request_id(), fresh);
  ASSERT_EQ(Run({"session", "regenerate", "x", "--request-id", "login-7"}).exit_status, 0);
  EXPECT_EQ(fake_->last_regenerate().request_id(), "login-7");
}

TEST_F(StatesidectlTest, CreateAndRegenerateCarryTheSessionLimitAndTheOwner) {
  EXPECT_EQ(Run({"session", "create", "--user", "u", "--max-sessions", "2", "--at-limit",
                 "end_oldest"})
                .exit_status,
            0);
  EXPECT_EQ(fake_->last_create().max_sessions_per_user(), 2u);
  EXPECT_EQ(fake_->last_create().session_limit_policy(), v1::SESSION_LIMIT_POLICY_END_OLDEST);
  EXPECT_EQ(Run({"session", "create", "--user", "u"}).exit_status, 0);
  EXPECT_FALSE(fake_->last_create().has_max_sessions_per_user());
  EXPECT_EQ(fake_->last_create().session_limit_policy(), v1::SESSION_LIMIT_POLICY_UNSPECIFIED);

  // The fake answers owner "alice" whatever is asked, as a sidecar of API
  // revision 1 would: asking for alice passes, asking for bob must not.
  const Result alice = Run({"session", "regenerate", "x", "--user", "alice", "--at-limit",
                            "refuse", "--max-sessions", "5"});
  EXPECT_EQ(alice.exit_status, 0) << alice.err;
  EXPECT_EQ(fake_->last_regenerate().user_id(), "alice");
  EXPECT_EQ(fake_->last_regenerate().max_sessions_per_user(), 5u);
  EXPECT_EQ(fake_->last_regenerate().session_limit_policy(), v1::SESSION_LIMIT_POLICY_REFUSE);
  const Result bob = Run({"session", "regenerate", "x", "--user", "bob"});
  EXPECT_EQ(bob.exit_status, cli::kExitFailed);
  EXPECT_THAT(bob.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_EQ(Run({"session", "regenerate", "x"}).exit_status, 0);
  EXPECT_FALSE(fake_->last_regenerate().has_user_id());

  EXPECT_NE(Run({"session", "create", "--user", "u", "--at-limit", "evict"}).exit_status, 0);
  EXPECT_NE(Run({"session", "create", "--user", "u", "--max-sessions", "0"}).exit_status, 0);
}

TEST_F(StatesidectlTest, HealthNotServingExitsOne) {
  fake_->SetHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  const Result r = Run({"health"});
  EXPECT_EQ(r.exit_status, cli::kExitFailed);
  EXPECT_EQ(r.out, "NOT_SERVING\n");
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
}

TEST(StatesidectlNoSidecarTest, MissingSidecarExitsOneWithUnavailable) {
  ::stateside::testing::TempDir dir;
  const std::string socket = dir.File("absent.sock");
  for (const char* cmd : {"info", "create"}) {
    std::vector<const char*> argv = {"statesidectl", "--socket", socket.c_str()};
    if (std::string(cmd) == "create") {
      argv.insert(argv.end(), {"session", "create", "--user", "u"});
    } else {
      argv.push_back(cmd);
    }
    std::ostringstream out, err;
    EXPECT_EQ(cli::RunStatesidectl(static_cast<int>(argv.size()), argv.data(), out, err),
              cli::kExitFailed);
    EXPECT_THAT(err.str(), StartsWith("statesidectl: UNAVAILABLE: "));
  }
}

}  // namespace
}  // namespace stateside

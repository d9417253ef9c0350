// Key rotation end to end, with real processes: a sidecar on a
// real redis-server with keyring k1 takes sessions and opt-outs; restarted
// with k2,k1, `statesidectl keys rewrap` moves everything to k2; restarted
// with k2 alone, everything is still there.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/admin_port.h"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"

namespace stateside {
namespace {

using testing::Subprocess;

constexpr const char* kSecret = ::stateside::testing::kTestSecret;
constexpr int kItems = 12;

class RotationProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    socket_ = dir_.File("s.sock");
  }

  // Starts the sidecar with SESSION_ENCRYPTION_KEYS = `keys` (replacing a
  // running one) and waits for its admin port.
  void StartSidecar(const std::string& keys, const std::string& token_file = "") {
    sidecar_.reset();
    testing::SubprocessOptions options;
    options.argv = {testing::BinPath("stateside")};
    options.env = {{"STATESIDE_SOCKET", socket_},
                   {"STATESIDE_ADMIN_ADDR", "127.0.0.1:0"},
                   {"SESSION_ENCRYPTION_KEYS", keys},
                   {"SESSION_SECRET", kSecret},
                   {"INSTANCE_ID", "rotation"},
                   {"REDIS_URL", redis_->url()}};
    if (!token_file.empty()) options.env["STATESIDE_ADMIN_TOKEN_FILE"] = token_file;
    options.clear_env = true;
    options.log_path = dir_.File(absl::StrCat("sidecar-", ++starts_, ".log"));
    auto process = Subprocess::Start(options);
    ASSERT_TRUE(process.ok()) << process.status();
    sidecar_ = std::make_unique<Subprocess>(*std::move(process));
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          admin_port_ =
              testing::AdminPortFromLog(sidecar_->ReadLog(), "127.0.0.1").value_or(0);
          return admin_port_ != 0;
        },
        absl::Seconds(20)))
        << sidecar_->ReadLog();
  }

  testing::RunResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinPath("statesidectl"), "--socket", socket_,
                                     "--wait", "20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, {{"STATESIDE_ADMIN_ADDR",
                                absl::StrCat("127.0.0.1:", admin_port_)}},
                        absl::Seconds(60));
  }

  // Every session and opt-out written under k1 reads back as written.
  void ExpectEverythingReadable() {
    for (int i = 0; i < kItems; ++i) {
      testing::RunResult got = Ctl({"--json", "session", "get", ids_[i]});
      ASSERT_EQ(got.exit_status, 0) << got.err << sidecar_->ReadLog();
      nlohmann::json session = nlohmann::json::parse(got.out, nullptr, false);
      EXPECT_EQ(session["user_id"], absl::StrCat("user-", i)) << got.out;
      EXPECT_TRUE(absl::StrContains(got.out, absl::StrCat("[", i, "]"))) << got.out;
      testing::RunResult listed = Ctl({"--json", "session", "list", "--user",
                                       absl::StrCat("user-", i)});
      ASSERT_EQ(listed.exit_status, 0) << listed.err;
      EXPECT_TRUE(absl::StrContains(listed.out, ids_[i])) << listed.out;
      testing::RunResult opted = Ctl({"optout", "get", absl::StrCat("subject-", i)});
      ASSERT_EQ(opted.exit_status, 0) << opted.err;
      EXPECT_EQ(opted.out, absl::StrCat("subject-", i, ": opted out\n"));
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<Subprocess> sidecar_;
  std::string socket_;
  int admin_port_ = 0;
  int starts_ = 0;
  std::vector<std::string> ids_;
  const std::string k1_ = absl::StrCat("k1:", testing::kTestKeyHex);
  const std::string k2_ = absl::StrCat("k2:", testing::kOtherTestKeyHex);
};

TEST_F(RotationProcessTest, WriteUnderK1RotateSweepRemoveK1LosesNothing) {
  StartSidecar(k1_);
  for (int i = 0; i < kItems; ++i) {
    testing::RunResult created =
        Ctl({"--json", "session", "create", "--user", absl::StrCat("user-", i), "--set",
             absl::StrCat("cart=[", i, "]")});
    ASSERT_EQ(created.exit_status, 0) << created.err << sidecar_->ReadLog();
    nlohmann::json session = nlohmann::json::parse(created.out, nullptr, false);
    ASSERT_TRUE(session.is_object() && session["id"].is_string()) << created.out;
    ids_.push_back(session["id"].get<std::string>());
    ASSERT_EQ(Ctl({"optout", "set", absl::StrCat("subject-", i)}).exit_status, 0);
  }

  StartSidecar(absl::StrCat(k2_, ",", k1_));
  testing::RunResult rewrap = Ctl({"keys", "rewrap", "--interval", "100ms"});
  ASSERT_EQ(rewrap.exit_status, 0) << rewrap.out << rewrap.err << sidecar_->ReadLog();
  EXPECT_TRUE(absl::StrContains(rewrap.out, "rewrap to k2: done")) << rewrap.out;
  // Three values per session (the cart, the user id and the metadata seal)
  // and one per opt-out.
  EXPECT_TRUE(absl::StrContains(
      rewrap.out, absl::StrCat("key k1: found ", 4 * kItems, ", rewrapped ", 4 * kItems,
                               ", left 0\n")))
      << rewrap.out;
  testing::RunResult status = Ctl({"--json", "keys", "status"});
  ASSERT_EQ(status.exit_status, 0) << status.err;
  nlohmann::json report = nlohmann::json::parse(status.out, nullptr, false);
  EXPECT_EQ(report["state"], "done") << status.out;
  EXPECT_EQ(report["keys"]["k1"]["left"], 0) << status.out;

  StartSidecar(k2_);
  ExpectEverythingReadable();
}

// Without the sweep, removing k1 loses it all: the test above can fail.
TEST_F(RotationProcessTest, WithoutTheSweepRemovingK1LosesTheSessions) {
  StartSidecar(k1_);
  testing::RunResult created = Ctl({"--json", "session", "create", "--user", "u"});
  ASSERT_EQ(created.exit_status, 0) << created.err;
  const std::string id = nlohmann::json::parse(created.out, nullptr, false)["id"];
  StartSidecar(k2_);
  EXPECT_NE(Ctl({"session", "get", id}).exit_status, 0);
}

// POST /keys/rewrap has the access rule of POST /drain: with an admin token
// configured, even loopback must send it.
TEST_F(RotationProcessTest, KeysRewrapNeedsTheAdminTokenWhenOneIsSet) {
  const std::string token_file =
      dir_.WriteFile("admin-token", "rotation-admin-token-0123456789abcdef\n");
  StartSidecar(k1_, token_file);
  testing::RunResult refused = Ctl({"keys", "rewrap"});
  EXPECT_EQ(refused.exit_status, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "PERMISSION_DENIED")) << refused.err;
  testing::RunResult bad_rate = Ctl({"keys", "rewrap", "--rate", "0"});
  EXPECT_EQ(bad_rate.exit_status, 2) << bad_rate.err;
  testing::RunResult ok = Ctl({"keys", "rewrap", "--admin-token-file", token_file});
  EXPECT_EQ(ok.exit_status, 0) << ok.out << ok.err;
  EXPECT_TRUE(absl::StrContains(ok.out, "rewrap to k1: done")) << ok.out;
}

}  // namespace
}  // namespace stateside

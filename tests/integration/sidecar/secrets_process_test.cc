// The `stateside` binary and its secrets, checked from outside: every
// placeholder the repository ships makes it exit 2 naming the setting; once
// running, its environment no longer holds a secret, it is not dumpable and
// has no core limit, its key pages are excluded from dumps; REDIS_URL_FILE
// reaches a real, password-protected redis-server.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "tests/support/redis_server.h"
#include "tests/support/shipped_secrets.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace health = ::grpc::health::v1;
namespace v1 = ::stateside::v1;

constexpr const char* kSecret = ::stateside::testing::kTestSecret;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class SecretsProcessTest : public ::testing::Test {
 protected:
  // Runs the binary to completion in an empty environment plus `env`.
  testing::RunResult RunSidecar(const std::map<std::string, std::string>& env) {
    std::vector<std::string> argv = {"env", "-i"};
    for (const auto& [k, v] : env) argv.push_back(k + "=" + v);
    argv.push_back(testing::BinPath("stateside"));
    argv.push_back("--socket=" + socket_);
    argv.push_back("--admin-addr=127.0.0.1:0");
    return testing::Run(argv, {}, absl::Seconds(30));
  }

  // Starts the binary (as `argv_prefix` + stateside) and waits until its
  // gRPC health check says SERVING.
  testing::Subprocess Start(std::map<std::string, std::string> env,
                            std::vector<std::string> argv_prefix = {}) {
    env["STATESIDE_ADMIN_ADDR"] = "127.0.0.1:0";
    env["STATESIDE_SOCKET"] = socket_;
    testing::SubprocessOptions options;
    options.argv = std::move(argv_prefix);
    options.argv.push_back(testing::BinPath("stateside"));
    options.env = std::move(env);
    options.clear_env = true;
    options.log_path = dir_.File("sidecar.log");
    auto process = testing::Subprocess::Start(options);
    EXPECT_TRUE(process.ok()) << process.status();
    const bool serving = testing::WaitFor(
        [&] { return !process->running() || Serving(); }, absl::Seconds(20));
    EXPECT_TRUE(serving && process->running())
        << "sidecar did not become ready; log:\n" << process->ReadLog();
    return *std::move(process);
  }

  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  }

  bool Serving() {
    struct stat st {};
    if (lstat(socket_.c_str(), &st) != 0) return false;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    health::HealthCheckResponse response;
    return health::Health::NewStub(Channel())->Check(&context, {}, &response).ok() &&
           response.status() == health::HealthCheckResponse::SERVING;
  }

  testing::TempDir dir_;
  std::string socket_ = dir_.File("stateside.sock");
};

// The shipped example secrets make the sidecar exit 2, each with a message naming the setting it was given as, never the value.
TEST_F(SecretsProcessTest, ShippedExampleSecretsMakeTheSidecarExit2) {
  const auto shipped = testing::ShippedSecretValues();
  ASSERT_GE(shipped.size(), 4u) << "the example Secret was not read";
  for (const testing::ShippedSecret& s : shipped) {
    // How the deployments hand each value to the sidecar.
    std::map<std::string, std::string> env;
    std::string setting;
    if (s.name == "session-encryption-key" || s.name == "SESSION_ENCRYPTION_KEY") {
      setting = "SESSION_ENCRYPTION_KEY_FILE";
      env[setting] = dir_.WriteFile(s.name, s.value + "\n");
    } else if (s.name == "session-secret" || s.name == "SESSION_SECRET") {
      setting = "SESSION_SECRET_FILE";
      env[setting] = dir_.WriteFile(s.name, s.value + "\n");
    } else if (s.name == "redis-url") {
      setting = "REDIS_URL_FILE";
      env[setting] = dir_.WriteFile(s.name, s.value + "\n");
    } else if (s.name == "redis-password" || s.name == "REDIS_PASSWORD") {
      setting = "REDIS_URL";
      env[setting] = "redis://:" + s.value + "@127.0.0.1:6379/0";
    } else {
      ADD_FAILURE() << s.file << ": " << s.name
                    << " is a new example secret: say here how the sidecar reads it";
      continue;
    }
    const testing::RunResult result = RunSidecar(env);
    EXPECT_EQ(result.exit_status, 2) << s.file << " " << s.name << ": " << result.err;
    EXPECT_THAT(result.err, HasSubstr("stateside: " + setting + ": "))
        << s.file << " " << s.name;
    EXPECT_THAT(result.err, Not(HasSubstr(s.value))) << s.file << " " << s.name;
  }
}

// Each refusal rule through the binary: exit 2, the setting named.
TEST_F(SecretsProcessTest, WeakKeysAndSecretsExit2NamingTheSetting) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"SESSION_ENCRYPTION_KEY", std::string(64, '0')},
      {"SESSION_ENCRYPTION_KEY", std::string(64, '7')},
      {"SESSION_ENCRYPTION_KEYS",
       "a:" + std::string(testing::kTestKeyHex) + ",b:" + std::string(64, 'e')},
      {"SESSION_SECRET", std::string(48, 'q')},
      {"SESSION_SECRET", "short-secret"},
      {"SESSION_SECRET", "letmeinletmeinletmeinletmeinletmein"},
  };
  for (const auto& [setting, value] : cases) {
    const testing::RunResult result = RunSidecar({{setting, value}});
    EXPECT_EQ(result.exit_status, 2) << setting << ": " << result.err;
    EXPECT_THAT(result.err, HasSubstr("stateside: " + setting + ": "));
    EXPECT_THAT(result.err, Not(HasSubstr(value)));
  }
  const testing::RunResult both = RunSidecar(
      {{"REDIS_URL", "redis://127.0.0.1:1"},
       {"REDIS_URL_FILE", dir_.WriteFile("url", "redis://127.0.0.1:1")}});
  EXPECT_EQ(both.exit_status, 2) << both.err;
  EXPECT_THAT(both.err, HasSubstr("REDIS_URL: set either REDIS_URL or REDIS_URL_FILE"));
}

// Run as an unprivileged user (nobody) so that /proc shows whether the
// process is dumpable: the files of a non-dumpable process belong to root.
TEST_F(SecretsProcessTest, RunningSidecarHoldsNoSecretInItsEnvironmentAndCannotDump) {
  if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs root and setpriv to run the sidecar as another user";
  }
  auto redis = testing::RedisServer::Start([] {
    testing::RedisServerOptions options;
    options.requirepass = "env-test-redis-password-5d1f8c";
    return options;
  }());
  ASSERT_TRUE(redis.ok()) << redis.status();
  // The sidecar runs as nobody and creates its socket here: writable by all,
  // and sticky, as the socket directory check requires of such a directory.
  ASSERT_EQ(chmod(dir_.path().c_str(), 01777), 0);
  const std::string url = (*redis)->url();
  ASSERT_THAT(url, HasSubstr("env-test-redis-password-5d1f8c"));
  testing::Subprocess sidecar = Start(
      {{"REDIS_URL", url},
       {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
       {"SESSION_SECRET", kSecret},
       {"INSTANCE_ID", "hardening-test"}},
      {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  ASSERT_TRUE(sidecar.running());
  const std::string proc = "/proc/" + std::to_string(sidecar.pid());

  const std::string environ = ReadAll(proc + "/environ");
  EXPECT_THAT(environ, HasSubstr("INSTANCE_ID=hardening-test")) << "environ was read";
  for (const std::string secret :
       {std::string(testing::kTestKeyHex), std::string(kSecret),
        std::string("env-test-redis-password-5d1f8c"), std::string("SESSION_SECRET="),
        std::string("SESSION_ENCRYPTION_KEY="), std::string("REDIS_URL=")}) {
    EXPECT_THAT(environ, Not(HasSubstr(secret)));
  }

  // Not dumpable: /proc/<pid>/ files belong to root although the process
  // runs as 65534.
  struct stat st {};
  ASSERT_EQ(stat((proc + "/environ").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "dumpable: /proc/<pid>/environ belongs to " << st.st_uid;
  EXPECT_THAT(ReadAll(proc + "/status"), HasSubstr("Uid:\t65534"));
  // No core file, soft or hard limit.
  EXPECT_THAT(ReadAll(proc + "/limits"),
              ::testing::ContainsRegex("Max core file size +0 +0 +bytes"));
  // The key pages: at least one mapping excluded from dumps.
  EXPECT_THAT(ReadAll(proc + "/smaps"), ::testing::ContainsRegex("VmFlags:.* dd"));

  sidecar.Signal(SIGTERM);
  EXPECT_EQ(sidecar.Wait(absl::Seconds(20)), 0) << sidecar.ReadLog();
}

TEST_F(SecretsProcessTest, RedisUrlFileReachesAPasswordProtectedRedis) {
  auto redis = testing::RedisServer::Start([] {
    testing::RedisServerOptions options;
    options.requirepass = "url-file-redis-password-93ac1e";
    return options;
  }());
  ASSERT_TRUE(redis.ok()) << redis.status();
  testing::Subprocess sidecar =
      Start({{"REDIS_URL_FILE", dir_.WriteFile("redis-url", (*redis)->url() + "\n")},
             {"USE_REDIS_SESSIONS", "true"},
             {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
             {"SESSION_SECRET", kSecret}});
  ASSERT_TRUE(sidecar.running());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetInstanceResponse instance;
  ASSERT_TRUE(v1::LifecycleService::NewStub(Channel())
                  ->GetInstance(&context, {}, &instance)
                  .ok());
  EXPECT_EQ(instance.instance().backend(), "redis");
  EXPECT_TRUE(instance.instance().ready());
  const std::string log = sidecar.ReadLog();
  EXPECT_THAT(log, HasSubstr("REDIS_URL_FILE="));
  EXPECT_THAT(log, Not(HasSubstr("url-file-redis-password-93ac1e")));
}

}  // namespace
}  // namespace stateside

// deploy/local and deploy/nginx without starting a cluster: the rendered
// local configuration passes `nginx -t`, lists the pods on their derived
// ports and keeps its secrets private; the scripts refuse bad settings with a
// message; nginx's body limit agrees with radar-app's; and the shell scripts
// pass shellcheck (when installed; scripts/test installs it).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace stateside::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string SourceDir() {
  const char* dir = std::getenv("STATESIDE_SOURCE_DIR");
  return dir != nullptr && *dir != '\0' ? dir : ".";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// stateside::testing::Run under another name: inside a test fixture the
// unqualified name would find ::testing::Test::Run.
RunResult Exec(const std::vector<std::string>& argv,
               const std::map<std::string, std::string>& env = {},
               absl::Duration timeout = absl::Seconds(30)) {
  return ::stateside::testing::Run(argv, env, timeout);
}

bool OnPath(const std::string& program) {
  return Exec({"sh", "-c", absl::StrCat("command -v ", program)}).exit_status == 0;
}

int FileMode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

std::string Describe(const RunResult& r) {
  return absl::StrCat("exit ", r.exit_status, "\nstdout:\n", r.out, "\nstderr:\n", r.err);
}

class DeployConfigTest : public ::testing::Test {
 protected:
  // The port only names things in the rendered files: nothing listens.
  static constexpr int kPort = 20080;

  RunResult Script(const std::string& name, const std::vector<std::string>& args,
                   std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {"bash", SourceDir() + "/deploy/local/" + name};
    argv.insert(argv.end(), args.begin(), args.end());
    env.emplace("STATESIDE_LOCAL_DIR", cluster_dir());
    env.emplace("STATESIDE_LOCAL_PORT", std::to_string(kPort));
    return Exec(argv, env, absl::Seconds(60));
  }
  RunResult RenderConfig(int pods) {
    return Script("up.sh", {"--config-only", std::to_string(pods)});
  }

  std::string cluster_dir() const { return tmp_.File("cluster"); }
  std::string nginx_dir() const { return cluster_dir() + "/nginx"; }

  TempDir tmp_;
};

TEST_F(DeployConfigTest, NginxAcceptsTheRenderedLocalConfig) {
  if (!OnPath("nginx")) GTEST_SKIP() << "nginx is not installed (scripts/test installs nginx-light)";
  const RunResult render = RenderConfig(3);
  ASSERT_EQ(render.exit_status, 0) << Describe(render);
  const RunResult check = Exec({"nginx", "-t", "-p", nginx_dir(), "-e", nginx_dir() + "/error.log",
                               "-c", nginx_dir() + "/nginx.conf"});
  EXPECT_EQ(check.exit_status, 0) << Describe(check) << "\n" << ReadFile(nginx_dir() + "/nginx.conf");
  EXPECT_THAT(check.err, HasSubstr("test is successful"));
}

TEST_F(DeployConfigTest, RenderedConfigListsEveryPodOnItsDerivedPort) {
  const RunResult render = RenderConfig(2);
  ASSERT_EQ(render.exit_status, 0) << Describe(render);
  const std::string conf = ReadFile(nginx_dir() + "/nginx.conf");
  EXPECT_THAT(conf, HasSubstr(absl::StrCat("listen 127.0.0.1:", kPort, ";")));
  EXPECT_THAT(conf, HasSubstr(absl::StrCat("server 127.0.0.1:", kPort + 11, " ")));
  EXPECT_THAT(conf, HasSubstr(absl::StrCat("server 127.0.0.1:", kPort + 12, " ")));
  EXPECT_THAT(conf, Not(HasSubstr(absl::StrCat("server 127.0.0.1:", kPort + 13, " "))));
  // Every path nginx writes stays in the cluster directory, so a non-root
  // user can run it and two clusters never share a file.
  for (const char* directive : {"pid", "error_log", "access_log", "client_body_temp_path",
                                "proxy_temp_path"}) {
    EXPECT_THAT(conf, HasSubstr(absl::StrCat(directive, " \"", nginx_dir(), "/")))
        << directive;
  }
  EXPECT_THAT(conf, Not(HasSubstr("/var/")));
}

TEST_F(DeployConfigTest, SecretsAndRedisConfigAreReadableByTheOwnerOnly) {
  const RunResult render = RenderConfig(3);
  ASSERT_EQ(render.exit_status, 0) << Describe(render);
  const std::string secrets = cluster_dir() + "/secrets";
  EXPECT_EQ(FileMode(secrets), 0700);
  for (const char* name : {"encryption_key", "session_secret", "redis_password"}) {
    EXPECT_EQ(FileMode(secrets + "/" + name), 0600) << name;
  }
  EXPECT_EQ(FileMode(cluster_dir() + "/redis/redis.conf"), 0600);
  const std::string key = ReadFile(secrets + "/encryption_key");
  EXPECT_TRUE(std::regex_match(key, std::regex("[0-9a-f]{64}\n"))) << key;
  const std::string password = ReadFile(secrets + "/redis_password");
  EXPECT_THAT(ReadFile(cluster_dir() + "/redis/redis.conf"),
              HasSubstr("requirepass " + password));

  // Generated once: a second start reuses them (sessions encrypted under the
  // key stay readable).
  const RunResult again = RenderConfig(3);
  ASSERT_EQ(again.exit_status, 0) << Describe(again);
  EXPECT_EQ(ReadFile(secrets + "/encryption_key"), key);
  EXPECT_EQ(ReadFile(secrets + "/redis_password"), password);
}

TEST_F(DeployConfigTest, ScriptsRefuseBadSettingsWithAMessage) {
  RunResult r = Script("up.sh", {"0"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.err, HasSubstr("pod count"));

  r = Script("up.sh", {"--config-only"}, {{"STATESIDE_LOCAL_PORT", "http"}});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.err, HasSubstr("STATESIDE_LOCAL_PORT"));

  r = Script("up.sh", {"--app", "php", "--config-only"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.err, HasSubstr("radar or node"));

  TempDir empty_bin;
  r = Script("up.sh", {"1"}, {{"STATESIDE_BIN_DIR", empty_bin.path()}});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.err, HasSubstr("is missing"));

  r = Script("restart.sh", {"pod-x"});
  EXPECT_EQ(r.exit_status, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("no pod"));
}

TEST_F(DeployConfigTest, DownAndStatusWithoutAClusterSayNothingRuns) {
  RunResult down = Script("down.sh", {});
  EXPECT_EQ(down.exit_status, 0) << Describe(down);
  down = Script("down.sh", {});  // safe twice
  EXPECT_EQ(down.exit_status, 0) << Describe(down);
  const RunResult status = Script("status.sh", {});
  EXPECT_EQ(status.exit_status, 1) << Describe(status);
}

// nginx answers 413 for bodies radar-app would refuse, and passes every body
// radar-app accepts: the two limits are the same number.
TEST_F(DeployConfigTest, NginxBodyLimitIsRadarAppsLimit) {
  const std::string conf = ReadFile(SourceDir() + "/deploy/nginx/radar.conf");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(conf, m, std::regex(R"(\nclient_max_body_size (\d+)k;)")));
  const long nginx_limit = std::stol(m[1]) * 1024;
  long app_limit = 16384;  // the contract's default of --max-body-bytes
  const std::string app = BinPath("radar-app");
  if (access(app.c_str(), X_OK) == 0) {
    const RunResult help = Exec({app, "--help"});
    std::smatch d;
    ASSERT_TRUE(std::regex_search(help.out, d, std::regex(R"(--max-body-bytes[^\[=]*(?:=|\[default: )(\d+))")))
        << Describe(help);
    app_limit = std::stol(d[1]);
  }
  EXPECT_EQ(nginx_limit, app_limit);
  EXPECT_THAT(conf, HasSubstr(absl::StrCat("client_body_buffer_size ", nginx_limit / 1024, "k;")));
}

// The deploy scripts are shellcheck-clean at every severity; the other
// scripts at warning and above.
TEST_F(DeployConfigTest, ScriptsPassShellcheck) {
  if (!OnPath("shellcheck")) GTEST_SKIP() << "shellcheck is not installed (scripts/test installs it)";
  const std::string src = SourceDir();
  const RunResult strict = Exec(
      {"bash", "-c", "cd \"$1\" && shellcheck -x deploy/local/*.sh scripts/bench-web", "_", src});
  EXPECT_EQ(strict.exit_status, 0) << strict.out << strict.err;
  const RunResult others = Exec(
      {"bash", "-c",
       "cd \"$1\" && shellcheck -x --severity=warning scripts/lib.sh scripts/run scripts/test "
       "scripts/bench",
       "_", src});
  EXPECT_EQ(others.exit_status, 0) << others.out << others.err;
}

}  // namespace
}  // namespace stateside::testing

// The sidecar binary as operators run it: a process with flags and an
// environment, checked from outside (exit status, stderr, socket file,
// gRPC over the socket, signals).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/support/test_secrets.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunResult;
using testing::Subprocess;
namespace v1 = ::stateside::v1;
namespace health = ::grpc::health::v1;

constexpr const char* kKeyHex = ::stateside::testing::kTestKeyHex;
constexpr const char* kSecret = ::stateside::testing::kTestSecret;

std::unique_ptr<grpc::ClientContext> Context(int seconds = 5) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(seconds));
  return context;
}

bool IsSocket(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

class SidecarProcessTest : public ::testing::Test {
 protected:
  // Runs the binary to completion in an empty environment plus `env`.
  RunResult RunSidecar(const std::map<std::string, std::string>& env,
                       std::vector<std::string> flags = {}) {
    std::vector<std::string> argv = {"env", "-i"};
    for (const auto& [k, v] : env) argv.push_back(k + "=" + v);
    argv.push_back(testing::BinPath("stateside"));
    argv.insert(argv.end(), flags.begin(), flags.end());
    return testing::Run(argv, {}, absl::Seconds(30));
  }

  // Starts the binary with an empty environment plus `env` and waits until
  // its health check says SERVING.
  Subprocess Start(std::map<std::string, std::string> env = {},
                   std::vector<std::string> flags = {}) {
    if (env.count("STATESIDE_SOCKET") == 0) flags.push_back("--socket=" + socket_);
    // The admin listener on a port of its own: tests run in parallel.
    if (env.count("STATESIDE_ADMIN_ADDR") == 0) env["STATESIDE_ADMIN_ADDR"] = "127.0.0.1:0";
    testing::SubprocessOptions options;
    options.argv = {testing::BinPath("stateside")};
    options.argv.insert(options.argv.end(), flags.begin(), flags.end());
    options.env = std::move(env);
    options.clear_env = true;
    options.log_path = dir_.File("sidecar-" + std::to_string(started_++) + ".log");
    auto process = Subprocess::Start(options);
    EXPECT_TRUE(process.ok()) << process.status();
    const bool serving = testing::WaitFor(
        [&] { return !process->running() || Serving(); }, absl::Seconds(20));
    EXPECT_TRUE(serving && process->running())
        << "sidecar did not become ready; log:\n"
        << process->ReadLog();
    return *std::move(process);
  }

  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  }

  bool Serving() {
    if (!IsSocket(socket_)) return false;
    health::HealthCheckResponse response;
    auto context = Context(1);
    const grpc::Status status =
        health::Health::NewStub(Channel())->Check(context.get(), {}, &response);
    return status.ok() && response.status() == health::HealthCheckResponse::SERVING;
  }

  // A create + get round trip through the sidecar.
  void ExpectSessionsWork() {
    auto stub = v1::SessionService::NewStub(Channel());
    v1::CreateSessionRequest create;
    create.set_user_id("alice");
    (*create.mutable_attributes())["cart"] = "[]";
    v1::CreateSessionResponse created;
    ASSERT_TRUE(stub->Create(Context().get(), create, &created).ok());
    v1::GetSessionRequest get;
    get.mutable_key()->set_cookie(created.session().cookie());
    v1::GetSessionResponse got;
    ASSERT_TRUE(stub->Get(Context().get(), get, &got).ok());
    EXPECT_EQ(got.session().attributes().at("cart"), "[]");
  }

  testing::TempDir dir_;
  std::string socket_ = dir_.File("sock/stateside.sock");
  int started_ = 0;
};

TEST_F(SidecarProcessTest, StartsInMemoryModeWithAnEmptyEnvironment) {
  Subprocess sidecar = Start();
  ExpectSessionsWork();
  auto stub = v1::LifecycleService::NewStub(Channel());
  v1::GetInstanceResponse instance;
  ASSERT_TRUE(stub->GetInstance(Context().get(), {}, &instance).ok());
  EXPECT_EQ(instance.instance().pid(), sidecar.pid());
  EXPECT_EQ(instance.instance().backend(), "memory");
  EXPECT_TRUE(instance.instance().ready());
  // hostname-pid-random
  EXPECT_THAT(instance.instance().id(),
              ::testing::MatchesRegex(".*-" + std::to_string(sidecar.pid()) +
                                      "-[0-9a-f]{6}"));
  const std::string log = sidecar.ReadLog();
  EXPECT_THAT(log, HasSubstr("ephemeral key"));
  EXPECT_THAT(log, HasSubstr("[" + instance.instance().id() + "]"));
}

TEST_F(SidecarProcessTest, SocketIsMode0660) {
  Subprocess sidecar = Start();
  struct stat st {};
  ASSERT_EQ(lstat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u) << std::oct << (st.st_mode & 0777);
}

TEST_F(SidecarProcessTest, StaleSocketFileIsReplaced) {
  // What a killed sidecar leaves behind: a socket file nobody listens on.
  {
    Subprocess first = Start();
    first.Kill();  // SIGKILL: no cleanup
  }
  ASSERT_TRUE(IsSocket(socket_));
  ASSERT_FALSE(Serving());
  Subprocess second = Start();
  ExpectSessionsWork();
}

TEST_F(SidecarProcessTest, SecondInstanceOnTheSameSocketExits2) {
  Subprocess first = Start({{"INSTANCE_ID", "first"}});
  const RunResult second =
      RunSidecar({{"INSTANCE_ID", "second"}}, {"--socket", socket_});
  EXPECT_EQ(second.exit_status, 2) << second.err;
  EXPECT_THAT(second.err, HasSubstr("STATESIDE_SOCKET: another process is listening"));
  // The first is unharmed.
  ASSERT_TRUE(first.running());
  auto stub = v1::LifecycleService::NewStub(Channel());
  v1::GetInstanceResponse instance;
  ASSERT_TRUE(stub->GetInstance(Context().get(), {}, &instance).ok());
  EXPECT_EQ(instance.instance().id(), "first");
}

TEST_F(SidecarProcessTest, SocketDirectoryOthersCanWriteExits2) {
  const std::string dir = dir_.File("open");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);  // an emptyDir's mode
  const RunResult r = RunSidecar({{"STATESIDE_ADMIN_ADDR", "127.0.0.1:0"}},
                                 {"--socket", dir + "/stateside.sock"});
  EXPECT_EQ(r.exit_status, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("STATESIDE_SOCKET: directory " + dir +
                               " is writable by others (mode 0777) and not sticky"));
  EXPECT_FALSE(IsSocket(dir + "/stateside.sock"));
}

TEST_F(SidecarProcessTest, SocketDirectoryOfAnotherUserExits2) {
  if (geteuid() != 0) GTEST_SKIP() << "chown to another uid needs root";
  const std::string dir = dir_.File("theirs");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(chown(dir.c_str(), 65534, 65534), 0) << strerror(errno);
  const RunResult r = RunSidecar({{"STATESIDE_ADMIN_ADDR", "127.0.0.1:0"}},
                                 {"--socket", dir + "/stateside.sock"});
  EXPECT_EQ(r.exit_status, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("STATESIDE_SOCKET: directory " + dir + " is owned by uid 65534"));
  EXPECT_FALSE(IsSocket(dir + "/stateside.sock"));
}

// STATESIDE_ALLOWED_UIDS without this test's uid: the sidecar serves, but
// every call of ours, health included, is PERMISSION_DENIED.
TEST_F(SidecarProcessTest, AllowedUidsRefuseEveryCallOfAnotherUid) {
  const std::string us = std::to_string(geteuid());
  testing::SubprocessOptions options;
  options.argv = {testing::BinPath("stateside"), "--socket=" + socket_};
  options.env = {{"STATESIDE_ADMIN_ADDR", "127.0.0.1:0"},
                 {"STATESIDE_ALLOWED_UIDS", std::to_string(geteuid() + 1) + ",65534"}};
  options.clear_env = true;
  options.log_path = dir_.File("refusing.log");
  auto sidecar = Subprocess::Start(options);
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  ASSERT_TRUE(testing::WaitFor(
      [&] { return !sidecar->running() || absl::StrContains(sidecar->ReadLog(), "serving on"); },
      absl::Seconds(20)));
  ASSERT_TRUE(sidecar->running()) << sidecar->ReadLog();

  health::HealthCheckResponse response;
  grpc::Status status =
      health::Health::NewStub(Channel())->Check(Context().get(), {}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("not in the sidecar's STATESIDE_ALLOWED_UIDS"));
  v1::CreateSessionResponse created;
  status = v1::SessionService::NewStub(Channel())->Create(Context().get(), {}, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  // Nor does server reflection describe the API to it (a list_services
  // request, as a unary call: a served reflection would answer it).
  grpc::GenericStub generic(Channel());
  grpc::Slice list_services(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&list_services, 1), reply;
  absl::Notification done;
  auto context = Context();
  generic.UnaryCall(context.get(),
                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                    grpc::StubOptions(), &request, &reply, [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_THAT(sidecar->ReadLog(), HasSubstr("refused a gRPC connection from uid " + us));
}

TEST_F(SidecarProcessTest, AllowedUidsServeTheListedUids) {
  Subprocess sidecar =
      Start({{"STATESIDE_ALLOWED_UIDS", "65534, " + std::to_string(geteuid())}});
  ExpectSessionsWork();
  EXPECT_THAT(sidecar.ReadLog(), HasSubstr("STATESIDE_ALLOWED_UIDS="));
  sidecar.Signal(SIGTERM);
  EXPECT_EQ(sidecar.Wait(absl::Seconds(20)), 0) << sidecar.ReadLog();
  EXPECT_FALSE(IsSocket(socket_)) << "our own listener's socket is removed too";
}

// A real other user (uid 65534) through statesidectl, as root only.
TEST_F(SidecarProcessTest, AllowedUidsRefuseARealOtherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "running a client as uid 65534 needs root (setpriv)";
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/setpriv";
  Subprocess sidecar = Start({{"STATESIDE_ALLOWED_UIDS", "0"}});
  // Let uid 65534 reach the socket: file permissions are not what is tested.
  ASSERT_EQ(chmod(dir_.path().c_str(), 0711), 0);
  ASSERT_EQ(chmod(dir_.File("sock").c_str(), 0751), 0);
  ASSERT_EQ(chmod(socket_.c_str(), 0666), 0);
  const RunResult refused = testing::Run(
      {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
       testing::BinPath("statesidectl"), "--socket", socket_, "info"},
      {}, absl::Seconds(30));
  EXPECT_EQ(refused.exit_status, 1) << refused.out << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("PERMISSION_DENIED")) << refused.err;
  EXPECT_THAT(sidecar.ReadLog(), HasSubstr("refused a gRPC connection from uid 65534"));
  const RunResult allowed = testing::Run(
      {testing::BinPath("statesidectl"), "--socket", socket_, "info"}, {}, absl::Seconds(30));
  EXPECT_EQ(allowed.exit_status, 0) << allowed.err;
}

TEST_F(SidecarProcessTest, InvalidConfigurationExits2NamingTheSetting) {
  const std::string sock = "STATESIDE_SOCKET";
  struct Case {
    std::map<std::string, std::string> env;
    std::vector<std::string> flags;
    std::string setting;
  };
  const std::vector<Case> cases = {
      {{{"SESSION_IDLE_TTL", "forever"}}, {}, "SESSION_IDLE_TTL"},
      {{{"SESSION_ABSOLUTE_TTL", "10"}}, {}, "SESSION_ABSOLUTE_TTL"},
      {{{"SESSION_IDLE_TTL", "2d"}, {"SESSION_ABSOLUTE_TTL", "1d"}}, {}, "SESSION_IDLE_TTL"},
      {{}, {"--session-idle-ttl", "8d"}, "SESSION_IDLE_TTL"},
      {{{"STATESIDE_FALLBACK", "disk"}}, {}, "STATESIDE_FALLBACK"},
      {{{"STATESIDE_LOG_FORMAT", "xml"}}, {}, "STATESIDE_LOG_FORMAT"},
      {{{"STATESIDE_LOG_LEVEL", "chatty"}}, {}, "STATESIDE_LOG_LEVEL"},
      {{{"SESSION_ENCRYPTION_KEY", "abcd"}}, {}, "SESSION_ENCRYPTION_KEY"},
      {{{"SESSION_ENCRYPTION_KEY", kKeyHex},
        {"SESSION_ENCRYPTION_KEYS", std::string("k1:") + kKeyHex}},
       {},
       "SESSION_ENCRYPTION_KEY"},
      {{{"SESSION_SECRET", "too-short"}}, {}, "SESSION_SECRET"},
      {{{"SESSION_SECRET_FILE", "/nonexistent/secret"}}, {}, "SESSION_SECRET_FILE"},
      {{{"SESSION_ENCRYPTION_KEY_FILE", "/nonexistent/key"}},
       {},
       "SESSION_ENCRYPTION_KEY_FILE"},
      {{{"REDIS_URL", "redis://127.0.0.1:6379"}}, {}, "SESSION_ENCRYPTION_KEY"},
      {{{"REDIS_URL", "redis://127.0.0.1:6379"}, {"SESSION_ENCRYPTION_KEY", kKeyHex}},
       {},
       "SESSION_SECRET"},
      {{{"REDIS_URL", "mysql://h"}}, {}, "REDIS_URL"},
      {{{"USE_REDIS_SESSIONS", "true"}}, {}, "USE_REDIS_SESSIONS"},
      {{{"STATESIDE_SHUTDOWN_TIMEOUT", "5s"}}, {}, "STATESIDE_SHUTDOWN_TIMEOUT"},
      {{{sock, "/" + std::string(120, 'x')}}, {}, sock},
      {{{"STATESIDE_ADMIN_ADDR", "nonsense"}}, {}, "STATESIDE_ADMIN_ADDR"},
      {{{"INSTANCE_ID", "with space"}}, {}, "INSTANCE_ID"},
      {{{"STATESIDE_MAX_SESSIONS", "0"}}, {}, "STATESIDE_MAX_SESSIONS"},
      {{{"STATESIDE_REDIS_CONNECTIONS", "many"}}, {}, "STATESIDE_REDIS_CONNECTIONS"},
      {{}, {"--no-such-flag"}, "--no-such-flag"},
  };
  for (const Case& c : cases) {
    std::map<std::string, std::string> env = c.env;
    if (env.count(sock) == 0) env[sock] = socket_;
    const RunResult result = RunSidecar(env, c.flags);
    SCOPED_TRACE(c.setting + " stderr: " + result.err);
    EXPECT_EQ(result.exit_status, 2);
    EXPECT_THAT(result.err, HasSubstr(c.setting));
    // One line, before anything listens.
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1);
    EXPECT_FALSE(IsSocket(socket_));
    EXPECT_THAT(result.err, Not(HasSubstr(kKeyHex)));
  }
}

TEST_F(SidecarProcessTest, HelpListsEverySettingAndItsVariable) {
  const RunResult result = RunSidecar({}, {"--help"});
  ASSERT_EQ(result.exit_status, 0) << result.err;
  for (const char* env :
       {"STATESIDE_SOCKET", "STATESIDE_ADMIN_ADDR", "REDIS_URL",
        "USE_REDIS_SESSIONS", "STATESIDE_FALLBACK", "SESSION_ENCRYPTION_KEY",
        "SESSION_ENCRYPTION_KEYS", "SESSION_ENCRYPTION_KEY_FILE",
        "SESSION_ENCRYPTION_KEYS_FILE", "SESSION_SECRET", "SESSION_SECRET_FILE",
        "SESSION_IDLE_TTL", "SESSION_ABSOLUTE_TTL", "INSTANCE_ID",
        "STATESIDE_PRESTOP_DELAY", "STATESIDE_DRAIN_TIMEOUT",
        "STATESIDE_SHUTDOWN_TIMEOUT", "STATESIDE_LOG_FORMAT",
        "STATESIDE_LOG_LEVEL", "STATESIDE_KEY_PREFIX", "OPT_OUT_TTL",
        "STATESIDE_MAX_SESSIONS", "STATESIDE_MAX_ATTRIBUTES",
        "STATESIDE_MAX_ATTRIBUTE_BYTES", "STATESIDE_MAX_SESSION_BYTES",
        "STATESIDE_REDIS_TLS_CA_FILE", "STATESIDE_REDIS_TLS_CERT_FILE",
        "STATESIDE_REDIS_TLS_KEY_FILE", "STATESIDE_REDIS_TLS_SERVER_NAME",
        "STATESIDE_REDIS_CONNECTIONS", "STATESIDE_REDIS_CONNECT_TIMEOUT",
        "STATESIDE_REDIS_COMMAND_TIMEOUT"}) {
    EXPECT_THAT(result.out, HasSubstr(std::string("(Env:") + env + ")")) << env;
  }
  EXPECT_THAT(result.out, HasSubstr("--redis-url"));
  EXPECT_THAT(result.out, HasSubstr("=24h"));
  const RunResult version = RunSidecar({}, {"--version"});
  EXPECT_EQ(version.exit_status, 0);
  EXPECT_THAT(version.out, ::testing::StartsWith("stateside "));
}

// Writes `bytes` on a new raw connection; returns the fd (still open).
int RawConnect(const std::string& path, const std::string& bytes) {
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  // The server may close on the first bad byte: a short write is fine.
  (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  return fd;
}

TEST_F(SidecarProcessTest, GarbageOnTheSocketNeitherCrashesNorBlocksOthers) {
  Subprocess sidecar = Start();
  std::mt19937 rng(12345);
  std::vector<int> open_fds;
  for (int i = 0; i < 20; ++i) {
    std::string bytes(1 + rng() % 8192, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    close(RawConnect(socket_, bytes));
  }
  // Connections that say too little and then hang around.
  open_fds.push_back(RawConnect(socket_, "PRI * HTTP/2.0\r\n"));
  open_fds.push_back(RawConnect(socket_, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  open_fds.push_back(RawConnect(socket_, std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
                                             std::string(64, '\x7f')));
  open_fds.push_back(RawConnect(socket_, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  open_fds.push_back(RawConnect(socket_, ""));

  ExpectSessionsWork();
  EXPECT_TRUE(sidecar.running());
  for (int fd : open_fds) close(fd);
  ExpectSessionsWork();
  EXPECT_TRUE(sidecar.running());
}

TEST_F(SidecarProcessTest, SigtermExits0AndRemovesTheSocket) {
  Subprocess sidecar = Start();
  ExpectSessionsWork();
  sidecar.Signal(SIGTERM);
  const std::optional<int> status = sidecar.Wait(absl::Seconds(20));
  ASSERT_TRUE(status.has_value()) << "still running; log:\n" << sidecar.ReadLog();
  EXPECT_EQ(*status, 0) << sidecar.ReadLog();
  EXPECT_FALSE(IsSocket(socket_));
  EXPECT_THAT(sidecar.ReadLog(), HasSubstr("SIGTERM"));
}

TEST_F(SidecarProcessTest, SigintExits0Too) {
  Subprocess sidecar = Start();
  sidecar.Signal(SIGINT);
  const std::optional<int> status = sidecar.Wait(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << sidecar.ReadLog();
  EXPECT_FALSE(IsSocket(socket_));
}

TEST_F(SidecarProcessTest, JsonLogsCarryTheInstanceAndNoSecrets) {
  Subprocess sidecar = Start({{"INSTANCE_ID", "json-1"},
                              {"STATESIDE_LOG_FORMAT", "json"},
                              {"STATESIDE_LOG_LEVEL", "debug"},
                              {"SESSION_ENCRYPTION_KEY", kKeyHex},
                              {"SESSION_SECRET", kSecret}});
  ExpectSessionsWork();
  sidecar.Signal(SIGTERM);
  ASSERT_EQ(sidecar.Wait(absl::Seconds(20)), std::optional<int>(0));
  const std::string log = sidecar.ReadLog();
  EXPECT_THAT(log, Not(HasSubstr(kKeyHex)));
  EXPECT_THAT(log, Not(HasSubstr(kSecret)));
  // The settings used and where they came from, secrets as <set>.
  EXPECT_THAT(log, HasSubstr("configuration: "));
  EXPECT_THAT(log, HasSubstr("SESSION_SECRET=<set> (env)"));
  EXPECT_THAT(log, HasSubstr("INSTANCE_ID=json-1 (env)"));
  int lines = 0;
  for (const std::string& line :
       std::vector<std::string>(absl::StrSplit(log, '\n', absl::SkipEmpty()))) {
    const nlohmann::json entry = nlohmann::json::parse(line);  // throws if not
    EXPECT_EQ(entry["instance"], "json-1");
    EXPECT_TRUE(entry.contains("time") && entry.contains("level") &&
                entry.contains("msg"));
    ++lines;
  }
  EXPECT_GE(lines, 2);
}

}  // namespace
}  // namespace stateside

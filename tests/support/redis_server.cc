// RedisServer: a throwaway redis-server process for integration tests.
#include "tests/support/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

// Config values are quoted; test paths and passwords never contain quotes.
std::string Quote(const std::string& s) { return absl::StrCat("\"", s, "\""); }

}  // namespace

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(RedisServerOptions options) {
  std::unique_ptr<RedisServer> server(new RedisServer(std::move(options)));
  if (server->options_.unix_socket) server->unix_path_ = server->dir_.File("redis.sock");
  absl::Status last;
  // PickFreePort can race with another process taking the port: retry.
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = PickFreePort();
    server->tls_port_ = server->options_.tls.enabled ? PickFreePort() : 0;
    if (server->port_ <= 0 || server->tls_port_ < 0) return absl::InternalError("no free port");
    if (server->tls_port_ == server->port_) continue;
    last = server->Launch();
    if (last.ok()) return server;
    if (!absl::StrContains(server->log(), "Address already in use")) break;
  }
  return last;
}

RedisServer::~RedisServer() = default;

absl::Status RedisServer::WriteConfig() const {
  std::ofstream conf(dir_.File("redis.conf"), std::ios::trunc);
  conf << "port " << port_ << "\n"
       << "bind 127.0.0.1\n"
       << "protected-mode no\n"
       << "daemonize no\n"
       << "save \"\"\n"
       << "appendonly no\n"
       << "dir " << Quote(dir_.path()) << "\n"
       << "logfile \"\"\n";
  if (!unix_path_.empty()) {
    conf << "unixsocket " << Quote(unix_path_) << "\nunixsocketperm 700\n";
  }
  if (!options_.requirepass.empty()) conf << "requirepass " << Quote(options_.requirepass) << "\n";
  for (const std::string& user : options_.acl_users) conf << "user " << user << "\n";
  if (options_.tls.enabled) {
    conf << "tls-port " << tls_port_ << "\n"
         << "tls-cert-file " << Quote(options_.tls.cert_file) << "\n"
         << "tls-key-file " << Quote(options_.tls.key_file) << "\n";
    if (!options_.tls.ca_file.empty()) {
      conf << "tls-ca-cert-file " << Quote(options_.tls.ca_file) << "\n";
    }
    conf << "tls-auth-clients " << (options_.tls.require_client_cert ? "yes" : "no") << "\n";
  }
  for (const std::string& line : options_.extra_config) conf << line << "\n";
  conf.close();
  if (!conf) return absl::InternalError("cannot write redis.conf");
  return absl::OkStatus();
}

absl::Status RedisServer::Launch() {
  if (absl::Status s = WriteConfig(); !s.ok()) return s;
  SubprocessOptions sp;
  sp.argv = {"redis-server", dir_.File("redis.conf")};
  // A test that dies (abort, crash, timeout kill) cannot run our destructor:
  // the kernel kills the server with it instead of leaving it behind.
  if (access("/usr/bin/setpriv", X_OK) == 0) {
    sp.argv.insert(sp.argv.begin(), {"/usr/bin/setpriv", "--pdeathsig", "KILL"});
  }
  sp.log_path = dir_.File("redis.log");
  absl::StatusOr<Subprocess> proc = Subprocess::Start(std::move(sp));
  if (!proc.ok()) return proc.status();
  process_.emplace(*std::move(proc));
  bool exited = false;
  const bool ready = WaitFor(
      [&] {
        if (!process_->running()) {
          exited = true;
          return true;
        }
        return Answers();
      },
      options_.start_timeout);
  if (ready && !exited) return absl::OkStatus();
  process_->Kill();
  return absl::UnavailableError(absl::StrCat(
      "redis-server did not become ready", exited ? " (it exited)" : "", "; log:\n", log()));
}

bool RedisServer::Answers() const {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval tv{0, 500 * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    static constexpr char kPing[] = "PING\r\n";
    char buf[64] = {0};
    if (write(fd, kPing, sizeof(kPing) - 1) == static_cast<ssize_t>(sizeof(kPing) - 1)) {
      const ssize_t n = read(fd, buf, sizeof(buf) - 1);
      if (n > 0) {
        const std::string reply(buf, static_cast<size_t>(n));
        ok = absl::StartsWith(reply, "+PONG") || absl::StartsWith(reply, "-NOAUTH");
      }
    }
  }
  close(fd);
  return ok;
}

std::string RedisServer::url() const {
  const std::string cred =
      options_.requirepass.empty() ? "" : absl::StrCat(":", options_.requirepass, "@");
  return absl::StrCat("redis://", cred, "127.0.0.1:", port_);
}

std::string RedisServer::tls_url() const {
  const std::string cred =
      options_.requirepass.empty() ? "" : absl::StrCat(":", options_.requirepass, "@");
  return absl::StrCat("rediss://", cred, "127.0.0.1:", tls_port_);
}

std::string RedisServer::unix_url() const {
  const std::string cred =
      options_.requirepass.empty() ? "" : absl::StrCat(":", options_.requirepass, "@");
  return absl::StrCat("unix://", cred, unix_path_);
}

bool RedisServer::running() { return process_.has_value() && process_->running(); }

void RedisServer::Kill() {
  if (process_.has_value()) process_->Kill();
}

absl::Status RedisServer::Restart() {
  Kill();
  absl::Status last;
  // The old listening socket is gone with the process; SO_REUSEADDR covers
  // TIME_WAIT, but give a slow kernel a few tries.
  for (int attempt = 0; attempt < 5; ++attempt) {
    last = Launch();
    if (last.ok()) return last;
  }
  return last;
}

void RedisServer::Pause() {
  if (process_.has_value()) process_->Signal(SIGSTOP);
}

void RedisServer::Resume() {
  if (process_.has_value()) process_->Signal(SIGCONT);
}

RunResult RedisServer::Cli(const std::vector<std::string>& args, absl::Duration timeout) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (!options_.requirepass.empty()) {
    argv.insert(argv.end(), {"--no-auth-warning", "-a", options_.requirepass});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {}, timeout);
}

std::string RedisServer::log() const {
  std::ifstream in(dir_.File("redis.log"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace stateside::testing

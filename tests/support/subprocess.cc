// Subprocess: fork/exec with the child's output in a log file.
#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace stateside::testing {
namespace {

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<Subprocess> Subprocess::Start(SubprocessOptions options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty argv");
  std::vector<std::string> env_strings;
  if (!options.clear_env) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry(*e);
      std::string key = entry.substr(0, entry.find('='));
      if (options.env.count(key) == 0) env_strings.push_back(entry);
    }
  }
  for (const auto& [k, v] : options.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv;
  for (auto& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  const std::string log = options.log_path.empty() ? "/dev/null" : options.log_path;
  const std::string in = options.stdin_path.empty() ? "/dev/null" : options.stdin_path;
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    int out_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in_fd = open(in.c_str(), O_RDONLY);
    if (out_fd < 0 || in_fd < 0) _exit(127);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    // New process group so a test can signal the child without the runner.
    setpgid(0, 0);
    if (!options.cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int cpu : options.cpus) CPU_SET(cpu, &set);
      if (sched_setaffinity(0, sizeof(set), &set) != 0) _exit(127);
    }
    execvpe(argv[0], argv.data(), envp.data());
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return Subprocess(pid, options.log_path);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(other.pid_),
      exit_status_(other.exit_status_),
      log_path_(std::move(other.log_path_)) {
  other.pid_ = -1;
}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = other.pid_;
    exit_status_ = other.exit_status_;
    log_path_ = std::move(other.log_path_);
    other.pid_ = -1;
  }
  return *this;
}

Subprocess::~Subprocess() { Kill(); }

bool Subprocess::running() {
  if (pid_ < 0 || exit_status_.has_value()) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = DecodeStatus(status);
    return false;
  }
  return true;
}

void Subprocess::Signal(int signo) {
  if (running()) kill(pid_, signo);
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  if (pid_ < 0) return exit_status_;
  const absl::Time deadline = absl::Now() + timeout;
  while (running()) {
    if (absl::Now() >= deadline) return std::nullopt;
    // A child's exit cannot be waited on with a timeout portably; poll.
    absl::SleepFor(absl::Milliseconds(2));
  }
  return exit_status_;
}

void Subprocess::Kill() {
  if (pid_ < 0) return;
  if (running()) {
    kill(pid_, SIGKILL);
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_) exit_status_ = DecodeStatus(status);
  }
  pid_ = -1;
}

std::string Subprocess::ReadLog() const {
  return log_path_.empty() ? "" : ReadFile(log_path_);
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string BinPath(const std::string& name) {
  const char* dir = std::getenv("STATESIDE_BIN_DIR");
  return std::string(dir && *dir ? dir : "build/bin") + "/" + name;
}

RunResult Run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env,
              absl::Duration timeout, const std::string& stdin_data) {
  TempDir dir;
  const std::string out_path = dir.File("out"), err_path = dir.File("err"),
                    in_path = dir.File("in");
  { std::ofstream(in_path, std::ios::binary) << stdin_data; }
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    if (env.count(entry.substr(0, entry.find('='))) == 0) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  RunResult result;
  pid_t pid = fork();
  if (pid < 0) return result;
  if (pid == 0) {
    int in_fd = open(in_path.c_str(), O_RDONLY);
    int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) _exit(127);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execvpe(cargv[0], cargv.data(), envp.data());
    dprintf(2, "exec %s: %s\n", cargv[0], strerror(errno));
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      result.exit_status = DecodeStatus(status);
      break;
    }
    if (absl::Now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

}  // namespace stateside::testing

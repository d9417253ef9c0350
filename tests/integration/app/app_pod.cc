// AppPod: a sidecar + radar-app pair of processes.
#include "tests/integration/app/app_pod.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "stateside/client.h"
#include "tests/support/wait.h"

namespace stateside::testing {

absl::Status AppPod::StartSidecar() {
  const std::string bin = BinPath("stateside");
  struct stat st;
  if (stat(bin.c_str(), &st) != 0) return absl::NotFoundError("not built: " + bin);
  SubprocessOptions options;
  options.argv = {bin};
  options.env = options_.sidecar_env;
  options.env["STATESIDE_SOCKET"] = socket_;
  options.env["STATESIDE_ADMIN_ADDR"] = "127.0.0.1:0";  // tests run in parallel
  options.env["INSTANCE_ID"] = options_.instance_id;
  options.env["STATESIDE_LOG_LEVEL"] = "debug";
  // Some tests see that a request is in flight by the touch its read wrote:
  // every read writes one here (a test may still set its own granularity).
  options.env.try_emplace("STATESIDE_SESSION_TOUCH_GRANULARITY", "0");
  options.clear_env = true;  // no REDIS_URL or the like from the caller
  options.log_path = dir_.File(absl::StrCat("sidecar-", sidecars_started_++, ".log"));
  auto process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  sidecar_ = std::make_unique<Subprocess>(*std::move(process));
  // The client's own readiness wait, as an app uses it.
  ClientOptions client_options;
  client_options.socket_path = socket_;
  client_options.ready_timeout = absl::Seconds(30);
  auto client = Client::Connect(client_options);
  if (!client.ok()) {
    return absl::UnavailableError(absl::StrCat("sidecar not ready: ", client.status().ToString()));
  }
  return absl::OkStatus();
}

absl::Status AppPod::RestartSidecar() { return StartSidecar(); }

absl::StatusOr<std::unique_ptr<AppPod>> AppPod::Start(AppPodOptions options) {
  std::unique_ptr<AppPod> pod(new AppPod(std::move(options)));
  if (absl::Status s = pod->StartSidecar(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(s.message(), "\n", pod->Logs()));
  }
  const std::string bin = BinPath("radar-app");
  struct stat st;
  if (stat(bin.c_str(), &st) != 0) return absl::NotFoundError("not built: " + bin);
  SubprocessOptions app;
  app.argv = {bin, "--listen=127.0.0.1:0", "--socket=" + pod->socket_};
  app.env = pod->options_.app_env;
  app.env["STATESIDE_LOG_LEVEL"] = "debug";
  if (pod->options_.insecure_cookie) {
    app.env.emplace("RADAR_COOKIE_SECURE", "false");
  } else {
    pod->cookie_name_ = "__Host-radar_sid";
  }
  if (auto it = app.env.find("RADAR_COOKIE_NAME"); it != app.env.end()) {
    pod->cookie_name_ = it->second;
  }
  for (const std::string& flag : pod->options_.app_flags) {
    app.argv.push_back(flag);
    if (flag.rfind("--cookie-name=", 0) == 0) pod->cookie_name_ = flag.substr(14);
  }
  app.clear_env = true;
  app.log_path = pod->dir_.File("app.log");
  auto process = Subprocess::Start(app);
  if (!process.ok()) return process.status();
  pod->app_ = std::make_unique<Subprocess>(*std::move(process));
  // The contract's line: "radar-app listening on <host>:<port> as <instance>".
  const std::regex listening("radar-app listening on 127\\.0\\.0\\.1:([0-9]+) as (\\S+)");
  std::smatch match;
  std::string log;
  const bool up = WaitFor(
      [&] {
        log = pod->app_->ReadLog();
        return std::regex_search(log, match, listening) || !pod->app_->running();
      },
      absl::Seconds(30));
  if (!up || match.empty()) {
    return absl::UnavailableError(absl::StrCat("radar-app did not start\n", pod->Logs()));
  }
  pod->port_ = std::stoi(match[1].str());
  if (match[2].str() != pod->options_.instance_id) {
    return absl::InternalError(absl::StrCat("listening line names instance ", match[2].str()));
  }
  return pod;
}

AppPod::~AppPod() = default;  // ~Subprocess kills and reaps

std::string AppPod::Logs() const {
  std::string out;
  if (sidecar_) absl::StrAppend(&out, "--- sidecar log ---\n", sidecar_->ReadLog());
  if (app_) absl::StrAppend(&out, "--- radar-app log ---\n", app_->ReadLog());
  return out;
}

absl::StatusOr<HttpResponse> AppPod::Call(
    std::string method, std::string target, std::string body,
    std::vector<std::pair<std::string, std::string>> headers, absl::Duration timeout) const {
  HttpRequest request;
  request.method = std::move(method);
  request.target = std::move(target);
  request.body = std::move(body);
  request.headers = std::move(headers);
  const bool typed = std::any_of(request.headers.begin(), request.headers.end(),
                                 [](const auto& h) { return absl::EqualsIgnoreCase(h.first, "Content-Type"); });
  if (request.method == "POST" && !typed) {
    request.headers.emplace_back("Content-Type", "application/json");
  }
  return HttpCall(port_, request, timeout);
}

std::string AppPod::origin() const { return absl::StrCat("http://127.0.0.1:", port_); }

absl::StatusOr<std::pair<std::string, std::string>> AppPod::Login(const std::string& user) const {
  auto response = Call("POST", "/login", nlohmann::json{{"user", user}}.dump());
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::InternalError(absl::StrCat("login: ", response->status, " ", response->body));
  }
  std::optional<std::string> cookie = response->Cookie(cookie_name_);
  if (!cookie.has_value() || cookie->empty()) {
    return absl::InternalError("login: no " + cookie_name_ + " cookie");
  }
  return std::make_pair(std::string("Cookie"), cookie_name_ + "=" + *cookie);
}

nlohmann::json Body(const HttpResponse& response) {
  nlohmann::json parsed = nlohmann::json::parse(response.body, nullptr, false);
  return parsed.is_discarded() ? nlohmann::json() : parsed;
}

std::string UniqueUser(const std::string& base) {
  static std::atomic<int> counter{0};
  return absl::StrCat(base, "-", getpid(), "-", counter++);
}

int RawConnect(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

std::string RawRead(int fd, absl::Duration timeout, const std::string& until) {
  std::string out;
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

}  // namespace stateside::testing

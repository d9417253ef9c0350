// AppPod: one real `stateside` sidecar (embedded memory store, socket in a
// private temp dir) and one `radar-app` in front of it, as processes — a
// pod on loopback. Helpers to log in and to read JSON bodies.
// Not thread-safe: owned by one test (or one suite), used from its thread;
// the Http helpers only read constant fields and may run on many threads.
#ifndef STATESIDE_TESTS_INTEGRATION_APP_APP_POD_H_
#define STATESIDE_TESTS_INTEGRATION_APP_APP_POD_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/web_client.h"

namespace stateside::testing {

struct AppPodOptions {
  std::string instance_id = "app-test";
  std::vector<std::string> app_flags;  // e.g. "--test-hooks"
  std::map<std::string, std::string> app_env;  // e.g. RADAR_COOKIE_NAME
  std::map<std::string, std::string> sidecar_env;
  // Plain http on loopback: RADAR_COOKIE_SECURE=false (cookie radar_sid)
  // unless the test wants radar-app's own default.
  bool insecure_cookie = true;
};

inline AppPodOptions PodOptions(std::string instance_id, std::vector<std::string> app_flags = {},
                                std::map<std::string, std::string> app_env = {}) {
  AppPodOptions options;
  options.instance_id = std::move(instance_id);
  options.app_flags = std::move(app_flags);
  options.app_env = std::move(app_env);
  return options;
}

class AppPod {
 public:
  // Starts the sidecar, waits until it serves, starts radar-app on
  // 127.0.0.1:0 and waits for its "listening on" line (which names the
  // port). The error carries both logs.
  static absl::StatusOr<std::unique_ptr<AppPod>> Start(AppPodOptions options = {});
  ~AppPod();  // kills what is still running

  int port() const { return port_; }
  const std::string& instance() const { return options_.instance_id; }
  const std::string& socket_path() const { return socket_; }
  const std::string& cookie_name() const { return cookie_name_; }
  Subprocess& sidecar() { return *sidecar_; }
  Subprocess& app() { return *app_; }
  // Both logs, for failure messages.
  std::string Logs() const;

  // Starts a new sidecar on the same socket (after the old one died).
  absl::Status RestartSidecar();

  // POST /login for `user`: the cookie header pair to send afterwards.
  absl::StatusOr<std::pair<std::string, std::string>> Login(const std::string& user) const;
  // The origin radar-app serves by default ("http://127.0.0.1:<port>").
  std::string origin() const;
  // One request on a fresh connection. A POST gets `Content-Type:
  // application/json` unless `headers` names a Content-Type.
  absl::StatusOr<HttpResponse> Call(
      std::string method, std::string target, std::string body = "",
      std::vector<std::pair<std::string, std::string>> headers = {},
      absl::Duration timeout = absl::Seconds(10)) const;

 private:
  explicit AppPod(AppPodOptions options) : options_(std::move(options)) {}
  absl::Status StartSidecar();

  AppPodOptions options_;
  TempDir dir_;
  std::string socket_ = dir_.File("sock/stateside.sock");
  std::string cookie_name_ = "radar_sid";
  int port_ = 0;
  int sidecars_started_ = 0;
  std::unique_ptr<Subprocess> sidecar_;
  std::unique_ptr<Subprocess> app_;
};

// The body as JSON (null JSON if it is not JSON).
nlohmann::json Body(const HttpResponse& response);
// A user id no other test uses.
std::string UniqueUser(const std::string& base);

// Raw TCP, for what an HTTP client library would not send: connects to
// 127.0.0.1:port and writes `bytes`; the socket, or -1.
int RawConnect(int port, const std::string& bytes);
// Reads from `fd` until the peer closes it, `until` (if not empty) has
// arrived, or `timeout` passes; returns what came.
std::string RawRead(int fd, absl::Duration timeout, const std::string& until = "");

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_INTEGRATION_APP_APP_POD_H_

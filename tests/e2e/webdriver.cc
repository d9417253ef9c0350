// WebDriver: chromedriver's W3C HTTP API through the tests' HTTP client.
#include "tests/e2e/webdriver.h"

#include <signal.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/support/wait.h"
#include "tests/support/web_client.h"

namespace stateside::testing {
namespace {

// The W3C name of an element reference in JSON.
constexpr char kElementKey[] = "element-6066-11e4-a52e-4f735466cecf";
// Starting Chromium (session creation) takes seconds, more on a busy
// 2-core machine; other commands are quick.
constexpr absl::Duration kCommandTimeout = absl::Seconds(60);

}  // namespace

absl::StatusOr<std::unique_ptr<WebDriver>> WebDriver::Start(const std::string& chromedriver,
                                                            const std::string& chromium,
                                                            const std::string& user_data_dir,
                                                            const std::string& log_path) {
  const int port = PickFreePort();
  SubprocessOptions options;
  options.argv = {chromedriver, absl::StrCat("--port=", port)};
  options.log_path = log_path;
  auto process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  std::unique_ptr<WebDriver> driver(new WebDriver(*std::move(process), port));

  const bool ready = WaitFor(
      [&] {
        auto status = driver->Call("GET", "/status");
        return status.ok() && status->value("ready", false);
      },
      absl::Seconds(20), absl::Milliseconds(50));
  if (!ready) {
    return absl::UnavailableError(
        absl::StrCat("chromedriver on port ", port, " never ready; log:\n", driver->ReadLog()));
  }

  const nlohmann::json capabilities = {
      {"capabilities",
       {{"alwaysMatch",
         {{"browserName", "chrome"},
          {"goog:chromeOptions",
           {{"binary", chromium},
            {"args",
             {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              absl::StrCat("--user-data-dir=", user_data_dir)}}}}}}}}};
  auto session = driver->Call("POST", "/session", capabilities);
  if (!session.ok()) {
    return absl::Status(session.status().code(),
                        absl::StrCat("new session: ", session.status().message(),
                                     "\nchromedriver log:\n", driver->ReadLog()));
  }
  const std::string id = session->value("sessionId", "");
  if (id.empty()) return absl::InternalError("no sessionId in " + session->dump());
  driver->session_ = id;
  return driver;
}

WebDriver::~WebDriver() {
  (void)Quit();
  const pid_t group = process_.pid();  // chromedriver leads its own group
  process_.Signal(SIGTERM);
  if (!process_.Wait(absl::Seconds(10)).has_value()) process_.Kill();
  // Browser processes left behind (a failed Quit) are still in the group.
  if (group > 0) ::kill(-group, SIGKILL);
}

absl::Status WebDriver::Navigate(const std::string& url) {
  return Call("POST", SessionPath("/url"), {{"url", url}}).status();
}

absl::StatusOr<nlohmann::json> WebDriver::Execute(const std::string& script,
                                                  const nlohmann::json& args) {
  return Call("POST", SessionPath("/execute/sync"), {{"script", script}, {"args", args}});
}

absl::StatusOr<std::string> WebDriver::Find(const std::string& css) {
  auto found =
      Call("POST", SessionPath("/element"), {{"using", "css selector"}, {"value", css}});
  if (!found.ok()) return found.status();
  const std::string id = found->value(kElementKey, "");
  if (id.empty()) return absl::InternalError("no element reference in " + found->dump());
  return id;
}

absl::Status WebDriver::Clear(const std::string& element) {
  return Call("POST", SessionPath("/element/" + element + "/clear"), nlohmann::json::object())
      .status();
}

absl::Status WebDriver::Type(const std::string& element, const std::string& text) {
  return Call("POST", SessionPath("/element/" + element + "/value"), {{"text", text}}).status();
}

absl::Status WebDriver::Click(const std::string& element) {
  return Call("POST", SessionPath("/element/" + element + "/click"), nlohmann::json::object())
      .status();
}

absl::StatusOr<std::string> WebDriver::Text(const std::string& element) {
  auto text = Call("GET", SessionPath("/element/" + element + "/text"));
  if (!text.ok()) return text.status();
  if (!text->is_string()) return absl::InternalError("text is not a string: " + text->dump());
  return text->get<std::string>();
}

absl::StatusOr<std::string> WebDriver::Screenshot() {
  auto encoded = Call("GET", SessionPath("/screenshot"));
  if (!encoded.ok()) return encoded.status();
  std::string png;
  if (!encoded->is_string() || !absl::Base64Unescape(encoded->get<std::string>(), &png)) {
    return absl::InternalError("the screenshot is not base64 text");
  }
  return png;
}

absl::Status WebDriver::SetWindowSize(int width, int height) {
  return Call("POST", SessionPath("/window/rect"), {{"width", width}, {"height", height}})
      .status();
}

std::string WebDriver::PageSource() {
  auto source = Call("GET", SessionPath("/source"));
  if (!source.ok()) return source.status().ToString();
  return source->is_string() ? source->get<std::string>() : source->dump();
}

absl::Status WebDriver::Quit() {
  if (!session_.has_value()) return absl::OkStatus();
  absl::Status status = Call("DELETE", SessionPath("")).status();
  session_.reset();
  return status;
}

std::string WebDriver::SessionPath(const std::string& rest) const {
  return absl::StrCat("/session/", session_.value_or("none"), rest);
}

absl::StatusOr<nlohmann::json> WebDriver::Call(const std::string& method,
                                               const std::string& path,
                                               const nlohmann::json& body) {
  HttpRequest request;
  request.method = method;
  request.target = path;
  if (!body.is_null()) request.body = body.dump();
  auto response = HttpCall(port_, request, kCommandTimeout);
  if (!response.ok()) {
    return absl::Status(response.status().code(),
                        absl::StrCat(method, " ", path, ": ", response.status().message()));
  }
  const nlohmann::json json = nlohmann::json::parse(response->body, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("value")) {
    return absl::InternalError(absl::StrCat(method, " ", path, ": ", response->status,
                                            " not a WebDriver answer: ", response->body));
  }
  const nlohmann::json& value = json["value"];
  if (response->status != 200) {
    const std::string error = value.is_object() ? value.value("error", "") : "";
    const std::string message = value.is_object() ? value.value("message", "") : value.dump();
    return absl::UnknownError(absl::StrCat(method, " ", path, ": ", response->status, " ",
                                           error, ": ", message));
  }
  return value;
}

}  // namespace stateside::testing

// A minimal W3C WebDriver client for the browser check: starts chromedriver,
// opens one headless Chromium session, and drives it (navigate, find, type,
// click, read text, screenshots) over chromedriver's HTTP API.
// Not thread-safe: one owner.
#ifndef STATESIDE_TESTS_E2E_WEBDRIVER_H_
#define STATESIDE_TESTS_E2E_WEBDRIVER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/support/subprocess.h"

namespace stateside::testing {

class WebDriver {
 public:
  // Starts `chromedriver` on a free port (its log in `log_path`), waits for
  // its /status to say ready, and creates a session of headless `chromium`
  // with its profile in `user_data_dir`.
  static absl::StatusOr<std::unique_ptr<WebDriver>> Start(const std::string& chromedriver,
                                                          const std::string& chromium,
                                                          const std::string& user_data_dir,
                                                          const std::string& log_path);
  ~WebDriver();  // deletes the session, stops chromedriver

  absl::Status Navigate(const std::string& url);
  // The element id of the first match of a CSS selector.
  absl::StatusOr<std::string> Find(const std::string& css);
  // Empties an input.
  absl::Status Clear(const std::string& element);
  absl::Status Type(const std::string& element, const std::string& text);
  absl::Status Click(const std::string& element);
  // Runs `script` (a function body; `arguments` holds `args`) in the page;
  // what it returns.
  absl::StatusOr<nlohmann::json> Execute(const std::string& script,
                                         const nlohmann::json& args = nlohmann::json::array());
  // The element's rendered text.
  absl::StatusOr<std::string> Text(const std::string& element);
  // A PNG of the window as it is now (the bytes, decoded).
  absl::StatusOr<std::string> Screenshot();
  // Resizes the window (CSS pixels): what a screenshot covers.
  absl::Status SetWindowSize(int width, int height);
  // The page's HTML as it is now (for failure messages).
  std::string PageSource();
  // Ends the browser session (once).
  absl::Status Quit();
  std::string ReadLog() const { return process_.ReadLog(); }

 private:
  WebDriver(Subprocess process, int port) : process_(std::move(process)), port_(port) {}
  // A WebDriver command: the response's "value", or the W3C error as status.
  absl::StatusOr<nlohmann::json> Call(const std::string& method, const std::string& path,
                                      const nlohmann::json& body = nullptr);
  std::string SessionPath(const std::string& rest) const;

  Subprocess process_;
  const int port_;
  std::optional<std::string> session_;  // set between session creation and Quit
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_E2E_WEBDRIVER_H_

// The fixture of the browser checks: a local cluster of three pods (nginx in
// front) and one headless Chromium driven through chromedriver, with the
// waits the checks share (an element's text shows a needle, typing,
// clicking) and screenshots. Skips when chromedriver is missing.
// Not thread-safe: the test's thread only.
#ifndef STATESIDE_TESTS_E2E_BROWSER_FIXTURE_H_
#define STATESIDE_TESTS_E2E_BROWSER_FIXTURE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/webdriver.h"
#include "tests/support/temp_dir.h"

namespace stateside::testing {

class BrowserE2eTest : public ::testing::Test {
 protected:
  static constexpr int kPods = 3;

  void SetUp() override;
  void TearDown() override;

  // Waits until `css`'s text contains `needle`; the last text seen otherwise.
  ::testing::AssertionResult TextShows(const std::string& css, const std::string& needle,
                                       absl::Duration timeout = absl::Seconds(15));
  // `css`'s text now ("" if there is no such element).
  std::string TextOf(const std::string& css);
  // Replaces the value of the input `css` with `text`, as typed.
  absl::Status TypeInto(const std::string& css, const std::string& text);
  absl::Status ClickOn(const std::string& css);
  // Saves a PNG of the window as `name` (e.g. "radar-page.png"): into
  // docs/images/ of the source tree when STATESIDE_UPDATE_SCREENSHOTS=1 (the
  // README's tour shows them), else into the test's temporary directory.
  // Either way the file must be a PNG.
  absl::Status Screenshot(const std::string& name);

  TempDir dir_;
  TempDir profile_;  // Chromium's --user-data-dir
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<WebDriver> driver_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_E2E_BROWSER_FIXTURE_H_

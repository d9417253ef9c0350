// The browser checks' fixture: cluster + Chromium, waits and screenshots.
#include "tests/e2e/browser_fixture.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

constexpr char kChromedriver[] = "/usr/bin/chromedriver";
constexpr char kChromium[] = "/usr/bin/chromium";
constexpr char kPngSignature[] = "\x89PNG\r\n\x1a\n";

}  // namespace

void BrowserE2eTest::SetUp() {
  if (access(kChromedriver, X_OK) != 0) {
    GTEST_SKIP() << kChromedriver << " is missing: install the Debian packages chromium "
                 << "and chromium-driver (scripts/test does) to run the browser check";
  }
  auto cluster = LocalCluster::Start(kPods);
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  cluster_ = *std::move(cluster);
  auto driver = WebDriver::Start(kChromedriver, kChromium, profile_.path(),
                                 dir_.File("chromedriver.log"));
  ASSERT_TRUE(driver.ok()) << driver.status().message();
  driver_ = *std::move(driver);
}

void BrowserE2eTest::TearDown() {
  if (HasFailure() && driver_ != nullptr) {
    fprintf(stderr, "[e2e] page:\n%s\n[e2e] chromedriver log:\n%s\n",
            driver_->PageSource().c_str(), driver_->ReadLog().c_str());
  }
  if (HasFailure() && cluster_ != nullptr) {
    fprintf(stderr, "[e2e] logs after the failure:\n%s", cluster_->LogTails().c_str());
  }
  if (driver_ != nullptr) {
    const absl::Status quit = driver_->Quit();
    EXPECT_TRUE(quit.ok()) << quit;
    driver_.reset();
  }
  if (cluster_ != nullptr) StopAndCheck(*cluster_);
}

::testing::AssertionResult BrowserE2eTest::TextShows(const std::string& css,
                                                     const std::string& needle,
                                                     absl::Duration timeout) {
  std::string last;
  const bool shown = WaitFor(
      [&] {
        auto element = driver_->Find(css);
        if (!element.ok()) {
          last = element.status().ToString();
          return false;
        }
        auto text = driver_->Text(*element);
        last = text.ok() ? *text : text.status().ToString();
        return text.ok() && absl::StrContains(*text, needle);
      },
      timeout, absl::Milliseconds(100));
  if (shown) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << css << " never showed '" << needle << "'; last: '" << last << "'";
}

std::string BrowserE2eTest::TextOf(const std::string& css) {
  auto element = driver_->Find(css);
  if (!element.ok()) return "";
  auto text = driver_->Text(*element);
  return text.ok() ? *text : "";
}

absl::Status BrowserE2eTest::TypeInto(const std::string& css, const std::string& text) {
  auto element = driver_->Find(css);
  if (!element.ok()) return element.status();
  absl::Status cleared = driver_->Clear(*element);
  return cleared.ok() ? driver_->Type(*element, text) : cleared;
}

absl::Status BrowserE2eTest::ClickOn(const std::string& css) {
  auto element = driver_->Find(css);
  return element.ok() ? driver_->Click(*element) : element.status();
}

absl::Status BrowserE2eTest::Screenshot(const std::string& name) {
  absl::StatusOr<std::string> png = driver_->Screenshot();
  if (!png.ok()) return png.status();
  if (!absl::StartsWith(*png, std::string(kPngSignature, 8))) {
    return absl::InternalError(absl::StrCat(name, ": the screenshot is not a PNG"));
  }
  const char* update = std::getenv("STATESIDE_UPDATE_SCREENSHOTS");
  const std::string path = update != nullptr && std::string(update) == "1"
                               ? SourcePath("docs/images/" + name)
                               : dir_.File(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << *png;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  fprintf(stderr, "[e2e] screenshot %s (%zu bytes)\n", path.c_str(), png->size());
  return absl::OkStatus();
}

}  // namespace stateside::testing

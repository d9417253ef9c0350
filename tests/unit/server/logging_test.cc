// The two log formats, each line carrying the instance id.
#include "sidecar/server/logging.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spdlog/sinks/ostream_sink.h"

namespace stateside {
namespace {

using ::testing::ContainsRegex;
using ::testing::MatchesRegex;

class LoggingTest : public ::testing::Test {
 protected:
  std::shared_ptr<spdlog::logger> Make(LogFormat format, const std::string& level,
                                       const std::string& instance) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = MakeLogger(format, level, instance, sink);
    EXPECT_TRUE(logger.ok()) << logger.status();
    return logger.ok() ? *logger : nullptr;
  }
  std::vector<std::string> Lines() {
    std::vector<std::string> lines =
        absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
    return lines;
  }
  std::ostringstream out_;
};

TEST_F(LoggingTest, TextLinesCarryTimeLevelAndInstance) {
  auto logger = Make(LogFormat::kText, "info", "pod-1");
  logger->info("hello {}", "world");
  logger->warn("careful");
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0],
              MatchesRegex(R"(\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:)"
                           R"([0-9]{2}\.[0-9]{3}Z\] \[INFO\] \[pod-1\] hello world)"));
  EXPECT_THAT(lines[1], ContainsRegex(R"(\] \[WARN\] \[pod-1\] careful$)"));
}

TEST_F(LoggingTest, InstanceIdIsNeverReadAsAPattern) {
  auto logger = Make(LogFormat::kText, "info", "id-%v-%l");
  logger->info("msg");
  ASSERT_EQ(Lines().size(), 1u);
  EXPECT_THAT(Lines()[0], ContainsRegex(R"(\[id-%v-%l\] msg$)"));
}

TEST_F(LoggingTest, LevelFiltersLowerLevels) {
  auto logger = Make(LogFormat::kText, "warn", "i");
  logger->info("hidden");
  logger->debug("hidden");
  logger->error("shown");
  ASSERT_EQ(Lines().size(), 1u);
  EXPECT_THAT(Lines()[0], ContainsRegex(R"(\[ERROR\] \[i\] shown$)"));
}

TEST_F(LoggingTest, UnknownLevelIsRefused) {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
  EXPECT_FALSE(MakeLogger(LogFormat::kText, "loud", "i", sink).ok());
}

TEST_F(LoggingTest, JsonLinesAreObjectsWithEscapedMessages) {
  auto logger = Make(LogFormat::kJson, "debug", "pod-2");
  logger->info("plain");
  logger->debug("quote \" backslash \\ newline \n tab \t end");
  logger->error(std::string("bad utf8 \xff\xfe here"));
  const auto lines = Lines();
  ASSERT_EQ(lines.size(), 3u);  // the newline in a message stays escaped
  std::vector<nlohmann::json> parsed;
  for (const std::string& line : lines) {
    parsed.push_back(nlohmann::json::parse(line));  // throws if not JSON
  }
  EXPECT_EQ(parsed[0]["level"], "info");
  EXPECT_EQ(parsed[0]["instance"], "pod-2");
  EXPECT_EQ(parsed[0]["msg"], "plain");
  EXPECT_THAT(parsed[0]["time"].get<std::string>(),
              MatchesRegex(R"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z)"));
  EXPECT_EQ(parsed[1]["level"], "debug");
  EXPECT_EQ(parsed[1]["msg"], "quote \" backslash \\ newline \n tab \t end");
  EXPECT_EQ(parsed[2]["level"], "error");
  EXPECT_THAT(parsed[2]["msg"].get<std::string>(), ContainsRegex("^bad utf8 .* here$"));
}

}  // namespace
}  // namespace stateside

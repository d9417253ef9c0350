// The value syntaxes of the configuration.
#include "sidecar/server/config_values.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace stateside::config_values {
namespace {

TEST(ConfigValuesTest, DurationsTakeEveryUnitIncludingDays) {
  EXPECT_EQ(*ParseDuration("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDuration("0s"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDuration("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseDuration("30s"), absl::Seconds(30));
  EXPECT_EQ(*ParseDuration("15m"), absl::Minutes(15));
  EXPECT_EQ(*ParseDuration("24h"), absl::Hours(24));
  EXPECT_EQ(*ParseDuration("7d"), absl::Hours(168));
  EXPECT_EQ(*ParseDuration("0.5d"), absl::Hours(12));
  EXPECT_EQ(*ParseDuration("1d2h3m"), absl::Hours(26) + absl::Minutes(3));
  EXPECT_EQ(*ParseDuration(" 1h30m "), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("36500d"), absl::Hours(24 * 36500));
}

TEST(ConfigValuesTest, MalformedDurationsAreRefused) {
  for (const char* bad : {"", " ", "10", "s", "d", "1x", "1dd", "-1s", "+1s",
                          "1.2.3s", "inf", "1h 30m", "1e9d", "36501d",
                          "99999999999999999999h"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(ConfigValuesTest, BooleansAcceptCommonSpellings) {
  for (const char* yes : {"true", "TRUE", "1", "yes", "on"}) {
    EXPECT_TRUE(*ParseBool(yes)) << yes;
  }
  for (const char* no : {"false", "False", "0", "no", "off"}) {
    EXPECT_FALSE(*ParseBool(no)) << no;
  }
  EXPECT_FALSE(ParseBool("2").ok());
  EXPECT_FALSE(ParseBool("").ok());
}

TEST(ConfigValuesTest, IntegersAreRangeChecked) {
  EXPECT_EQ(*ParseInt("42", 1, 100), 42);
  EXPECT_FALSE(ParseInt("0", 1, 100).ok());
  EXPECT_FALSE(ParseInt("101", 1, 100).ok());
  EXPECT_FALSE(ParseInt("+5", 1, 100).ok());
  EXPECT_FALSE(ParseInt("5k", 1, 100).ok());
  EXPECT_FALSE(ParseInt("", 1, 100).ok());
}

TEST(ConfigValuesTest, HostPortHandlesNamesV4AndBracketedV6) {
  auto hp = ParseHostPort("example.com:80");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "example.com");
  EXPECT_EQ(hp->port, 80);
  hp = ParseHostPort("[fe80::1]:9464");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "fe80::1");
  EXPECT_FALSE(ParseHostPort("[]:1").ok());
  EXPECT_FALSE(ParseHostPort("h:1:2").ok());
}

TEST(ConfigValuesTest, MaskRedisUrlHidesThePassword) {
  EXPECT_EQ(MaskRedisUrl("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
  EXPECT_EQ(MaskRedisUrl("redis://:secret@h"), "redis://:***@h");
  EXPECT_EQ(MaskRedisUrl("redis://secret@h"), "redis://***@h");
  EXPECT_EQ(MaskRedisUrl("redis://h:1"), "redis://h:1");
  EXPECT_EQ(MaskRedisUrl("unix:///x"), "unix:///x");
}

TEST(ConfigValuesTest, SplitListTrimsAndRefusesEmptyItems) {
  EXPECT_THAT(*SplitList("a, b ,c"), ::testing::ElementsAre("a", "b", "c"));
  EXPECT_FALSE(SplitList("a,,b").ok());
  EXPECT_FALSE(SplitList("a,").ok());
  EXPECT_FALSE(SplitList("").ok());
}

TEST(ConfigValuesTest, SecretFilesAreTrimmedAndBounded) {
  testing::TempDir dir;
  const std::string path = dir.File("s");
  std::ofstream(path) << "  the-secret\n\n";
  EXPECT_EQ(*ReadSecretFile(path), "the-secret");
  EXPECT_FALSE(ReadSecretFile(dir.File("absent")).ok());
  EXPECT_FALSE(ReadSecretFile(dir.path()).ok());
  // A device that never ends must not hang the start.
  EXPECT_FALSE(ReadSecretFile("/dev/zero").ok());
}

}  // namespace
}  // namespace stateside::config_values

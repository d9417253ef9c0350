// The secret rules of ParseCommandLine: weak keys and cookie secrets, the
// placeholders shipped in the repository (read from the shipped files), and
// REDIS_URL_FILE. Each refusal names the setting and never the value.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/server/config.h"
#include "sidecar/server/config_secrets.h"
#include "tests/support/shipped_secrets.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kSecret = ::stateside::testing::kTestSecret;

class ConfigSecretsTest : public ::testing::Test {
 protected:
  absl::StatusOr<CommandLine> Parse(const Environment& env) {
    return ParseCommandLine({"stateside"}, env);
  }

  // Refused, naming `setting` first, without echoing `value`.
  std::string ExpectRefused(const Environment& env, const std::string& setting,
                            const std::string& value) {
    auto line = Parse(env);
    EXPECT_FALSE(line.ok()) << setting << " accepted";
    if (line.ok()) return "";
    EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(line.status().message());
    EXPECT_THAT(message, StartsWith(setting + ": "));
    if (!value.empty()) EXPECT_THAT(message, Not(HasSubstr(value)));
    return message;
  }

  testing::TempDir dir_;
};

std::string Repeat(const std::string& unit, size_t times) {
  std::string out;
  for (size_t i = 0; i < times; ++i) out += unit;
  return out;
}

TEST_F(ConfigSecretsTest, StrongKeyAndSecretAreAccepted) {
  auto line = Parse({{"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
                     {"SESSION_SECRET", kSecret}});
  ASSERT_TRUE(line.ok()) << line.status();
}

TEST_F(ConfigSecretsTest, RepeatedByteKeyIsRefused) {
  const std::string key = Repeat("11", 32);
  EXPECT_THAT(ExpectRefused({{"SESSION_ENCRYPTION_KEY", key}},
                            "SESSION_ENCRYPTION_KEY", key),
              HasSubstr("repeats one byte"));
}

TEST_F(ConfigSecretsTest, AllZeroKeyInAListIsRefusedByPosition) {
  const std::string zero = Repeat("00", 32);
  const std::string list =
      std::string("new:") + testing::kTestKeyHex + ",old:" + zero;
  // The all-zero key is also a shipped placeholder; either rule names it.
  ExpectRefused({{"SESSION_ENCRYPTION_KEYS", list}}, "SESSION_ENCRYPTION_KEYS", zero);
}

TEST_F(ConfigSecretsTest, PatternedKeyIsRefused) {
  const std::string key = Repeat("00112233445566778899aabbccddeeff", 2);
  EXPECT_THAT(ExpectRefused({{"SESSION_ENCRYPTION_KEY_FILE", dir_.WriteFile("k", key + "\n")}},
                            "SESSION_ENCRYPTION_KEY_FILE", key),
              HasSubstr("repeats a pattern of 16 bytes"));
}

TEST_F(ConfigSecretsTest, KeyWithFewDistinctBytesIsRefused) {
  // 32 bytes, no period, only 4 different values.
  const std::string key = Repeat("01020304", 6) + "0403020102030401";
  EXPECT_THAT(ExpectRefused({{"SESSION_ENCRYPTION_KEY", key}},
                            "SESSION_ENCRYPTION_KEY", key),
              HasSubstr("distinct byte values"));
}

TEST_F(ConfigSecretsTest, WeakCookieSecretsAreRefused) {
  const std::string short_secret = "only-thirty-one-bytes-long-abcd";
  EXPECT_THAT(ExpectRefused({{"SESSION_SECRET", short_secret}}, "SESSION_SECRET",
                            short_secret),
              HasSubstr("shorter than 32 bytes"));
  const std::string same(40, 's');
  EXPECT_THAT(ExpectRefused({{"SESSION_SECRET", same}}, "SESSION_SECRET", same),
              HasSubstr("repeats one byte"));
  const std::string pattern = Repeat("password", 5);
  EXPECT_THAT(ExpectRefused({{"SESSION_SECRET", pattern}}, "SESSION_SECRET", pattern),
              HasSubstr("repeats a pattern of 8 bytes"));
  const std::string skewed = std::string(40, 'a') + "bcdefgh";
  EXPECT_THAT(ExpectRefused({{"SESSION_SECRET_FILE", dir_.WriteFile("s", skewed)}},
                            "SESSION_SECRET_FILE", skewed),
              HasSubstr("too little entropy"));
  // The second of a rotation list is judged too.
  EXPECT_THAT(ExpectRefused({{"SESSION_SECRET", std::string(kSecret) + "," + same}},
                            "SESSION_SECRET", same),
              HasSubstr("secret 2 of 2"));
}

TEST_F(ConfigSecretsTest, RedisUrlFileIsReadAndTrimmed) {
  const std::string url = "redis://:s3cr3t-pass@127.0.0.1:6379/0";
  auto line = Parse({{"REDIS_URL_FILE", dir_.WriteFile("url", url + "\n")},
                     {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
                     {"SESSION_SECRET", kSecret}});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->config.redis.url, url);
  for (const std::string& summary : line->config.summary) {
    EXPECT_THAT(summary, Not(HasSubstr("s3cr3t-pass")));
  }
}

TEST_F(ConfigSecretsTest, RedisUrlAndItsFileTogetherAreRefusedNamingBoth) {
  const std::string message =
      ExpectRefused({{"REDIS_URL", "redis://127.0.0.1:6379"},
                     {"REDIS_URL_FILE", dir_.WriteFile("url", "redis://127.0.0.1:6379")}},
                    "REDIS_URL", "");
  EXPECT_THAT(message, HasSubstr("REDIS_URL_FILE"));
}

TEST_F(ConfigSecretsTest, BadUrlInTheFileNamesTheFileSetting) {
  ExpectRefused({{"REDIS_URL_FILE", dir_.WriteFile("url", "http://nope")}},
                "REDIS_URL_FILE", "");
  ExpectRefused({{"REDIS_URL_FILE", dir_.File("missing")}}, "REDIS_URL_FILE", "");
}

// Every value of the shipped example files is a known placeholder, so a new
// one cannot ship without the sidecar refusing it; and each is refused.
TEST_F(ConfigSecretsTest, EveryShippedPlaceholderIsKnownAndRefused) {
  const auto values = testing::ShippedSecretValues();
  ASSERT_GE(values.size(), 4u) << "the example Secret was not read";
  for (const testing::ShippedSecret& s : values) {
    EXPECT_TRUE(config_secrets::ContainsShippedPlaceholder(s.value))
        << s.file << ": " << s.name << " is not in ShippedPlaceholders()";
  }
}

TEST_F(ConfigSecretsTest, RedisUrlWithAPlaceholderPasswordIsRefused) {
  for (const std::string setting : {"REDIS_URL", "REDIS_URL_FILE"}) {
    const std::string url = "redis://default:replace-me@127.0.0.1:6379/0";
    const std::string value =
        setting == "REDIS_URL" ? url : dir_.WriteFile("url", url);
    EXPECT_THAT(ExpectRefused({{setting, value}}, setting, "replace-me"),
                HasSubstr("placeholder"));
  }
}

}  // namespace
}  // namespace stateside

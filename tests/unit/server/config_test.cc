// ParseCommandLine: defaults, precedence, and every validation rule, called
// as a function (argv + environment in, Config or error out).
#include "sidecar/server/config.h"

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kKeyHex = ::stateside::testing::kTestKeyHex;
constexpr const char* kSecret = ::stateside::testing::kTestSecret;
constexpr char kRedis[] = "redis://127.0.0.1:6379";

class ConfigTest : public ::testing::Test {
 protected:
  absl::StatusOr<CommandLine> ParseLine(std::vector<std::string> flags,
                                        const Environment& env) {
    flags.insert(flags.begin(), "stateside");
    return ParseCommandLine(flags, env);
  }

  absl::StatusOr<Config> Parse(const Environment& env,
                               std::vector<std::string> flags = {}) {
    auto line = ParseLine(std::move(flags), env);
    if (!line.ok()) return line.status();
    EXPECT_EQ(line->action, CommandLine::Action::kRun);
    return std::move(line->config);
  }

  // `extra` with the secrets every Redis configuration needs.
  static Environment with(Environment extra) {
    extra.emplace("SESSION_ENCRYPTION_KEY", kKeyHex);
    extra.emplace("SESSION_SECRET", kSecret);
    return extra;
  }

  // The error for `env`, which must name `setting` first.
  std::string ExpectError(const Environment& env, const std::string& setting,
                          std::vector<std::string> flags = {}) {
    auto config = Parse(env, std::move(flags));
    EXPECT_FALSE(config.ok()) << "accepted; expected an error naming " << setting;
    if (config.ok()) return "";
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(config.status().message());
    EXPECT_THAT(message, StartsWith(setting + ": "));
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
    return message;
  }

  testing::TempDir dir_;
};

TEST_F(ConfigTest, EmptyEnvironmentGivesTheDesignDefaults) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->socket_path, "/tmp/stateside/stateside.sock");
  EXPECT_EQ(config->admin_host, "127.0.0.1");
  EXPECT_EQ(config->admin_port, 9464);
  EXPECT_FALSE(config->redis_enabled());
  EXPECT_FALSE(config->redis.required);
  EXPECT_EQ(config->redis.fallback, Fallback::kNone);
  EXPECT_TRUE(config->encryption_keys.empty());
  EXPECT_TRUE(config->session_secrets.empty());
  EXPECT_EQ(config->idle_ttl, absl::Hours(24));
  EXPECT_EQ(config->absolute_ttl, absl::Hours(24 * 7));
  EXPECT_EQ(config->opt_out_ttl, absl::Hours(24 * 365));
  EXPECT_EQ(config->request_id_ttl, absl::Minutes(10));
  EXPECT_EQ(config->instance_id, "");
  EXPECT_EQ(config->prestop_delay, absl::ZeroDuration());
  EXPECT_EQ(config->drain_timeout, absl::Seconds(10));
  EXPECT_EQ(config->shutdown_timeout, absl::Seconds(30));
  EXPECT_EQ(config->log_format, LogFormat::kText);
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->key_prefix, "stateside:");
  EXPECT_EQ(config->max_sessions, 100000u);
  EXPECT_EQ(config->max_attributes, 64u);
  EXPECT_EQ(config->max_sessions_per_user, 100u);
  EXPECT_EQ(config->max_rooms_per_connection, 1024u);
  EXPECT_EQ(config->publish_rate_per_user, 100u);
  EXPECT_EQ(config->publish_burst_per_user, 200u);
  EXPECT_EQ(config->room_history_bytes, 1u << 20);
  EXPECT_EQ(config->max_attribute_bytes, 65536u);
  EXPECT_EQ(config->max_session_bytes, 262144u);
  EXPECT_EQ(config->redis.connections, 2);
  EXPECT_EQ(config->redis.connect_timeout, absl::Seconds(2));
  EXPECT_EQ(config->redis.command_timeout, absl::Seconds(1));
}

TEST_F(ConfigTest, EnvironmentSetsSettings) {
  auto config = Parse({{"STATESIDE_SOCKET", "/run/s/api.sock"},
                       {"STATESIDE_ADMIN_ADDR", "0.0.0.0:8080"},
                       {"SESSION_IDLE_TTL", "30m"},
                       {"SESSION_ABSOLUTE_TTL", "12h"},
                       {"INSTANCE_ID", "pod-1"},
                       {"STATESIDE_LOG_FORMAT", "json"},
                       {"STATESIDE_LOG_LEVEL", "debug"},
                       {"STATESIDE_MAX_SESSIONS", "10"},
                       {"STATESIDE_KEY_PREFIX", "app:"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->socket_path, "/run/s/api.sock");
  EXPECT_EQ(config->admin_host, "0.0.0.0");
  EXPECT_EQ(config->admin_port, 8080);
  EXPECT_EQ(config->idle_ttl, absl::Minutes(30));
  EXPECT_EQ(config->absolute_ttl, absl::Hours(12));
  EXPECT_EQ(config->instance_id, "pod-1");
  EXPECT_EQ(config->log_format, LogFormat::kJson);
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->max_sessions, 10u);
  EXPECT_EQ(config->key_prefix, "app:");
}

TEST_F(ConfigTest, FlagWinsOverEnvironment) {
  auto config = Parse({{"SESSION_IDLE_TTL", "30m"}, {"INSTANCE_ID", "from-env"}},
                      {"--session-idle-ttl", "5m", "--instance-id=from-flag"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->idle_ttl, absl::Minutes(5));
  EXPECT_EQ(config->instance_id, "from-flag");
}

TEST_F(ConfigTest, EveryFlagIsAccepted) {
  auto config = Parse(
      {}, {"--socket", "/tmp/x.sock", "--admin-addr", "127.0.0.1:0",
           "--redis-url", kRedis, "--use-redis-sessions", "true", "--fallback",
           "memory", "--session-encryption-key", kKeyHex, "--session-secret",
           kSecret, "--session-idle-ttl", "1h", "--session-absolute-ttl", "2h",
           "--opt-out-ttl", "30d", "--instance-id", "i", "--prestop-delay",
           "1s", "--drain-timeout", "2s", "--shutdown-timeout", "3s",
           "--log-format", "json", "--log-level", "warn", "--key-prefix", "p:",
           "--max-sessions", "5", "--max-attributes", "6",
           "--max-attribute-bytes", "7", "--max-session-bytes", "8",
           "--redis-tls-server-name", "redis.local", "--redis-connections", "3",
           "--redis-connect-timeout", "4s", "--redis-command-timeout", "5s"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis.url, kRedis);
  EXPECT_TRUE(config->redis.required);
  EXPECT_EQ(config->redis.fallback, Fallback::kMemory);
  EXPECT_EQ(config->encryption_keys.size(), 1u);
  EXPECT_EQ(config->session_secrets.size(), 1u);
  EXPECT_EQ(config->opt_out_ttl, absl::Hours(24 * 30));
  EXPECT_EQ(config->shutdown_timeout, absl::Seconds(3));
  EXPECT_EQ(config->log_level, "warn");
  EXPECT_EQ(config->max_session_bytes, 8u);
  EXPECT_EQ(config->redis.tls_server_name, "redis.local");
  EXPECT_EQ(config->redis.connections, 3);
  EXPECT_EQ(config->redis.connect_timeout, absl::Seconds(4));
  EXPECT_EQ(config->redis.command_timeout, absl::Seconds(5));
}

TEST_F(ConfigTest, EmptyVariableMeansUnset) {
  auto config = Parse({{"REDIS_URL", ""}, {"SESSION_IDLE_TTL", ""}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->redis_enabled());
  EXPECT_EQ(config->idle_ttl, absl::Hours(24));
}

TEST_F(ConfigTest, DurationsAcceptDays) {
  auto config = Parse({{"SESSION_IDLE_TTL", "1d12h"},
                       {"SESSION_ABSOLUTE_TTL", "2.5d"},
                       {"OPT_OUT_TTL", "7d"},
                       {"STATESIDE_REQUEST_ID_TTL", "90s"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->request_id_ttl, absl::Seconds(90));
  EXPECT_EQ(config->idle_ttl, absl::Hours(36));
  EXPECT_EQ(config->absolute_ttl, absl::Hours(60));
  EXPECT_EQ(config->opt_out_ttl, absl::Hours(168));
}

TEST_F(ConfigTest, BadDurationNamesTheSetting) {
  for (const std::string setting :
       {"SESSION_IDLE_TTL", "SESSION_ABSOLUTE_TTL", "OPT_OUT_TTL",
        "STATESIDE_PRESTOP_DELAY", "STATESIDE_DRAIN_TIMEOUT",
        "STATESIDE_SHUTDOWN_TIMEOUT", "STATESIDE_REDIS_CONNECT_TIMEOUT",
        "STATESIDE_REDIS_COMMAND_TIMEOUT", "STATESIDE_HEARTBEAT_INTERVAL",
        "STATESIDE_REDIS_READINESS_DEBOUNCE"}) {
    SCOPED_TRACE(setting);
    for (const std::string bad : {"10", "abc", "5x", "-5s", "1h-", "1e3s"}) {
      SCOPED_TRACE(bad);
      ExpectError({{setting, bad}}, setting);
    }
  }
}

TEST_F(ConfigTest, TimeoutsThatMustBePositiveRefuseZero) {
  for (const std::string setting :
       {"SESSION_IDLE_TTL", "SESSION_ABSOLUTE_TTL", "OPT_OUT_TTL", "STATESIDE_REQUEST_ID_TTL",
        "STATESIDE_SHUTDOWN_TIMEOUT", "STATESIDE_REDIS_CONNECT_TIMEOUT",
        "STATESIDE_REDIS_COMMAND_TIMEOUT", "STATESIDE_HEARTBEAT_INTERVAL"}) {
    SCOPED_TRACE(setting);
    ExpectError({{setting, "0s"}}, setting);
  }
  ExpectError({{"STATESIDE_HEARTBEAT_INTERVAL", "50ms"}},
              "STATESIDE_HEARTBEAT_INTERVAL");
  auto config = Parse({{"STATESIDE_PRESTOP_DELAY", "0"},
                       {"STATESIDE_DRAIN_TIMEOUT", "0s"}});
  ASSERT_TRUE(config.ok()) << config.status();
}

TEST_F(ConfigTest, ReadinessDebounceDefaultsTo2sTakesZeroAndRefusesOverAMinute) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis.readiness_debounce, absl::Seconds(2));
  config = Parse({{"STATESIDE_REDIS_READINESS_DEBOUNCE", "0s"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis.readiness_debounce, absl::ZeroDuration());
  config = Parse({{"STATESIDE_REDIS_READINESS_DEBOUNCE", "1m"}});
  ASSERT_TRUE(config.ok()) << config.status();
  ExpectError({{"STATESIDE_REDIS_READINESS_DEBOUNCE", "61s"}},
              "STATESIDE_REDIS_READINESS_DEBOUNCE");
}

TEST_F(ConfigTest, TouchGranularityDefaultsTo60sTakesZeroAndRefusesOverAnHour) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->touch_granularity, absl::Seconds(60));
  config = Parse({{"STATESIDE_SESSION_TOUCH_GRANULARITY", "0"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->touch_granularity, absl::ZeroDuration());
  config = Parse({{"STATESIDE_SESSION_TOUCH_GRANULARITY", "1h"}});
  ASSERT_TRUE(config.ok()) << config.status();
  ExpectError({{"STATESIDE_SESSION_TOUCH_GRANULARITY", "61m"}},
              "STATESIDE_SESSION_TOUCH_GRANULARITY");
  ExpectError({{"STATESIDE_SESSION_TOUCH_GRANULARITY", "-1s"}},
              "STATESIDE_SESSION_TOUCH_GRANULARITY");
  ExpectError({{"STATESIDE_SESSION_TOUCH_GRANULARITY", "soon"}},
              "STATESIDE_SESSION_TOUCH_GRANULARITY");
}

TEST_F(ConfigTest, IdleLongerThanAbsoluteIsRefused) {
  ExpectError({{"SESSION_IDLE_TTL", "2d"}, {"SESSION_ABSOLUTE_TTL", "1d"}},
              "SESSION_IDLE_TTL");
  EXPECT_TRUE(
      Parse({{"SESSION_IDLE_TTL", "1d"}, {"SESSION_ABSOLUTE_TTL", "24h"}}).ok());
}

TEST_F(ConfigTest, ShutdownTimeoutMustCoverDrainAndPrestop) {
  ExpectError({{"STATESIDE_DRAIN_TIMEOUT", "20s"},
               {"STATESIDE_PRESTOP_DELAY", "15s"},
               {"STATESIDE_SHUTDOWN_TIMEOUT", "30s"}},
              "STATESIDE_SHUTDOWN_TIMEOUT");
  EXPECT_TRUE(Parse({{"STATESIDE_DRAIN_TIMEOUT", "20s"},
                     {"STATESIDE_PRESTOP_DELAY", "10s"},
                     {"STATESIDE_SHUTDOWN_TIMEOUT", "30s"}})
                  .ok());
}

TEST_F(ConfigTest, UnknownEnumValuesAreRefused) {
  ExpectError({{"STATESIDE_FALLBACK", "redis"}}, "STATESIDE_FALLBACK");
  ExpectError({{"STATESIDE_LOG_FORMAT", "xml"}}, "STATESIDE_LOG_FORMAT");
  ExpectError({{"STATESIDE_LOG_LEVEL", "verbose"}}, "STATESIDE_LOG_LEVEL");
  ExpectError({{"USE_REDIS_SESSIONS", "maybe"}}, "USE_REDIS_SESSIONS");
}

TEST_F(ConfigTest, SessionLimitPolicyIsRefuseUnlessEndOldest) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->session_limit_end_oldest);
  config = Parse({{"STATESIDE_SESSION_LIMIT_POLICY", "end_oldest"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->session_limit_end_oldest);
  config = Parse({}, {"--session-limit-policy=REFUSE"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->session_limit_end_oldest);
  const std::string message = ExpectError(
      {{"STATESIDE_SESSION_LIMIT_POLICY", "evict"}}, "STATESIDE_SESSION_LIMIT_POLICY");
  EXPECT_THAT(message, HasSubstr("refuse or end_oldest"));
}

TEST_F(ConfigTest, EnvelopeVersionIsTwoUnlessOneForARollingUpgrade) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->envelope_version, 2);
  config = Parse({}, {"--envelope-version=1"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->envelope_version, 1);
  for (const char* bad : {"0", "3", "v2"}) {
    ExpectError({{"STATESIDE_ENVELOPE_VERSION", bad}}, "STATESIDE_ENVELOPE_VERSION");
  }
}

TEST_F(ConfigTest, LogLevelsAreNormalised) {
  auto config = Parse({{"STATESIDE_LOG_LEVEL", "WARNING"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, "warn");
  config = Parse({{"STATESIDE_LOG_LEVEL", "err"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, "error");
}

TEST_F(ConfigTest, EncryptionKeyIsParsed) {
  auto config = Parse({{"SESSION_ENCRYPTION_KEY", kKeyHex}});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->encryption_keys.size(), 1u);
  EXPECT_EQ(config->encryption_keys[0].bytes.size(), 32u);
}

TEST_F(ConfigTest, KeyListIsParsedInOrder) {
  const std::string other = testing::kOtherTestKeyHex;
  auto config = Parse({{"SESSION_ENCRYPTION_KEYS",
                        std::string("new:") + kKeyHex + ",old:" + other}});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->encryption_keys.size(), 2u);
  EXPECT_EQ(config->encryption_keys[0].id, "new");
  EXPECT_EQ(config->encryption_keys[1].id, "old");
}

TEST_F(ConfigTest, MalformedKeyIsRefusedWithoutEchoingIt) {
  const std::string short_key(62, 'f');
  std::string message = ExpectError({{"SESSION_ENCRYPTION_KEY", short_key}},
                                    "SESSION_ENCRYPTION_KEY");
  EXPECT_THAT(message, Not(HasSubstr(short_key)));
  const std::string not_hex = std::string(63, 'f') + "g";
  message = ExpectError({{"SESSION_ENCRYPTION_KEY", not_hex}},
                        "SESSION_ENCRYPTION_KEY");
  EXPECT_THAT(message, Not(HasSubstr(not_hex)));
  ExpectError({{"SESSION_ENCRYPTION_KEYS", std::string("a:") + kKeyHex + ",a:" +
                                               kKeyHex}},
              "SESSION_ENCRYPTION_KEYS");
  ExpectError({{"SESSION_ENCRYPTION_KEYS", kKeyHex}}, "SESSION_ENCRYPTION_KEYS");
}

TEST_F(ConfigTest, KeyAndKeysTogetherAreRefused) {
  ExpectError({{"SESSION_ENCRYPTION_KEY", kKeyHex},
               {"SESSION_ENCRYPTION_KEYS", std::string("k1:") + kKeyHex}},
              "SESSION_ENCRYPTION_KEY");
  ExpectError({{"SESSION_ENCRYPTION_KEY", kKeyHex},
               {"SESSION_ENCRYPTION_KEY_FILE", dir_.WriteFile("key", kKeyHex)}},
              "SESSION_ENCRYPTION_KEY");
  ExpectError({{"SESSION_ENCRYPTION_KEY_FILE", dir_.WriteFile("key", kKeyHex)},
               {"SESSION_ENCRYPTION_KEYS", std::string("k1:") + kKeyHex}},
              "SESSION_ENCRYPTION_KEY");
}

TEST_F(ConfigTest, KeyAndSecretFilesAreRead) {
  auto config = Parse(
      {{"SESSION_ENCRYPTION_KEYS_FILE",
        dir_.WriteFile("keys", std::string("k1:") + kKeyHex + "\n")},
       {"SESSION_SECRET_FILE", dir_.WriteFile("secret", std::string(kSecret) + "\n")}});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->encryption_keys.size(), 1u);
  EXPECT_EQ(config->encryption_keys[0].id, "k1");
  ASSERT_EQ(config->session_secrets.size(), 1u);
  EXPECT_EQ(config->session_secrets[0], kSecret);
}

TEST_F(ConfigTest, AdminTokenFileIsReadAndWiped) {
  const std::string token(40, 't');
  auto none = Parse({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->admin_token, "");  // POST /drain from loopback only
  auto config = Parse({{"STATESIDE_ADMIN_TOKEN_FILE", dir_.WriteFile("token", token + "\n")}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->admin_token, token);  // the trailing newline trimmed
  for (const std::string& line : config->summary) {
    EXPECT_THAT(line, Not(HasSubstr(token)));
  }
  WipeSecrets(*config);
  EXPECT_EQ(config->admin_token, "");
}

TEST_F(ConfigTest, AdminTokenMustBeLongAndHeaderSafe) {
  const std::string short_token(31, 's');
  std::string message = ExpectError(
      {{"STATESIDE_ADMIN_TOKEN_FILE", dir_.WriteFile("short", short_token + "\n")}},
      "STATESIDE_ADMIN_TOKEN_FILE");
  EXPECT_THAT(message, HasSubstr("shorter than 32 bytes"));
  EXPECT_THAT(message, Not(HasSubstr(short_token)));
  const std::string spaced = "0123456789abcdef 0123456789abcdef";
  message = ExpectError({{"STATESIDE_ADMIN_TOKEN_FILE", dir_.WriteFile("spaced", spaced)}},
                        "STATESIDE_ADMIN_TOKEN_FILE");
  EXPECT_THAT(message, Not(HasSubstr(spaced)));
  ExpectError({{"STATESIDE_ADMIN_TOKEN_FILE", dir_.File("missing")}},
              "STATESIDE_ADMIN_TOKEN_FILE");
  ExpectError({{"STATESIDE_ADMIN_TOKEN_FILE", dir_.WriteFile("blank", "\n")}},
              "STATESIDE_ADMIN_TOKEN_FILE");
}

TEST_F(ConfigTest, UnreadableFilesAreRefused) {
  const std::string missing = dir_.File("missing");
  for (const std::string setting :
       {"SESSION_ENCRYPTION_KEY_FILE", "SESSION_ENCRYPTION_KEYS_FILE",
        "SESSION_SECRET_FILE", "STATESIDE_REDIS_TLS_CA_FILE"}) {
    SCOPED_TRACE(setting);
    const std::string message = ExpectError({{setting, missing}}, setting);
    EXPECT_THAT(message, HasSubstr(missing));
  }
  ExpectError({{"SESSION_SECRET_FILE", dir_.path()}}, "SESSION_SECRET_FILE");
  ExpectError({{"SESSION_SECRET_FILE", dir_.WriteFile("empty", "\n")}},
              "SESSION_SECRET_FILE");
  ExpectError({{"SESSION_SECRET_FILE", dir_.WriteFile("big", std::string(70000, 'x'))}},
              "SESSION_SECRET_FILE");
}

TEST_F(ConfigTest, SecretsAreSplitOnCommas) {
  const std::string second = "second-cookie-secret-ZYXWVUTSRQPONMLK";
  auto config =
      Parse({{"SESSION_SECRET", std::string(kSecret) + ", " + second}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->session_secrets, ::testing::ElementsAre(kSecret, second));
}

TEST_F(ConfigTest, ShortOrEmptySecretIsRefusedWithoutEchoingIt) {
  const std::string short_secret = "only-thirty-one-bytes-long-abcd";
  ASSERT_EQ(short_secret.size(), 31u);
  std::string message =
      ExpectError({{"SESSION_SECRET", short_secret}}, "SESSION_SECRET");
  EXPECT_THAT(message, Not(HasSubstr(short_secret)));
  message = ExpectError(
      {{"SESSION_SECRET", std::string(kSecret) + "," + short_secret}},
      "SESSION_SECRET");
  EXPECT_THAT(message, HasSubstr("secret 2 of 2"));
  EXPECT_THAT(message, Not(HasSubstr(kSecret)));
  ExpectError({{"SESSION_SECRET", std::string(kSecret) + ",,"}}, "SESSION_SECRET");
  ExpectError({{"SESSION_SECRET", kSecret},
               {"SESSION_SECRET_FILE", dir_.WriteFile("s", kSecret)}},
              "SESSION_SECRET");
}

TEST_F(ConfigTest, RedisNeedsAKeyAndASecret) {
  ExpectError({{"REDIS_URL", kRedis}, {"SESSION_SECRET", kSecret}},
              "SESSION_ENCRYPTION_KEY");
  ExpectError({{"REDIS_URL", kRedis}, {"SESSION_ENCRYPTION_KEY", kKeyHex}},
              "SESSION_SECRET");
  auto config = Parse({{"REDIS_URL", kRedis},
                       {"SESSION_ENCRYPTION_KEY", kKeyHex},
                       {"SESSION_SECRET", kSecret}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->redis_enabled());
}

TEST_F(ConfigTest, RedisTopologyTakesANodeListAndItsSettings) {
  auto standalone = Parse(with({{"REDIS_URL", kRedis}}));
  ASSERT_TRUE(standalone.ok()) << standalone.status();
  EXPECT_EQ(standalone->redis.topology, redis::RedisTopology::kStandalone);
  EXPECT_EQ(standalone->redis.wait_replicas, 0);
  EXPECT_EQ(standalone->redis.wait_timeout, absl::Milliseconds(500));

  auto cluster = Parse(with({{"REDIS_URL", "redis://:pw-marker-0123456789@h1:7000,h2:7001"},
                             {"STATESIDE_REDIS_TOPOLOGY", "cluster"},
                             {"STATESIDE_REDIS_WAIT_REPLICAS", "1"},
                             {"STATESIDE_REDIS_WAIT_TIMEOUT", "250ms"}}));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  EXPECT_EQ(cluster->redis.topology, redis::RedisTopology::kCluster);
  EXPECT_EQ(cluster->redis.wait_replicas, 1);
  EXPECT_EQ(cluster->redis.wait_timeout, absl::Milliseconds(250));

  const std::string password_file = dir_.WriteFile("sentinel-pw", "sentinel-pass-0123456789\n");
  auto sentinel = Parse(with({{"REDIS_URL", "redis://s1:26379,s2:26379"},
                              {"STATESIDE_REDIS_TOPOLOGY", "Sentinel"},
                              {"REDIS_SENTINEL_MASTER", "mymaster"},
                              {"REDIS_SENTINEL_PASSWORD_FILE", password_file},
                              {"REDIS_SENTINEL_USERNAME", "watcher"}}));
  ASSERT_TRUE(sentinel.ok()) << sentinel.status();
  EXPECT_EQ(sentinel->redis.topology, redis::RedisTopology::kSentinel);
  EXPECT_EQ(sentinel->redis.sentinel_master, "mymaster");
  EXPECT_EQ(sentinel->redis.sentinel_username, "watcher");
  EXPECT_EQ(sentinel->redis.sentinel_password, "sentinel-pass-0123456789");
  WipeSecrets(*sentinel);
  EXPECT_TRUE(sentinel->redis.sentinel_password.empty());
}

TEST_F(ConfigTest, BadRedisTopologyNamesTheSettingAndNeverFallsBack) {
  EXPECT_THAT(ExpectError(with({{"REDIS_URL", kRedis}, {"STATESIDE_REDIS_TOPOLOGY", "mesh"}}),
                          "STATESIDE_REDIS_TOPOLOGY"),
              HasSubstr("standalone, cluster or sentinel"));
  EXPECT_THAT(ExpectError(with({{"STATESIDE_REDIS_TOPOLOGY", "cluster"}}),
                          "STATESIDE_REDIS_TOPOLOGY"),
              HasSubstr("requires REDIS_URL"));
  // A node list without a topology would talk to its first node alone.
  EXPECT_THAT(ExpectError(with({{"REDIS_URL", "redis://h1:1,h2:2"}}), "REDIS_URL"),
              HasSubstr("STATESIDE_REDIS_TOPOLOGY"));
  EXPECT_THAT(ExpectError(with({{"REDIS_URL", "redis://h1:1,,h2:2"},
                                {"STATESIDE_REDIS_TOPOLOGY", "cluster"}}),
                          "REDIS_URL"),
              HasSubstr("empty node"));
  EXPECT_THAT(ExpectError(with({{"REDIS_URL", "unix:///r.sock"},
                                {"STATESIDE_REDIS_TOPOLOGY", "cluster"}}),
                          "REDIS_URL"),
              HasSubstr("node list"));
  EXPECT_THAT(ExpectError(with({{"REDIS_URL", "redis://h1:1/2"},
                                {"STATESIDE_REDIS_TOPOLOGY", "cluster"}}),
                          "REDIS_URL"),
              HasSubstr("only database 0"));
  EXPECT_THAT(ExpectError(with({{"REDIS_URL", "redis://s1:26379"},
                                {"STATESIDE_REDIS_TOPOLOGY", "sentinel"}}),
                          "REDIS_SENTINEL_MASTER"),
              HasSubstr("required"));
  // Sentinel settings without the sentinel topology: the URL would be used
  // as a data node, so they are refused rather than ignored.
  ExpectError(with({{"REDIS_URL", kRedis}, {"REDIS_SENTINEL_MASTER", "mymaster"}}),
              "REDIS_SENTINEL_MASTER");
  ExpectError(with({{"REDIS_URL", kRedis}, {"REDIS_SENTINEL_PASSWORD", "x"}}),
              "REDIS_SENTINEL_PASSWORD");
  ExpectError(with({{"REDIS_URL", kRedis}, {"REDIS_SENTINEL_USERNAME", "watcher"}}),
              "REDIS_SENTINEL_USERNAME");
  EXPECT_THAT(ExpectError(with({{"REDIS_URL", "redis://s1:26379"},
                                {"STATESIDE_REDIS_TOPOLOGY", "sentinel"},
                                {"REDIS_SENTINEL_MASTER", "mymaster"},
                                {"REDIS_SENTINEL_USERNAME", "watcher"}}),
                          "REDIS_SENTINEL_USERNAME"),
              HasSubstr("needs REDIS_SENTINEL_PASSWORD"));
  ExpectError(with({{"REDIS_URL", kRedis}, {"STATESIDE_REDIS_WAIT_REPLICAS", "-1"}}),
              "STATESIDE_REDIS_WAIT_REPLICAS");
  ExpectError(with({{"REDIS_URL", kRedis}, {"STATESIDE_REDIS_WAIT_REPLICAS", "17"}}),
              "STATESIDE_REDIS_WAIT_REPLICAS");
  ExpectError(with({{"REDIS_URL", kRedis}, {"STATESIDE_REDIS_WAIT_TIMEOUT", "0s"}}),
              "STATESIDE_REDIS_WAIT_TIMEOUT");
  ExpectError(with({{"STATESIDE_REDIS_WAIT_REPLICAS", "1"}}), "STATESIDE_REDIS_WAIT_REPLICAS");
}

TEST_F(ConfigTest, NearCacheIsOffByDefaultAndRefusedOnClusterOrWithoutRedis) {
  auto off = Parse(with({{"REDIS_URL", kRedis}}));
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->near_cache);
  EXPECT_EQ(off->near_cache_bytes, 64u << 20);
  auto on = Parse(with({{"REDIS_URL", kRedis},
                        {"STATESIDE_SESSION_NEAR_CACHE", "true"},
                        {"STATESIDE_SESSION_NEAR_CACHE_BYTES", "2097152"}}));
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->near_cache);
  EXPECT_EQ(on->near_cache_bytes, 2097152u);
  auto sentinel = Parse(with({{"REDIS_URL", "redis://s1:26379"},
                              {"STATESIDE_REDIS_TOPOLOGY", "sentinel"},
                              {"REDIS_SENTINEL_MASTER", "mymaster"},
                              {"STATESIDE_SESSION_NEAR_CACHE", "true"}}));
  ASSERT_TRUE(sentinel.ok()) << sentinel.status();
  EXPECT_TRUE(sentinel->near_cache);

  EXPECT_THAT(ExpectError(with({{"REDIS_URL", "redis://h1:7000,h2:7001"},
                                {"STATESIDE_REDIS_TOPOLOGY", "cluster"},
                                {"STATESIDE_SESSION_NEAR_CACHE", "true"}}),
                          "STATESIDE_SESSION_NEAR_CACHE"),
              HasSubstr("not available with STATESIDE_REDIS_TOPOLOGY=cluster"));
  EXPECT_THAT(ExpectError(with({{"STATESIDE_SESSION_NEAR_CACHE", "true"}}),
                          "STATESIDE_SESSION_NEAR_CACHE"),
              HasSubstr("needs REDIS_URL"));
  ExpectError(with({{"REDIS_URL", kRedis}, {"STATESIDE_SESSION_NEAR_CACHE", "maybe"}}),
              "STATESIDE_SESSION_NEAR_CACHE");
  ExpectError(with({{"REDIS_URL", kRedis}, {"STATESIDE_SESSION_NEAR_CACHE_BYTES", "1024"}}),
              "STATESIDE_SESSION_NEAR_CACHE_BYTES");
}

TEST_F(ConfigTest, MalformedRedisUrlIsRefusedWithoutEchoingIt) {
  for (const std::string url :
       {"http://h:1", "redis://", "redis://:pw@", "redis://h:99999",
        "redis://h:port", "redis://h:1/db", "unix://", "unix://relative",
        "redis://[::1", "redis://u:pw-marker@h:bad", "http://:pw-marker@h"}) {
    SCOPED_TRACE(url);
    const std::string message = ExpectError(
        {{"REDIS_URL", url}, {"SESSION_ENCRYPTION_KEY", kKeyHex},
         {"SESSION_SECRET", kSecret}},
        "REDIS_URL");
    // A URL may hold a password: the message never repeats it.
    EXPECT_THAT(message, Not(HasSubstr("pw-marker")));
  }
}

TEST_F(ConfigTest, UseRedisSessionsRequiresRedisUrl) {
  ExpectError({{"USE_REDIS_SESSIONS", "true"}}, "USE_REDIS_SESSIONS");
  auto config = Parse({{"USE_REDIS_SESSIONS", "false"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->redis.required);
}

TEST_F(ConfigTest, SocketPathIsLimitedTo107Bytes) {
  const std::string longest = "/" + std::string(106, 's');
  auto config = Parse({{"STATESIDE_SOCKET", longest}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->socket_path, longest);
  ExpectError({{"STATESIDE_SOCKET", longest + "s"}}, "STATESIDE_SOCKET");
  ExpectError({{"STATESIDE_SOCKET", "/tmp/dir/"}}, "STATESIDE_SOCKET");
}

// gRPC reads the path inside a URI: characters with a meaning there, or
// that only cause trouble, are refused up front.
TEST_F(ConfigTest, SocketPathCharactersAreRestricted) {
  for (const std::string bad :
       {"/tmp/a b.sock", "/tmp/a%41.sock", "/tmp/a?b.sock", "/tmp/a#b.sock",
        "/tmp/a\nb.sock", "/tmp/\xc3\xa9.sock"}) {
    SCOPED_TRACE(bad);
    ExpectError({{"STATESIDE_SOCKET", bad}}, "STATESIDE_SOCKET");
  }
  EXPECT_TRUE(Parse({{"STATESIDE_SOCKET", "run/app-1_x.y+z~@=,:.sock"}}).ok());
}

TEST_F(ConfigTest, AdminAddressMustBeHostPort) {
  for (const std::string bad :
       {"9464", "localhost", ":9464", "host:", "host:65536", "host:-1",
        "::1:9464", "[::1:9464", "bad host:1"}) {
    SCOPED_TRACE(bad);
    ExpectError({{"STATESIDE_ADMIN_ADDR", bad}}, "STATESIDE_ADMIN_ADDR");
  }
  auto config = Parse({{"STATESIDE_ADMIN_ADDR", "[::1]:0"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->admin_host, "::1");
  EXPECT_EQ(config->admin_port, 0);
}

TEST_F(ConfigTest, BadInstanceIdIsRefused) {
  ExpectError({{"INSTANCE_ID", "has space"}}, "INSTANCE_ID");
  ExpectError({{"INSTANCE_ID", std::string(129, 'a')}}, "INSTANCE_ID");
  ExpectError({{"INSTANCE_ID", "new\nline"}}, "INSTANCE_ID");
}

TEST_F(ConfigTest, KeyPrefixMayNotChangeHashTags) {
  ExpectError({{"STATESIDE_KEY_PREFIX", "{app}:"}}, "STATESIDE_KEY_PREFIX");
  ExpectError({{"STATESIDE_KEY_PREFIX", std::string(65, 'p')}},
              "STATESIDE_KEY_PREFIX");
}

TEST_F(ConfigTest, CountsAreRangeChecked) {
  ExpectError({{"STATESIDE_MAX_SESSIONS", "0"}}, "STATESIDE_MAX_SESSIONS");
  ExpectError({{"STATESIDE_MAX_SESSIONS", "ten"}}, "STATESIDE_MAX_SESSIONS");
  ExpectError({{"STATESIDE_MAX_SESSIONS", "99999999999999999999999"}},
              "STATESIDE_MAX_SESSIONS");
  ExpectError({{"STATESIDE_MAX_ATTRIBUTES", "-1"}}, "STATESIDE_MAX_ATTRIBUTES");
  ExpectError({{"STATESIDE_MAX_ATTRIBUTE_BYTES", "1.5"}},
              "STATESIDE_MAX_ATTRIBUTE_BYTES");
  ExpectError({{"STATESIDE_MAX_SESSION_BYTES", "1000"},
               {"STATESIDE_MAX_ATTRIBUTE_BYTES", "2000"}},
              "STATESIDE_MAX_SESSION_BYTES");
  ExpectError({{"STATESIDE_REDIS_CONNECTIONS", "0"}},
              "STATESIDE_REDIS_CONNECTIONS");
  ExpectError({{"STATESIDE_MAX_SESSIONS_PER_USER", "-1"}},
              "STATESIDE_MAX_SESSIONS_PER_USER");
  ExpectError({{"STATESIDE_MAX_ROOMS_PER_CONNECTION", "0"}},
              "STATESIDE_MAX_ROOMS_PER_CONNECTION");
  ExpectError({{"STATESIDE_PUBLISH_RATE_PER_USER", "fast"}},
              "STATESIDE_PUBLISH_RATE_PER_USER");
  ExpectError({{"STATESIDE_PUBLISH_BURST_PER_USER", "0"}},
              "STATESIDE_PUBLISH_BURST_PER_USER");
  ExpectError({{"STATESIDE_ROOM_HISTORY_BYTES", "131071"}},
              "STATESIDE_ROOM_HISTORY_BYTES");
  ExpectError({{"STATESIDE_REDIS_CONNECTIONS", "65"}},
              "STATESIDE_REDIS_CONNECTIONS");
}

TEST_F(ConfigTest, TlsCertificateAndKeyGoTogether) {
  const std::string pem = dir_.WriteFile("client.pem", "pem");
  ExpectError({{"STATESIDE_REDIS_TLS_CERT_FILE", pem}},
              "STATESIDE_REDIS_TLS_KEY_FILE");
  ExpectError({{"STATESIDE_REDIS_TLS_KEY_FILE", pem}},
              "STATESIDE_REDIS_TLS_CERT_FILE");
  auto config = Parse({{"STATESIDE_REDIS_TLS_CERT_FILE", pem},
                       {"STATESIDE_REDIS_TLS_KEY_FILE", pem},
                       {"STATESIDE_REDIS_TLS_CA_FILE", pem}});
  ASSERT_TRUE(config.ok()) << config.status();
  // Accepted, but TLS settings without rediss:// are worth a warning.
  EXPECT_FALSE(config->warnings.empty());
}

TEST_F(ConfigTest, BadCommandLinesAreRefused) {
  auto line = ParseLine({"--no-such-flag"}, {});
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(line.status().message()), HasSubstr("--no-such-flag"));
  EXPECT_FALSE(ParseLine({"positional"}, {}).ok());
  EXPECT_FALSE(ParseLine({"--socket"}, {}).ok());
  EXPECT_FALSE(ParseLine({"--socket", "/a", "--socket", "/b"}, {}).ok());
}

TEST_F(ConfigTest, HelpListsEverySettingWithItsVariableAndDefault) {
  auto line = ParseLine({"--help"}, {});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->action, CommandLine::Action::kPrintHelp);
  // Every documented setting (docs/HORIZONTAL_SCALING_GUIDE.md,
  // docs/OPERATIONS.md), spelled out here so the test fails if one goes.
  for (const char* env :
       {"STATESIDE_SOCKET", "STATESIDE_ADMIN_ADDR", "REDIS_URL",
        "USE_REDIS_SESSIONS", "STATESIDE_FALLBACK", "SESSION_ENCRYPTION_KEY",
        "SESSION_ENCRYPTION_KEYS", "SESSION_ENCRYPTION_KEY_FILE",
        "SESSION_ENCRYPTION_KEYS_FILE", "SESSION_SECRET", "SESSION_SECRET_FILE",
        "SESSION_IDLE_TTL", "SESSION_ABSOLUTE_TTL", "INSTANCE_ID",
        "STATESIDE_PRESTOP_DELAY", "STATESIDE_DRAIN_TIMEOUT",
        "STATESIDE_SHUTDOWN_TIMEOUT", "STATESIDE_HEARTBEAT_INTERVAL",
        "STATESIDE_LOG_FORMAT",
        "STATESIDE_LOG_LEVEL", "STATESIDE_KEY_PREFIX", "OPT_OUT_TTL",
        "STATESIDE_MAX_SESSIONS", "STATESIDE_MAX_ATTRIBUTES",
        "STATESIDE_MAX_ATTRIBUTE_BYTES", "STATESIDE_MAX_SESSION_BYTES",
        "STATESIDE_REDIS_TLS_CA_FILE", "STATESIDE_REDIS_TLS_CERT_FILE",
        "STATESIDE_REDIS_TLS_KEY_FILE", "STATESIDE_REDIS_TLS_SERVER_NAME",
        "STATESIDE_REDIS_CONNECTIONS", "STATESIDE_REDIS_CONNECT_TIMEOUT",
        "STATESIDE_REDIS_COMMAND_TIMEOUT", "STATESIDE_ADMIN_TOKEN_FILE",
        "STATESIDE_REDIS_READINESS_DEBOUNCE",
        "STATESIDE_MAX_SESSIONS_PER_USER", "STATESIDE_SESSION_LIMIT_POLICY",
        "STATESIDE_MAX_ROOMS_PER_CONNECTION",
        "STATESIDE_PUBLISH_RATE_PER_USER", "STATESIDE_PUBLISH_BURST_PER_USER",
        "STATESIDE_ROOM_HISTORY_BYTES", "REDIS_SENTINEL_USERNAME",
        "STATESIDE_SESSION_TOUCH_GRANULARITY", "STATESIDE_ENVELOPE_VERSION"}) {
    EXPECT_THAT(line->output, HasSubstr(std::string("(Env:") + env + ")")) << env;
  }
  for (const char* default_text :
       {"=/tmp/stateside/stateside.sock", "=127.0.0.1:9464", "=24h", "=7d",
        "=0s", "=10s", "=30s", "=text", "=info", "=none", "=false",
        "=stateside:", "=365d", "=100000", "=64", "=65536", "=262144", "=2s",
        "=1s", "default: unset"}) {
    EXPECT_THAT(line->output, HasSubstr(default_text)) << default_text;
  }
  EXPECT_EQ(SettingNames().size(), 56u);
}

TEST_F(ConfigTest, AllowedUidsAreAListOfUids) {
  auto none = Parse({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->allowed_uids.empty()) << "unset: file permissions decide";
  auto some = Parse({{"STATESIDE_ALLOWED_UIDS", "10001, 0,4294967294"}});
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_EQ(some->allowed_uids, (std::vector<uint32_t>{10001, 0, 4294967294u}));
  auto flag = Parse({}, {"--allowed-uids", "7"});
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ(flag->allowed_uids, (std::vector<uint32_t>{7}));
  for (const char* bad : {"abc", "-1", "4294967295", "1,,2", "1,"}) {
    EXPECT_THAT(ExpectError({{"STATESIDE_ALLOWED_UIDS", bad}}, "STATESIDE_ALLOWED_UIDS"),
                HasSubstr("\"")) << bad;
  }
}

TEST_F(ConfigTest, VersionIsPrinted) {
  auto line = ParseLine({"--version"}, {});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->action, CommandLine::Action::kPrintVersion);
  EXPECT_THAT(line->output, StartsWith("stateside "));
}

TEST_F(ConfigTest, SummaryNamesSourcesAndHidesSecrets) {
  const std::string url = "redis://user:hunter2-password@redis:6379/0";
  auto config = Parse({{"REDIS_URL", url},
                       {"SESSION_ENCRYPTION_KEY", kKeyHex},
                       {"SESSION_SECRET", kSecret}},
                      {"--instance-id", "pod-7"});
  ASSERT_TRUE(config.ok()) << config.status();
  std::string all;
  for (const std::string& line : config->summary) all += line + "\n";
  EXPECT_THAT(all, HasSubstr("SESSION_ENCRYPTION_KEY=<set> (env)"));
  EXPECT_THAT(all, HasSubstr("SESSION_SECRET=<set> (env)"));
  EXPECT_THAT(all, HasSubstr("REDIS_URL=redis://user:***@redis:6379/0 (env)"));
  EXPECT_THAT(all, HasSubstr("INSTANCE_ID=pod-7 (flag)"));
  EXPECT_THAT(all, HasSubstr("SESSION_IDLE_TTL=24h (default)"));
  EXPECT_THAT(all, Not(HasSubstr(kKeyHex)));
  EXPECT_THAT(all, Not(HasSubstr(kSecret)));
  EXPECT_THAT(all, Not(HasSubstr("hunter2")));
  EXPECT_THAT(config->overrides,
              ::testing::UnorderedElementsAre(
                  "REDIS_URL=redis://user:***@redis:6379/0 (env)",
                  "SESSION_ENCRYPTION_KEY=<set> (env)",
                  "SESSION_SECRET=<set> (env)", "INSTANCE_ID=pod-7 (flag)"));
}

TEST_F(ConfigTest, WipeSecretsClearsKeysAndSecrets) {
  auto config = Parse(
      {{"SESSION_ENCRYPTION_KEY", kKeyHex}, {"SESSION_SECRET", kSecret}});
  ASSERT_TRUE(config.ok()) << config.status();
  WipeSecrets(*config);
  EXPECT_TRUE(config->encryption_keys.empty());
  EXPECT_TRUE(config->session_secrets.empty());
}

}  // namespace
}  // namespace stateside

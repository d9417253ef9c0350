// The configuration's validation rules: typed parsing and cross-checks.
#include "sidecar/server/config_rules.h"

#include <string.h>

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/lifecycle/instance.h"
#include "sidecar/server/config_secrets.h"
#include "sidecar/server/config_values.h"

namespace stateside::config_rules {
namespace {

namespace cv = config_values;

constexpr size_t kMaxSocketPathBytes = 107;  // sun_path is 108 with the NUL
constexpr size_t kMaxKeyPrefixBytes = 64;
constexpr int64_t kMaxBytesSetting = 64 << 20;
// The admin token's floor, as for cookie secrets (`openssl rand -hex 32`: 64).
constexpr size_t kMinAdminTokenBytes = 32;
// A debounce longer than this would keep a pod that cannot reach Redis in
// the Service for minutes: a mistake, not a tuning (a minute covers a
// managed Redis failover).
constexpr absl::Duration kMaxReadinessDebounce = absl::Minutes(1);
// Beyond an hour a coalesced touch would say little about activity; the 1%
// of the idle TTL bounds it further per session.
constexpr absl::Duration kMaxTouchGranularity = absl::Hours(1);

absl::Status SettingError(absl::string_view env, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(env, ": ", message));
}

// gRPC reads the socket path as part of a URI ("unix:<path>"), where %, ?
// and # have meanings; spaces and control characters only cause trouble.
bool IsSocketPathChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '/' ||
         c == '.' || c == '_' || c == '-' || c == '+' || c == '~' || c == '@' ||
         c == '=' || c == ',' || c == ':';
}

absl::Status GetDuration(const RawSettings& raw, absl::string_view env,
                         absl::Duration* out) {
  auto d = cv::ParseDuration(raw.Get(env));
  if (!d.ok()) return SettingError(env, d.status().message());
  *out = *d;
  return absl::OkStatus();
}

absl::Status GetPositiveDuration(const RawSettings& raw, absl::string_view env,
                                 absl::Duration* out) {
  RETURN_IF_ERROR(GetDuration(raw, env, out));
  if (*out <= absl::ZeroDuration()) return SettingError(env, "must be positive");
  return absl::OkStatus();
}

template <typename T>
absl::Status GetInt(const RawSettings& raw, absl::string_view env, int64_t min,
                    int64_t max, T* out) {
  auto v = cv::ParseInt(raw.Get(env), min, max);
  if (!v.ok()) return SettingError(env, v.status().message());
  *out = static_cast<T>(*v);
  return absl::OkStatus();
}

// A secret given directly or through its _FILE twin ("" if neither). Both
// set is an error.
absl::StatusOr<std::string> SecretOrFile(const RawSettings& raw,
                                         absl::string_view env,
                                         absl::string_view file_env) {
  if (raw.IsSet(env) && raw.IsSet(file_env)) {
    return SettingError(env, absl::StrCat("set either ", env, " or ", file_env,
                                          ", not both"));
  }
  if (raw.IsSet(file_env)) {
    auto text = cv::ReadSecretFile(raw.Get(file_env));
    if (!text.ok()) return SettingError(file_env, text.status().message());
    return text;
  }
  return raw.Get(env);
}

absl::Status ParseKeys(const RawSettings& raw, Config& config) {
  const bool single = raw.IsSet("SESSION_ENCRYPTION_KEY") ||
                      raw.IsSet("SESSION_ENCRYPTION_KEY_FILE");
  const bool list = raw.IsSet("SESSION_ENCRYPTION_KEYS") ||
                    raw.IsSet("SESSION_ENCRYPTION_KEYS_FILE");
  if (single && list) {
    return SettingError("SESSION_ENCRYPTION_KEY",
                        "set either SESSION_ENCRYPTION_KEY or "
                        "SESSION_ENCRYPTION_KEYS (or a _FILE variant), not both");
  }
  if (!single && !list) return absl::OkStatus();
  const absl::string_view env =
      single ? "SESSION_ENCRYPTION_KEY" : "SESSION_ENCRYPTION_KEYS";
  const std::string file_env = absl::StrCat(env, "_FILE");
  ASSIGN_OR_RETURN(std::string text, SecretOrFile(raw, env, file_env));
  const absl::string_view named = raw.IsSet(file_env) ? file_env : env;
  if (absl::Status s = config_secrets::CheckKeyText(named, text); !s.ok()) {
    explicit_bzero(text.data(), text.size());
    return s;
  }
  auto specs = single ? crypto::Keyring::ParseHexKey(text)
                      : crypto::Keyring::ParseKeyList(text);
  explicit_bzero(text.data(), text.size());
  if (!specs.ok()) return SettingError(named, specs.status().message());
  // Keyring::Create holds every rule (unique ids, sizes): check them now,
  // while the error can still name the setting.
  auto keyring = crypto::Keyring::Create(*specs);
  if (!keyring.ok()) return SettingError(named, keyring.status().message());
  std::vector<std::string_view> keys;
  for (const crypto::KeySpec& spec : *specs) keys.push_back(spec.bytes);
  if (absl::Status s = config_secrets::CheckKeys(named, keys); !s.ok()) {
    for (crypto::KeySpec& spec : *specs) explicit_bzero(spec.bytes.data(), spec.bytes.size());
    return s;
  }
  config.encryption_keys = std::move(*specs);
  return absl::OkStatus();
}

absl::Status ParseSecrets(const RawSettings& raw, Config& config) {
  ASSIGN_OR_RETURN(std::string text,
                   SecretOrFile(raw, "SESSION_SECRET", "SESSION_SECRET_FILE"));
  if (text.empty()) return absl::OkStatus();
  const absl::string_view named =
      raw.IsSet("SESSION_SECRET_FILE") ? "SESSION_SECRET_FILE" : "SESSION_SECRET";
  auto secrets = cv::SplitList(text);
  if (!secrets.ok()) {
    explicit_bzero(text.data(), text.size());
    return SettingError(named, secrets.status().message());
  }
  const std::vector<std::string_view> views(secrets->begin(), secrets->end());
  absl::Status strength = config_secrets::CheckCookieSecrets(named, text, views);
  explicit_bzero(text.data(), text.size());
  if (!strength.ok()) {
    for (auto& secret : *secrets) explicit_bzero(secret.data(), secret.size());
    return strength;
  }
  config.session_secrets = std::move(*secrets);
  return absl::OkStatus();
}

absl::Status ParseRedis(const RawSettings& raw, Config& config) {
  RedisConfig& redis = config.redis;
  // The URL may hold the Redis password: REDIS_URL_FILE keeps it out of the
  // environment. Errors name the setting the URL came from.
  ASSIGN_OR_RETURN(redis.url, SecretOrFile(raw, "REDIS_URL", "REDIS_URL_FILE"));
  const absl::string_view url_setting =
      raw.IsSet("REDIS_URL_FILE") ? "REDIS_URL_FILE" : "REDIS_URL";
  const std::string topology = absl::AsciiStrToLower(raw.Get("STATESIDE_REDIS_TOPOLOGY"));
  if (topology == "standalone") {
    redis.topology = redis::RedisTopology::kStandalone;
  } else if (topology == "cluster") {
    redis.topology = redis::RedisTopology::kCluster;
  } else if (topology == "sentinel") {
    redis.topology = redis::RedisTopology::kSentinel;
  } else {
    return SettingError("STATESIDE_REDIS_TOPOLOGY",
                        absl::StrCat("unknown value \"", raw.Get("STATESIDE_REDIS_TOPOLOGY"),
                                     "\": use standalone, cluster or sentinel"));
  }
  if (redis.topology != redis::RedisTopology::kStandalone && redis.url.empty()) {
    return SettingError("STATESIDE_REDIS_TOPOLOGY",
                        absl::StrCat(topology, " requires REDIS_URL (its node list)"));
  }
  redis.sentinel_master = raw.Get("REDIS_SENTINEL_MASTER");
  redis.sentinel_username = raw.Get("REDIS_SENTINEL_USERNAME");
  ASSIGN_OR_RETURN(redis.sentinel_password,
                   SecretOrFile(raw, "REDIS_SENTINEL_PASSWORD", "REDIS_SENTINEL_PASSWORD_FILE"));
  if (redis.topology == redis::RedisTopology::kSentinel) {
    if (redis.sentinel_master.empty()) {
      return SettingError("REDIS_SENTINEL_MASTER",
                          "required with STATESIDE_REDIS_TOPOLOGY=sentinel");
    }
    if (!redis.sentinel_username.empty() && redis.sentinel_password.empty()) {
      return SettingError("REDIS_SENTINEL_USERNAME",
                          "needs REDIS_SENTINEL_PASSWORD (a user name alone cannot AUTH)");
    }
  } else {
    // Set without sentinel, the URL would be used as a data node: the
    // sentinel's own address, silently. Refuse instead.
    for (absl::string_view env : {"REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD",
                                  "REDIS_SENTINEL_PASSWORD_FILE", "REDIS_SENTINEL_USERNAME"}) {
      if (raw.IsSet(env)) {
        return SettingError(env, "needs STATESIDE_REDIS_TOPOLOGY=sentinel");
      }
    }
  }
  if (!redis.url.empty()) {
    redis::RedisOptions base;
    base.topology = redis.topology;
    base.sentinel_master = redis.sentinel_master;
    if (auto parsed = redis::ParseRedisUrl(redis.url, base); !parsed.ok()) {
      return SettingError(url_setting, parsed.status().message());
    }
    RETURN_IF_ERROR(config_secrets::CheckRedisUrlSecret(url_setting, redis.url));
  }
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_REDIS_WAIT_REPLICAS", 0, 16, &redis.wait_replicas));
  RETURN_IF_ERROR(GetPositiveDuration(raw, "STATESIDE_REDIS_WAIT_TIMEOUT", &redis.wait_timeout));
  if (redis.wait_replicas > 0 && redis.url.empty()) {
    return SettingError("STATESIDE_REDIS_WAIT_REPLICAS", "needs REDIS_URL (replicas are Redis's)");
  }
  auto required = cv::ParseBool(raw.Get("USE_REDIS_SESSIONS"));
  if (!required.ok()) {
    return SettingError("USE_REDIS_SESSIONS", required.status().message());
  }
  redis.required = *required;
  if (redis.required && redis.url.empty()) {
    return SettingError("USE_REDIS_SESSIONS",
                        "true requires REDIS_URL (Redis is mandatory)");
  }
  const std::string fallback = absl::AsciiStrToLower(raw.Get("STATESIDE_FALLBACK"));
  if (fallback == "none") {
    redis.fallback = Fallback::kNone;
  } else if (fallback == "memory") {
    redis.fallback = Fallback::kMemory;
    if (redis.url.empty()) {
      config.warnings.push_back(
          "STATESIDE_FALLBACK=memory has no effect without REDIS_URL");
    }
  } else {
    return SettingError("STATESIDE_FALLBACK",
                        absl::StrCat("unknown value \"", raw.Get("STATESIDE_FALLBACK"),
                                     "\": use none or memory"));
  }
  redis.tls_ca_file = raw.Get("STATESIDE_REDIS_TLS_CA_FILE");
  redis.tls_cert_file = raw.Get("STATESIDE_REDIS_TLS_CERT_FILE");
  redis.tls_key_file = raw.Get("STATESIDE_REDIS_TLS_KEY_FILE");
  redis.tls_server_name = raw.Get("STATESIDE_REDIS_TLS_SERVER_NAME");
  for (const auto& [env, path] :
       {std::pair<absl::string_view, const std::string*>{
            "STATESIDE_REDIS_TLS_CA_FILE", &redis.tls_ca_file},
        {"STATESIDE_REDIS_TLS_CERT_FILE", &redis.tls_cert_file},
        {"STATESIDE_REDIS_TLS_KEY_FILE", &redis.tls_key_file}}) {
    if (path->empty()) continue;
    if (auto s = cv::CheckReadableFile(*path); !s.ok()) {
      return SettingError(env, s.message());
    }
  }
  if (!redis.tls_cert_file.empty() && redis.tls_key_file.empty()) {
    return SettingError("STATESIDE_REDIS_TLS_KEY_FILE",
                        "required with STATESIDE_REDIS_TLS_CERT_FILE");
  }
  if (redis.tls_cert_file.empty() && !redis.tls_key_file.empty()) {
    return SettingError("STATESIDE_REDIS_TLS_CERT_FILE",
                        "required with STATESIDE_REDIS_TLS_KEY_FILE");
  }
  const bool any_tls = !redis.tls_ca_file.empty() ||
                       !redis.tls_cert_file.empty() ||
                       !redis.tls_server_name.empty();
  if (any_tls && !absl::StartsWith(redis.url, "rediss://")) {
    config.warnings.push_back(
        "STATESIDE_REDIS_TLS_* settings are ignored: REDIS_URL is not rediss://");
  }
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_REDIS_CONNECTIONS", 1, 64,
                         &redis.connections));
  RETURN_IF_ERROR(GetPositiveDuration(raw, "STATESIDE_REDIS_CONNECT_TIMEOUT",
                                      &redis.connect_timeout));
  RETURN_IF_ERROR(GetPositiveDuration(raw, "STATESIDE_REDIS_COMMAND_TIMEOUT",
                                      &redis.command_timeout));
  RETURN_IF_ERROR(GetDuration(raw, "STATESIDE_REDIS_READINESS_DEBOUNCE",
                              &redis.readiness_debounce));
  if (redis.readiness_debounce > kMaxReadinessDebounce) {
    return SettingError("STATESIDE_REDIS_READINESS_DEBOUNCE",
                        absl::StrCat("must be at most ",
                                     absl::FormatDuration(kMaxReadinessDebounce),
                                     ": a pod without Redis must leave the Service"));
  }
  return absl::OkStatus();
}

absl::Status ParseListeners(const RawSettings& raw, Config& config) {
  config.socket_path = raw.Get("STATESIDE_SOCKET");
  if (config.socket_path.empty()) {
    return SettingError("STATESIDE_SOCKET", "must not be empty");
  }
  if (config.socket_path.size() > kMaxSocketPathBytes) {
    return SettingError(
        "STATESIDE_SOCKET",
        absl::StrCat("path is ", config.socket_path.size(),
                     " bytes; a Unix socket path is at most ",
                     kMaxSocketPathBytes));
  }
  if (absl::EndsWith(config.socket_path, "/")) {
    return SettingError("STATESIDE_SOCKET", "names a directory, not a socket");
  }
  for (char c : config.socket_path) {
    if (!IsSocketPathChar(c)) {
      return SettingError("STATESIDE_SOCKET",
                          "may contain only letters, digits and / . _ - + ~ @ = , :");
    }
  }
  const std::string uids = raw.Get("STATESIDE_ALLOWED_UIDS");
  config.allowed_uids.clear();
  if (!uids.empty()) {
    for (absl::string_view part : absl::StrSplit(uids, ',')) {
      // 2^32 - 1 is (uid_t)-1, "no uid": never a peer's.
      auto uid = cv::ParseInt(absl::StripAsciiWhitespace(part), 0, 4294967294);
      if (!uid.ok()) {
        return SettingError("STATESIDE_ALLOWED_UIDS",
                            absl::StrCat("\"", part, "\": ", uid.status().message()));
      }
      config.allowed_uids.push_back(static_cast<uint32_t>(*uid));
    }
  }
  auto frames = cv::ParseBool(raw.Get("STATESIDE_FRAMES"));
  if (!frames.ok()) return SettingError("STATESIDE_FRAMES", frames.status().message());
  config.frames = *frames;
  auto admin = cv::ParseHostPort(raw.Get("STATESIDE_ADMIN_ADDR"));
  if (!admin.ok()) {
    return SettingError("STATESIDE_ADMIN_ADDR", admin.status().message());
  }
  config.admin_host = admin->host;
  config.admin_port = admin->port;
  return absl::OkStatus();
}

absl::Status ParseAdminToken(const RawSettings& raw, Config& config) {
  constexpr absl::string_view kEnv = "STATESIDE_ADMIN_TOKEN_FILE";
  if (!raw.IsSet(kEnv)) return absl::OkStatus();
  auto token = cv::ReadSecretFile(raw.Get(kEnv));
  if (!token.ok()) return SettingError(kEnv, token.status().message());
  absl::Status problem;
  if (token->size() < kMinAdminTokenBytes) {
    problem = SettingError(kEnv, absl::StrCat("the token is shorter than ",
                                              kMinAdminTokenBytes, " bytes"));
  } else if (!std::all_of(token->begin(), token->end(), [](char c) {
               return c > ' ' && c < 0x7f;
             })) {
    problem = SettingError(
        kEnv, "the token may hold only printable ASCII without spaces "
              "(it is sent in an Authorization header)");
  }
  if (!problem.ok()) {
    explicit_bzero(token->data(), token->size());
    return problem;
  }
  config.admin_token = *std::move(token);
  return absl::OkStatus();
}

absl::Status ParseTimes(const RawSettings& raw, Config& config) {
  RETURN_IF_ERROR(GetPositiveDuration(raw, "SESSION_IDLE_TTL", &config.idle_ttl));
  RETURN_IF_ERROR(
      GetPositiveDuration(raw, "SESSION_ABSOLUTE_TTL", &config.absolute_ttl));
  if (config.idle_ttl > config.absolute_ttl) {
    return SettingError(
        "SESSION_IDLE_TTL",
        absl::StrCat(absl::FormatDuration(config.idle_ttl),
                     " is longer than SESSION_ABSOLUTE_TTL (",
                     absl::FormatDuration(config.absolute_ttl), ")"));
  }
  RETURN_IF_ERROR(GetDuration(raw, "STATESIDE_SESSION_TOUCH_GRANULARITY",
                              &config.touch_granularity));
  if (config.touch_granularity < absl::ZeroDuration() ||
      config.touch_granularity > kMaxTouchGranularity) {
    return SettingError("STATESIDE_SESSION_TOUCH_GRANULARITY",
                        absl::StrCat("must be between 0 and ",
                                     absl::FormatDuration(kMaxTouchGranularity)));
  }
  auto near_cache = cv::ParseBool(raw.Get("STATESIDE_SESSION_NEAR_CACHE"));
  if (!near_cache.ok()) {
    return SettingError("STATESIDE_SESSION_NEAR_CACHE", near_cache.status().message());
  }
  config.near_cache = *near_cache;
  if (config.near_cache && config.redis.url.empty()) {
    return SettingError("STATESIDE_SESSION_NEAR_CACHE", "needs REDIS_URL (it caches Redis)");
  }
  if (config.near_cache && config.redis.topology == redis::RedisTopology::kCluster) {
    return SettingError("STATESIDE_SESSION_NEAR_CACHE",
                        "not available with STATESIDE_REDIS_TOPOLOGY=cluster (Redis tracks "
                        "reads per node); turn it off");
  }
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_SESSION_NEAR_CACHE_BYTES", 1 << 20, int64_t{1} << 40,
                         &config.near_cache_bytes));
  RETURN_IF_ERROR(GetPositiveDuration(raw, "OPT_OUT_TTL", &config.opt_out_ttl));
  RETURN_IF_ERROR(
      GetPositiveDuration(raw, "STATESIDE_REQUEST_ID_TTL", &config.request_id_ttl));
  RETURN_IF_ERROR(
      GetDuration(raw, "STATESIDE_PRESTOP_DELAY", &config.prestop_delay));
  RETURN_IF_ERROR(
      GetDuration(raw, "STATESIDE_DRAIN_TIMEOUT", &config.drain_timeout));
  RETURN_IF_ERROR(GetPositiveDuration(raw, "STATESIDE_SHUTDOWN_TIMEOUT",
                                      &config.shutdown_timeout));
  RETURN_IF_ERROR(GetPositiveDuration(raw, "STATESIDE_HEARTBEAT_INTERVAL",
                                      &config.heartbeat_interval));
  if (config.heartbeat_interval < absl::Milliseconds(100)) {
    return SettingError("STATESIDE_HEARTBEAT_INTERVAL",
                        "must be at least 100ms");
  }
  if (config.shutdown_timeout < config.drain_timeout + config.prestop_delay) {
    return SettingError(
        "STATESIDE_SHUTDOWN_TIMEOUT",
        absl::StrCat(absl::FormatDuration(config.shutdown_timeout),
                     " is shorter than STATESIDE_DRAIN_TIMEOUT + "
                     "STATESIDE_PRESTOP_DELAY (",
                     absl::FormatDuration(config.drain_timeout +
                                          config.prestop_delay),
                     ")"));
  }
  return absl::OkStatus();
}

absl::Status ParseLimits(const RawSettings& raw, Config& config) {
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_MAX_SESSIONS", 1, 100'000'000,
                         &config.max_sessions));
  RETURN_IF_ERROR(
      GetInt(raw, "STATESIDE_MAX_ATTRIBUTES", 1, 65536, &config.max_attributes));
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_MAX_ATTRIBUTE_BYTES", 1,
                         kMaxBytesSetting, &config.max_attribute_bytes));
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_MAX_SESSION_BYTES", 1,
                         kMaxBytesSetting, &config.max_session_bytes));
  if (config.max_session_bytes < config.max_attribute_bytes) {
    return SettingError("STATESIDE_MAX_SESSION_BYTES",
                        "is smaller than STATESIDE_MAX_ATTRIBUTE_BYTES");
  }
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_ENVELOPE_VERSION", 1, 2, &config.envelope_version));
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_MAX_SESSIONS_PER_USER", 0, 1'000'000,
                         &config.max_sessions_per_user));
  const std::string limit_policy =
      absl::AsciiStrToLower(raw.Get("STATESIDE_SESSION_LIMIT_POLICY"));
  if (limit_policy != "refuse" && limit_policy != "end_oldest") {
    return SettingError("STATESIDE_SESSION_LIMIT_POLICY",
                        absl::StrCat("unknown value \"", raw.Get("STATESIDE_SESSION_LIMIT_POLICY"),
                                     "\": use refuse or end_oldest"));
  }
  config.session_limit_end_oldest = limit_policy == "end_oldest";
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_MAX_ROOMS_PER_CONNECTION", 1, 65536,
                         &config.max_rooms_per_connection));
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_PUBLISH_RATE_PER_USER", 0, 1'000'000,
                         &config.publish_rate_per_user));
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_PUBLISH_BURST_PER_USER", 1, 1'000'000,
                         &config.publish_burst_per_user));
  // At least one event of the largest payload (64 KiB) and its envelope.
  RETURN_IF_ERROR(GetInt(raw, "STATESIDE_ROOM_HISTORY_BYTES", 128 * 1024,
                         kMaxBytesSetting, &config.room_history_bytes));
  return absl::OkStatus();
}

absl::Status ParseMisc(const RawSettings& raw, Config& config) {
  config.instance_id = raw.Get("INSTANCE_ID");
  if (!config.instance_id.empty()) {
    if (auto s = lifecycle::ValidateInstanceId(config.instance_id); !s.ok()) {
      return SettingError("INSTANCE_ID", s.message());
    }
  }
  config.key_prefix = raw.Get("STATESIDE_KEY_PREFIX");
  if (config.key_prefix.size() > kMaxKeyPrefixBytes) {
    return SettingError("STATESIDE_KEY_PREFIX",
                        absl::StrCat("longer than ", kMaxKeyPrefixBytes, " bytes"));
  }
  for (char c : config.key_prefix) {
    // No braces: they would change the Redis Cluster hash tags of the keys.
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != ':' &&
        c != '_' && c != '.' && c != '-') {
      return SettingError("STATESIDE_KEY_PREFIX",
                          "may contain only letters, digits and : _ . -");
    }
  }
  const std::string format = absl::AsciiStrToLower(raw.Get("STATESIDE_LOG_FORMAT"));
  if (format == "text") {
    config.log_format = LogFormat::kText;
  } else if (format == "json") {
    config.log_format = LogFormat::kJson;
  } else {
    return SettingError("STATESIDE_LOG_FORMAT",
                        absl::StrCat("unknown value \"", raw.Get("STATESIDE_LOG_FORMAT"),
                                     "\": use text or json"));
  }
  std::string level = absl::AsciiStrToLower(raw.Get("STATESIDE_LOG_LEVEL"));
  if (level == "warning") level = "warn";
  if (level == "err") level = "error";
  if (level != "trace" && level != "debug" && level != "info" &&
      level != "warn" && level != "error" && level != "critical" &&
      level != "off") {
    return SettingError(
        "STATESIDE_LOG_LEVEL",
        absl::StrCat("unknown level \"", raw.Get("STATESIDE_LOG_LEVEL"),
                     "\": use trace, debug, info, warn, error, critical or off"));
  }
  config.log_level = level;
  return absl::OkStatus();
}

}  // namespace

RawSettings::~RawSettings() {
  for (auto& [env, value] : values_) explicit_bzero(value.data(), value.size());
}

void RawSettings::Set(absl::string_view env, std::string value) {
  values_[std::string(env)] = std::move(value);
}

const std::string& RawSettings::Get(absl::string_view env) const {
  static const std::string* const kEmpty = new std::string();
  auto it = values_.find(std::string(env));
  return it == values_.end() ? *kEmpty : it->second;
}

absl::Status Validate(const RawSettings& raw, Config& config) {
  RETURN_IF_ERROR(ParseListeners(raw, config));
  RETURN_IF_ERROR(ParseAdminToken(raw, config));
  RETURN_IF_ERROR(ParseRedis(raw, config));
  RETURN_IF_ERROR(ParseKeys(raw, config));
  RETURN_IF_ERROR(ParseSecrets(raw, config));
  RETURN_IF_ERROR(ParseTimes(raw, config));
  RETURN_IF_ERROR(ParseLimits(raw, config));
  RETURN_IF_ERROR(ParseMisc(raw, config));
  if (config.redis_enabled()) {
    // Shared sessions must be readable by every instance and survive a
    // restart: an ephemeral per-process key or secret would lose them.
    if (config.encryption_keys.empty()) {
      return SettingError("SESSION_ENCRYPTION_KEY",
                          "required with REDIS_URL (set SESSION_ENCRYPTION_KEY, "
                          "SESSION_ENCRYPTION_KEYS or a _FILE variant)");
    }
    if (config.session_secrets.empty()) {
      return SettingError("SESSION_SECRET",
                          "required with REDIS_URL (set SESSION_SECRET or "
                          "SESSION_SECRET_FILE)");
    }
  }
  return absl::OkStatus();
}


}  // namespace stateside::config_rules

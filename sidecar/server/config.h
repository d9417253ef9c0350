// The sidecar's configuration: every setting `stateside --help` lists is
// a flag and an environment variable (`--redis-url` / REDIS_URL), parsed and
// validated once, before anything listens, into a Config. A flag wins over
// its variable, which wins over the default. ParseCommandLine is a pure
// function of (argv, environment) plus reads of the *_FILE settings, so tests
// call it directly. Config is a plain value: thread-compatible.
#ifndef STATESIDE_SIDECAR_SERVER_CONFIG_H_
#define STATESIDE_SIDECAR_SERVER_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/redis/redis_options.h"

namespace stateside {

enum class Fallback {
  kNone,    // Redis down: not ready, RPCs UNAVAILABLE (fail closed)
  kMemory,  // Redis down: serve from the embedded store, announced loudly
};

enum class LogFormat { kText, kJson };

struct RedisConfig {
  std::string url;        // REDIS_URL[_FILE]; "" = embedded memory store
  // STATESIDE_REDIS_TOPOLOGY; REDIS_SENTINEL_MASTER and the sentinels' own
  // AUTH (REDIS_SENTINEL_USERNAME, "" = the default user, and
  // REDIS_SENTINEL_PASSWORD[_FILE], a secret) with kSentinel.
  redis::RedisTopology topology = redis::RedisTopology::kStandalone;
  std::string sentinel_master;
  std::string sentinel_username;
  std::string sentinel_password;
  // STATESIDE_REDIS_WAIT_REPLICAS (0 = off) / STATESIDE_REDIS_WAIT_TIMEOUT.
  int wait_replicas = 0;
  absl::Duration wait_timeout = absl::Milliseconds(500);
  bool required = false;  // USE_REDIS_SESSIONS=true
  Fallback fallback = Fallback::kNone;
  std::string tls_ca_file;      // STATESIDE_REDIS_TLS_CA_FILE
  std::string tls_cert_file;    // STATESIDE_REDIS_TLS_CERT_FILE
  std::string tls_key_file;     // STATESIDE_REDIS_TLS_KEY_FILE
  std::string tls_server_name;  // STATESIDE_REDIS_TLS_SERVER_NAME
  int connections = 2;
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration command_timeout = absl::Seconds(1);
  // STATESIDE_REDIS_READINESS_DEBOUNCE: how long Redis (or the realtime
  // subscription) must stay lost before a ready sidecar turns not ready; a
  // shorter blip keeps the pod in the Service. Zero: at once.
  absl::Duration readiness_debounce = absl::Seconds(2);
};

struct Config {
  std::string socket_path = "/tmp/stateside/stateside.sock";
  // STATESIDE_ALLOWED_UIDS: when not empty, only peers with one of these
  // uids (SO_PEERCRED) may call the gRPC API.
  std::vector<uint32_t> allowed_uids;
  // STATESIDE_FRAMES: also serve Get and Update on the frame socket,
  // `<socket_path>.frames` (frame_server.h).
  bool frames = true;
  // STATESIDE_ADMIN_ADDR, split; port 0 lets the OS choose.
  std::string admin_host = "127.0.0.1";
  int admin_port = 9464;
  // The contents of STATESIDE_ADMIN_TOKEN_FILE: >= 32 bytes of printable
  // ASCII without spaces (it travels in a header). "" = no token: POST /drain
  // answers loopback peers only. A secret: wiped like the keys.
  std::string admin_token;

  RedisConfig redis;
  std::string key_prefix = "stateside:";

  // SESSION_ENCRYPTION_KEY(S)[_FILE], validated by crypto::Keyring. Empty
  // only in memory mode: the server then makes an ephemeral key.
  std::vector<crypto::KeySpec> encryption_keys;
  // STATESIDE_ENVELOPE_VERSION: the envelope format values are sealed in
  // (crypto::SealerOptions::seal_version); every version opens.
  int envelope_version = 2;
  // SESSION_SECRET[_FILE], each >= 32 bytes. Empty only in memory mode
  // (ephemeral, like the key).
  std::vector<std::string> session_secrets;

  absl::Duration idle_ttl = absl::Hours(24);
  absl::Duration absolute_ttl = absl::Hours(24 * 7);
  // A touching read writes the last access only when the stored one is this
  // much older (at most 1% of the session's idle TTL); 0 = every read.
  absl::Duration touch_granularity = absl::Seconds(60);
  // STATESIDE_SESSION_NEAR_CACHE[_BYTES]: sessions cached in this sidecar,
  // kept coherent by Redis (redis/near_cache.h); Redis only, not Cluster.
  bool near_cache = false;
  size_t near_cache_bytes = 64u << 20;
  absl::Duration opt_out_ttl = absl::Hours(24 * 365);
  // How long the first answer of a call with a request_id is kept.
  absl::Duration request_id_ttl = absl::Minutes(10);

  // Memory-store bound (sessions; also opt-out entries) and session limits.
  size_t max_sessions = 100000;
  size_t max_attributes = 64;
  size_t max_attribute_bytes = 64 * 1024;
  size_t max_session_bytes = 256 * 1024;

  // Per-user and per-connection caps (0 = none where allowed; see --help).
  size_t max_sessions_per_user = 100;
  // STATESIDE_SESSION_LIMIT_POLICY: at that cap, end the user's oldest
  // session (true) or refuse the new one (false, the default).
  bool session_limit_end_oldest = false;
  size_t max_rooms_per_connection = 1024;
  size_t publish_rate_per_user = 100;  // events per second, per instance
  size_t publish_burst_per_user = 200;
  size_t room_history_bytes = 1 << 20;

  std::string instance_id;  // "" = hostname-pid-random

  absl::Duration prestop_delay = absl::ZeroDuration();
  absl::Duration drain_timeout = absl::Seconds(10);
  absl::Duration shutdown_timeout = absl::Seconds(30);
  // Cluster registry (Redis only): heartbeat period; a record lives 3 of them.
  absl::Duration heartbeat_interval = absl::Seconds(2);

  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";  // a spdlog level name, normalised

  // For the startup log, free of secrets: one "NAME=value (source)" line per
  // setting (secrets shown as <set>, a Redis password masked), the same for
  // the settings given by flag or environment only, and warnings about odd
  // but accepted combinations.
  std::vector<std::string> summary;
  std::vector<std::string> overrides;
  std::vector<std::string> warnings;

  bool redis_enabled() const { return !redis.url.empty(); }
};

// Overwrites the key bytes and secrets (the admin token too) held by
// `config` and clears them.
void WipeSecrets(Config& config);

using Environment = std::map<std::string, std::string, std::less<>>;

// The process's environment (environ) as a map.
Environment ProcessEnvironment();

struct CommandLine {
  enum class Action { kRun, kPrintHelp, kPrintVersion };
  Action action = Action::kRun;
  std::string output;  // the text to print (stdout) for kPrintHelp/kPrintVersion
  Config config;       // for kRun
};

// Parses and validates args (args[0] is the program name) and `env`. On a bad
// or contradictory setting returns INVALID_ARGUMENT with one line that starts
// with the setting's environment name: "SESSION_IDLE_TTL: invalid duration…".
// Messages never contain a key or a secret.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             const Environment& env);

// Every setting's environment variable, in --help order.
std::vector<std::string_view> SettingNames();

// The environment variables that may hold a secret (keys, cookie secrets,
// REDIS_URL with its password): removed from the environment once read
// (hardening.h). Their *_FILE twins hold paths only.
std::vector<std::string_view> SecretEnvironmentNames();

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_CONFIG_H_

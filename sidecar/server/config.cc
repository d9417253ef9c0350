// The settings table, the command line (CLI11) and where each value came
// from; the rules themselves are in config_rules.cc.
#include "sidecar/server/config.h"

#include <string.h>

#include <memory>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/lifecycle/instance.h"
#include "sidecar/server/config_rules.h"
#include "sidecar/server/config_values.h"

extern char** environ;

namespace stateside {
namespace {

// One setting: its environment variable, flag, value syntax, default and help.
struct Spec {
  absl::string_view env;
  absl::string_view flag;  // without the leading "--"
  absl::string_view type;  // shown in --help
  absl::string_view default_value;  // "" = unset
  absl::string_view help;
  bool secret = false;  // never logged, never echoed
};

// The order is the order of --help.
constexpr Spec kSpecs[] = {
    {"STATESIDE_SOCKET", "socket", "PATH", "/tmp/stateside/stateside.sock",
     "Unix socket of the gRPC API (mode 0660, at most 107 bytes)"},
    {"STATESIDE_ALLOWED_UIDS", "allowed-uids", "UID,...", "",
     "only these uids may call the gRPC API, checked per connection with "
     "SO_PEERCRED; others get PERMISSION_DENIED [default: unset = the "
     "socket's file mode decides]"},
    {"STATESIDE_FRAMES", "frames", "BOOL", "true",
     "also serve SessionService Get and Update as length-prefixed frames on "
     "<STATESIDE_SOCKET>.frames (same mode and uid check; the C++ client's "
     "fast path, gRPC stays for the rest); skipped with a warning if that "
     "path exceeds 107 bytes"},
    {"STATESIDE_ADMIN_ADDR", "admin-addr", "HOST:PORT", "127.0.0.1:9464",
     "HTTP admin/probe listener"},
    {"STATESIDE_ADMIN_TOKEN_FILE", "admin-token-file", "PATH", "",
     "file holding the admin token (>= 32 bytes): POST /drain then needs "
     "`Authorization: Bearer <token>` from every peer [default: unset = "
     "POST /drain from loopback peers only]"},
    {"REDIS_URL", "redis-url", "URL", "",
     "redis://[user:pass@]host:port[/db], rediss:// (TLS) or unix:///path; "
     "with cluster or sentinel a node list h1:p1,h2:p2,... "
     "[default: unset = embedded memory store]"},
    {"REDIS_URL_FILE", "redis-url-file", "PATH", "",
     "file holding REDIS_URL, password included [default: unset]"},
    {"USE_REDIS_SESSIONS", "use-redis-sessions", "BOOL", "false",
     "true makes Redis mandatory (REDIS_URL required)"},
    {"STATESIDE_FALLBACK", "fallback", "none|memory", "none",
     "Redis down: none = fail closed (not ready, UNAVAILABLE), memory = "
     "serve from memory"},
    {"SESSION_ENCRYPTION_KEY", "session-encryption-key", "HEX", "",
     "AES-256 key, 64 hex chars [default: unset = ephemeral key in memory "
     "mode; required with Redis]",
     true},
    {"SESSION_ENCRYPTION_KEY_FILE", "session-encryption-key-file", "PATH", "",
     "file holding SESSION_ENCRYPTION_KEY [default: unset]"},
    {"SESSION_ENCRYPTION_KEYS", "session-encryption-keys", "KID:HEX,...", "",
     "several keys for rotation: the first encrypts, all decrypt [default: "
     "unset]",
     true},
    {"SESSION_ENCRYPTION_KEYS_FILE", "session-encryption-keys-file", "PATH", "",
     "file holding SESSION_ENCRYPTION_KEYS [default: unset]"},
    {"STATESIDE_ENVELOPE_VERSION", "envelope-version", "1|2", "2",
     "format of the values it encrypts: 2 (a per-epoch data key), or 1, the "
     "only one releases before 2 open: 1 while instances of such a release "
     "still run beside this one (a rolling upgrade), then 2. Both open either"},
    {"SESSION_SECRET", "session-secret", "SECRET,...", "",
     "cookie signing secrets, comma separated, each >= 32 bytes: the first "
     "signs, all verify [default: unset = ephemeral in memory mode; required "
     "with Redis]",
     true},
    {"SESSION_SECRET_FILE", "session-secret-file", "PATH", "",
     "file holding SESSION_SECRET [default: unset]"},
    {"SESSION_IDLE_TTL", "session-idle-ttl", "DURATION", "24h",
     "rolling idle timeout of a session"},
    {"SESSION_ABSOLUTE_TTL", "session-absolute-ttl", "DURATION", "7d",
     "hard cap on a session's life"},
    {"STATESIDE_SESSION_TOUCH_GRANULARITY", "session-touch-granularity", "DURATION", "60s",
     "a read writes the session's last access only when the stored one is "
     "this much older (at most 1% of the idle TTL): the idle expiry may come "
     "up to that much early, never late; 0 = every read writes"},
    {"STATESIDE_SESSION_NEAR_CACHE", "session-near-cache", "BOOL", "false",
     "keep sessions read in this sidecar's memory, kept coherent by Redis "
     "client-side caching (CLIENT TRACKING, invalidations on a pub/sub "
     "connection); standalone and sentinel only: refused with cluster"},
    {"STATESIDE_SESSION_NEAR_CACHE_BYTES", "session-near-cache-bytes", "BYTES", "67108864",
     "bound of the near cache: the sessions it holds (ids, sealed envelopes, "
     "metadata), least recently used first out"},
    {"OPT_OUT_TTL", "opt-out-ttl", "DURATION", "365d",
     "default lifetime of an analytics opt-out"},
    {"STATESIDE_REQUEST_ID_TTL", "request-id-ttl", "DURATION", "10m",
     "how long the first answer of a Create, Regenerate or Publish with a "
     "request_id is kept: a retry with the same request_id within it gets "
     "that answer instead of applying again"},
    {"INSTANCE_ID", "instance-id", "ID", "",
     "instance identity, [A-Za-z0-9._:-]{1,128} [default: unset = "
     "hostname-pid-random]"},
    {"STATESIDE_PRESTOP_DELAY", "prestop-delay", "DURATION", "0s",
     "on SIGTERM, stay serving (not ready) this long before telling the app "
     "to drain"},
    {"STATESIDE_DRAIN_TIMEOUT", "drain-timeout", "DURATION", "10s",
     "how long the app gets to drain"},
    {"STATESIDE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "DURATION", "30s",
     "hard cap from signal to exit (then exit status 1); >= drain timeout + "
     "prestop delay"},
    {"STATESIDE_HEARTBEAT_INTERVAL", "heartbeat-interval", "DURATION", "2s",
     "how often the instance record is refreshed in the cluster registry "
     "(Redis); a silent instance is dropped after 3 intervals"},
    {"STATESIDE_LOG_FORMAT", "log-format", "text|json", "text", "log format"},
    {"STATESIDE_LOG_LEVEL", "log-level", "LEVEL", "info",
     "trace, debug, info, warn, error, critical or off"},
    {"STATESIDE_KEY_PREFIX", "key-prefix", "PREFIX", "stateside:",
     "prefix of every Redis key, [A-Za-z0-9:_.-]{0,64}"},
    {"STATESIDE_MAX_SESSIONS", "max-sessions", "N", "100000",
     "memory store bound: sessions (and opt-out and request-id entries)"},
    {"STATESIDE_MAX_ATTRIBUTES", "max-attributes", "N", "64",
     "attributes per session"},
    {"STATESIDE_MAX_ATTRIBUTE_BYTES", "max-attribute-bytes", "BYTES", "65536",
     "size of one attribute value"},
    {"STATESIDE_MAX_SESSION_BYTES", "max-session-bytes", "BYTES", "262144",
     "stored size of a whole session (requests beyond it + 64 KiB are "
     "refused by gRPC)"},
    {"STATESIDE_MAX_SESSIONS_PER_USER", "max-sessions-per-user", "N", "100",
     "live sessions one user may hold: Create beyond it answers "
     "RESOURCE_EXHAUSTED (0 = no cap)"},
    {"STATESIDE_SESSION_LIMIT_POLICY", "session-limit-policy", "refuse|end_oldest",
     "refuse", "at STATESIDE_MAX_SESSIONS_PER_USER: refuse the new session, or "
     "end the user's oldest (a call may choose per request)"},
    {"STATESIDE_MAX_ROOMS_PER_CONNECTION", "max-rooms-per-connection", "N",
     "1024", "rooms one realtime connection may be in: a Register or Join "
     "beyond it answers RESOURCE_EXHAUSTED"},
    {"STATESIDE_PUBLISH_RATE_PER_USER", "publish-rate-per-user", "N", "100",
     "realtime events per second one sender_user_id may publish through "
     "this instance (token bucket); beyond it RESOURCE_EXHAUSTED (0 = no cap)"},
    {"STATESIDE_PUBLISH_BURST_PER_USER", "publish-burst-per-user", "N", "200",
     "bucket size of STATESIDE_PUBLISH_RATE_PER_USER: events one user may "
     "publish at once"},
    {"STATESIDE_ROOM_HISTORY_BYTES", "room-history-bytes", "BYTES", "1048576",
     "stored bytes of one target stream's event log (a room's, a user's, a "
     "connection's, the broadcasts'; History and Subscribe's resume), as well "
     "as its 1000 entries: the oldest events go first"},
    {"STATESIDE_REDIS_TOPOLOGY", "redis-topology", "standalone|cluster|sentinel",
     "standalone",
     "standalone: REDIS_URL names one node; cluster: its nodes are Redis "
     "Cluster seeds; sentinel: its nodes are sentinels"},
    {"REDIS_SENTINEL_MASTER", "redis-sentinel-master", "NAME", "",
     "the master name the sentinels know (required with sentinel)"},
    {"REDIS_SENTINEL_PASSWORD", "redis-sentinel-password", "PASSWORD", "",
     "the sentinels' own password [default: unset = none]", true},
    {"REDIS_SENTINEL_PASSWORD_FILE", "redis-sentinel-password-file", "PATH", "",
     "file holding REDIS_SENTINEL_PASSWORD [default: unset]"},
    {"REDIS_SENTINEL_USERNAME", "redis-sentinel-username", "NAME", "",
     "the sentinels' ACL user, with REDIS_SENTINEL_PASSWORD [default: unset = "
     "the default user]"},
    {"STATESIDE_REDIS_WAIT_REPLICAS", "redis-wait-replicas", "N", "0",
     "acknowledged session writes wait for this many replicas (WAIT), else "
     "UNAVAILABLE (0: off)"},
    {"STATESIDE_REDIS_WAIT_TIMEOUT", "redis-wait-timeout", "DURATION", "500ms",
     "how long a write waits for its replicas"},
    {"STATESIDE_REDIS_TLS_CA_FILE", "redis-tls-ca-file", "PATH", "",
     "CA bundle for rediss:// [default: unset = system CAs]"},
    {"STATESIDE_REDIS_TLS_CERT_FILE", "redis-tls-cert-file", "PATH", "",
     "client certificate for rediss:// [default: unset]"},
    {"STATESIDE_REDIS_TLS_KEY_FILE", "redis-tls-key-file", "PATH", "",
     "client key for rediss:// [default: unset]"},
    {"STATESIDE_REDIS_TLS_SERVER_NAME", "redis-tls-server-name", "NAME", "",
     "name to verify in the server certificate [default: unset = URL host]"},
    {"STATESIDE_REDIS_CONNECTIONS", "redis-connections", "N", "2",
     "Redis connections (commands are pipelined on them)"},
    {"STATESIDE_REDIS_CONNECT_TIMEOUT", "redis-connect-timeout", "DURATION",
     "2s", "Redis connect timeout"},
    {"STATESIDE_REDIS_COMMAND_TIMEOUT", "redis-command-timeout", "DURATION",
     "1s", "Redis command timeout"},
    {"STATESIDE_REDIS_READINESS_DEBOUNCE", "redis-readiness-debounce",
     "DURATION", "2s",
     "how long Redis must stay unreachable before a ready sidecar turns not "
     "ready (0s: at once); a shorter blip keeps the pod in the Service"},
};
constexpr size_t kNumSpecs = sizeof(kSpecs) / sizeof(kSpecs[0]);

enum class Source { kDefault, kEnv, kFlag };

// CLI11 keeps pointers into `values`, which must not reallocate.
std::unique_ptr<CLI::App> BuildApp(std::vector<std::string>* values,
                                   bool* version, bool with_env) {
  auto app = std::make_unique<CLI::App>(
      "stateside: the per-pod sidecar that holds a web application's state "
      "(sessions, opt-outs) and serves it over gRPC on a Unix socket.",
      "stateside");
  app->get_formatter()->column_width(52);
  app->footer(
      "Every setting is a flag and the environment variable shown; a flag "
      "wins over its variable.\nDurations: a number and a unit (ns, us, ms, "
      "s, m, h, d), e.g. 30s, 15m, 24h, 7d.\nSecrets: prefer the variables or "
      "the *_FILE settings (flags show in `ps`).");
  app->add_flag("--version", *version, "print the version and exit");
  for (size_t i = 0; i < kNumSpecs; ++i) {
    const Spec& spec = kSpecs[i];
    CLI::Option* opt = app->add_option(absl::StrCat("--", spec.flag),
                                       (*values)[i], std::string(spec.help));
    opt->type_name(std::string(spec.type));
    if (!spec.default_value.empty()) {
      opt->default_str(std::string(spec.default_value));
    }
    if (with_env) opt->envname(std::string(spec.env));
  }
  return app;
}

std::string HelpText() {
  std::vector<std::string> values(kNumSpecs);
  bool version = false;
  return BuildApp(&values, &version, /*with_env=*/true)->help();
}

// "NAME=value (source)", with secrets shown as <set> and a Redis password
// masked: the startup log says which settings were used, never a secret.
std::string Describe(const Spec& spec, const std::string& value, Source source) {
  const absl::string_view from = source == Source::kFlag  ? "flag"
                                 : source == Source::kEnv ? "env"
                                                          : "default";
  std::string shown;
  if (value.empty()) {
    shown = "<unset>";
  } else if (spec.secret) {
    shown = "<set>";
  } else if (spec.env == "REDIS_URL") {
    shown = config_values::MaskRedisUrl(value);
  } else {
    shown = value;
  }
  return absl::StrCat(spec.env, "=", shown, " (", from, ")");
}

}  // namespace

void WipeSecrets(Config& config) {
  for (auto& key : config.encryption_keys) {
    explicit_bzero(key.bytes.data(), key.bytes.size());
  }
  for (auto& secret : config.session_secrets) {
    explicit_bzero(secret.data(), secret.size());
  }
  explicit_bzero(config.admin_token.data(), config.admin_token.size());
  explicit_bzero(config.redis.sentinel_password.data(), config.redis.sentinel_password.size());
  config.redis.sentinel_password.clear();
  config.encryption_keys.clear();
  config.session_secrets.clear();
  config.admin_token.clear();
}

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const absl::string_view entry(*e);
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

std::vector<std::string_view> SecretEnvironmentNames() {
  std::vector<std::string_view> names;
  for (const Spec& spec : kSpecs) {
    // REDIS_URL is not masked whole in the summary (only its password), but
    // it holds that password.
    if (spec.secret || spec.env == "REDIS_URL") {
      names.emplace_back(spec.env.data(), spec.env.size());
    }
  }
  return names;
}

std::vector<std::string_view> SettingNames() {
  std::vector<std::string_view> names;
  for (const Spec& spec : kSpecs) names.emplace_back(spec.env.data(), spec.env.size());
  return names;
}

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             const Environment& env) {
  std::vector<std::string> flag_values(kNumSpecs);
  bool version = false;
  // The environment comes from `env`, not getenv(): no envname here.
  std::unique_ptr<CLI::App> app =
      BuildApp(&flag_values, &version, /*with_env=*/false);
  std::vector<const char*> argv;
  argv.push_back(args.empty() ? "stateside" : args[0].c_str());
  for (size_t i = 1; i < args.size(); ++i) argv.push_back(args[i].c_str());
  CommandLine result;
  try {
    app->parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    result.action = CommandLine::Action::kPrintHelp;
    result.output = HelpText();
    return result;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("command line: ", e.what(), " (see --help)"));
  }
  if (version) {
    result.action = CommandLine::Action::kPrintVersion;
    result.output = "stateside " + std::string(lifecycle::Version()) + "\n";
    return result;
  }
  config_rules::RawSettings raw;
  std::vector<Source> sources(kNumSpecs, Source::kDefault);
  for (size_t i = 0; i < kNumSpecs; ++i) {
    const Spec& spec = kSpecs[i];
    std::string value = std::move(flag_values[i]);
    if (app->get_option(absl::StrCat("--", spec.flag))->count() > 0) {
      sources[i] = Source::kFlag;
    } else if (auto it = env.find(std::string(spec.env));
               it != env.end() && !it->second.empty()) {
      value = it->second;
      sources[i] = Source::kEnv;
    } else {
      value = std::string(spec.default_value);
    }
    raw.Set(spec.env, std::move(value));
  }
  Config& config = result.config;
  if (absl::Status s = config_rules::Validate(raw, config); !s.ok()) {
    WipeSecrets(config);
    return s;
  }
  for (size_t i = 0; i < kNumSpecs; ++i) {
    std::string line = Describe(kSpecs[i], raw.Get(kSpecs[i].env), sources[i]);
    if (sources[i] != Source::kDefault) config.overrides.push_back(line);
    config.summary.push_back(std::move(line));
  }
  return result;
}

}  // namespace stateside

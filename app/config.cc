// The settings table, the command line (CLI11, which also reads the
// environment variables) and the checks of each value.
#include "app/config.h"

#include <boost/asio/ip/address.hpp>

#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "stateside/client.h"

namespace radar {
namespace {

// One setting: flag (without "--"), environment variable, syntax, help.
struct Spec {
  const char* flag;
  const char* env;
  const char* type;
  const char* help;
  bool is_bool = false;  // "--flag" alone means true; "--flag=false" works too
};

constexpr Spec kSpecs[] = {
    {"listen", "RADAR_LISTEN", "HOST:PORT",
     "address to listen on (port 0: any free port) [default: 127.0.0.1:8080]"},
    {"socket", "STATESIDE_SOCKET", "PATH",
     "the sidecar's Unix socket [default: /tmp/stateside/stateside.sock]"},
    {"cookie-name", "RADAR_COOKIE_NAME", "NAME",
     "session cookie name [default: __Host-radar_sid, or radar_sid with --cookie-secure=false]"},
    {"cookie-secure", "RADAR_COOKIE_SECURE", "BOOL",
     "mark the cookie Secure; false only for plain-http local runs [default: true]", true},
    {"public-origins", "RADAR_PUBLIC_ORIGINS", "ORIGIN,...",
     "origins (scheme://host[:port]) whose pages may POST and open /ws; other "
     "origins get 403 [default: the origin of --listen]"},
    {"max-connections", "RADAR_MAX_CONNECTIONS", "N",
     "open connections, WebSockets included; beyond: 503 [default: 10000]"},
    {"max-queued-requests", "RADAR_MAX_QUEUED_REQUESTS", "N",
     "requests waiting for or in a sidecar call; beyond: 503. At most 4096, "
     "the calls the client keeps in flight on its stream [default: 1024]"},
    {"ws-session-check-ms", "RADAR_WS_SESSION_CHECK_MS", "MS",
     "re-check the session of every open WebSocket this often; a socket whose "
     "session ended is closed [default: 60000]"},
    {"max-body-bytes", "RADAR_MAX_BODY_BYTES", "BYTES",
     "largest request body (larger: 413) [default: 16384]"},
    {"threads", "RADAR_THREADS", "N", "I/O threads [default: 2]"},
    {"drain-idle-grace-ms", "RADAR_DRAIN_IDLE_GRACE_MS", "MS",
     "once draining, close a kept-alive connection only after it has been idle "
     "this long, answering what a proxy still sends on it with Connection: close; "
     "keep it above the proxy's upstream keepalive_timeout [default: 3000]"},
    {"ws-close-spread-ms", "RADAR_WS_CLOSE_SPREAD_MS", "MS",
     "once draining, close open WebSockets one by one over this window (at most "
     "half the time left before the drain deadline), so their clients do not "
     "all reconnect at once; 0 closes them together [default: 2000]"},
    {"forward-sigterm", "RADAR_FORWARD_SIGTERM", "BOOL",
     "turn our SIGTERM/SIGINT into a drain of the sidecar; false where the "
     "sidecar's preStop hook starts the drain (Kubernetes native sidecar) "
     "[default: true]",
     true},
    {"test-hooks", "RADAR_TEST_HOOKS", "BOOL",
     "honour X-Radar-Delay-Ms on POST /cart (tests only) [default: false]", true},
    {"log-format", "STATESIDE_LOG_FORMAT", "text|json", "log format [default: text]"},
    {"log-level", "STATESIDE_LOG_LEVEL", "LEVEL",
     "trace, debug, info, warn, error, critical or off [default: info]"},
};
constexpr size_t kNumSpecs = sizeof(kSpecs) / sizeof(kSpecs[0]);

// absl::string_view is not std::string_view in this Abseil: plain strings.
absl::Status BadValue(const Spec& spec, const std::string& value, const std::string& want) {
  return absl::InvalidArgumentError(std::string(spec.env) + " (--" + spec.flag +
                                    "): bad value \"" + value + "\": " + want);
}

absl::StatusOr<bool> ParseBool(const Spec& spec, const std::string& value) {
  const std::string v = absl::AsciiStrToLower(value);
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return BadValue(spec, value, "use true or false");
}

absl::StatusOr<int64_t> ParseInt(const Spec& spec, const std::string& value,
                                 int64_t min, int64_t max) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < min || n > max) {
    return BadValue(spec, value,
                    "use an integer in " + std::to_string(min) + ".." + std::to_string(max));
  }
  return n;
}

absl::Status ParseListen(const Spec& spec, const std::string& value, Config& config) {
  const size_t colon = value.rfind(':');
  if (colon == std::string::npos) return BadValue(spec, value, "use HOST:PORT");
  std::string host = value.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:8080
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec) return BadValue(spec, value, "HOST must be an IP address");
  int64_t port = 0;
  if (!absl::SimpleAtoi(value.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return BadValue(spec, value, "PORT must be 0..65535");
  }
  config.listen_host = host;
  config.listen_port = static_cast<uint16_t>(port);
  return absl::OkStatus();
}

// RFC 6265 cookie-name: an RFC 7230 token.
bool IsToken(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c)) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

// "scheme://host[:port]" as browsers send it in Origin: http or https, no
// path, no user info. Lower-cased (Origin's scheme and host are).
absl::StatusOr<std::string> ParseOrigin(const std::string& text) {
  const std::string origin = absl::AsciiStrToLower(text);
  size_t rest = 0;
  if (origin.starts_with("http://")) {
    rest = 7;
  } else if (origin.starts_with("https://")) {
    rest = 8;
  } else {
    return absl::InvalidArgumentError("");
  }
  const std::string host_port = origin.substr(rest);
  if (host_port.empty() || host_port.find_first_of("/?#@ \t") != std::string::npos) {
    return absl::InvalidArgumentError("");
  }
  return origin;
}

absl::Status ParseOrigins(const Spec& spec, const std::string& value, Config& config) {
  std::vector<std::string> origins;
  for (absl::string_view piece : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    const std::string item(absl::StripAsciiWhitespace(piece));
    absl::StatusOr<std::string> origin = ParseOrigin(item);
    if (!origin.ok()) {
      return BadValue(spec, value,
                      "\"" + item + "\" is not an origin like https://radar.example.com[:port]");
    }
    origins.push_back(*std::move(origin));
  }
  if (origins.empty()) return BadValue(spec, value, "list at least one origin");
  config.public_origins = std::move(origins);
  return absl::OkStatus();
}

absl::Status Apply(size_t i, const std::string& value, Config& config) {
  const Spec& spec = kSpecs[i];
  const std::string_view flag = spec.flag;
  if (flag == "listen") return ParseListen(spec, value, config);
  if (flag == "socket") {
    // sockaddr_un.sun_path holds 107 bytes and a NUL.
    if (value.empty() || value.size() > 107) {
      return BadValue(spec, value, "a path of 1..107 bytes");
    }
    config.socket_path = value;
    return absl::OkStatus();
  }
  if (flag == "cookie-name") {
    if (!IsToken(value)) return BadValue(spec, value, "1..64 token characters");
    config.cookie_name = value;
    return absl::OkStatus();
  }
  if (flag == "cookie-secure" || flag == "test-hooks" || flag == "forward-sigterm") {
    auto b = ParseBool(spec, value);
    if (!b.ok()) return b.status();
    (flag == "cookie-secure"  ? config.cookie_secure
     : flag == "test-hooks" ? config.test_hooks
                            : config.forward_sigterm) = *b;
    return absl::OkStatus();
  }
  if (flag == "max-body-bytes") {
    auto n = ParseInt(spec, value, 1, 64 << 20);
    if (!n.ok()) return n.status();
    config.max_body_bytes = static_cast<size_t>(*n);
    return absl::OkStatus();
  }
  if (flag == "public-origins") return ParseOrigins(spec, value, config);
  if (flag == "max-connections" || flag == "max-queued-requests") {
    // A request has one sidecar call in flight at a time: more queued
    // requests than the client's stream holds (the app keeps the client's
    // default max_calls_per_stream) would meet its RESOURCE_EXHAUSTED.
    const int64_t max = flag == "max-connections"
                            ? 1000000
                            : stateside::ClientOptions().max_calls_per_stream;
    auto n = ParseInt(spec, value, 1, max);
    if (!n.ok()) return n.status();
    (flag == "max-connections" ? config.max_connections : config.max_queued_requests) =
        static_cast<size_t>(*n);
    return absl::OkStatus();
  }
  if (flag == "ws-session-check-ms") {
    auto n = ParseInt(spec, value, 10, 86400000);
    if (!n.ok()) return n.status();
    config.ws_session_check_ms = *n;
    return absl::OkStatus();
  }
  if (flag == "threads") {
    auto n = ParseInt(spec, value, 1, 64);
    if (!n.ok()) return n.status();
    config.threads = static_cast<int>(*n);
    return absl::OkStatus();
  }
  if (flag == "drain-idle-grace-ms" || flag == "ws-close-spread-ms") {
    auto n = ParseInt(spec, value, 0, 60000);
    if (!n.ok()) return n.status();
    (flag == "drain-idle-grace-ms" ? config.drain_idle_grace_ms : config.ws_close_spread_ms) = *n;
    return absl::OkStatus();
  }
  if (flag == "log-format") {
    const std::string v = absl::AsciiStrToLower(value);
    if (v != "text" && v != "json") return BadValue(spec, value, "use text or json");
    config.log_format = v;
    return absl::OkStatus();
  }
  // log-level
  std::string v = absl::AsciiStrToLower(value);
  if (v == "warning") v = "warn";
  if (v == "err") v = "error";
  if (v != "trace" && v != "debug" && v != "info" && v != "warn" && v != "error" &&
      v != "critical" && v != "off") {
    return BadValue(spec, value, "use trace, debug, info, warn, error, critical or off");
  }
  config.log_level = v;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args) {
  CLI::App app(
      "radar-app: a stateless demo web app (HTTP + WebSocket) that keeps its "
      "sessions, opt-outs and realtime routing in its Stateside sidecar. "
      "DEMO ONLY: POST /login takes a user name and no password; anyone can "
      "log in as anyone. Put real authentication in front before copying it.",
      "radar-app");
  app.footer(
      "Every setting is a flag and the environment variable shown; a flag "
      "wins over its variable. Booleans: --flag, --flag=true or --flag=false.");
  std::vector<std::string> values(kNumSpecs);
  for (size_t i = 0; i < kNumSpecs; ++i) {
    const Spec& spec = kSpecs[i];
    CLI::Option* opt =
        spec.is_bool
            ? app.add_flag(absl::StrCat("--", spec.flag, "{true}"), values[i], spec.help)
            : app.add_option(absl::StrCat("--", spec.flag), values[i], spec.help);
    opt->envname(spec.env)->type_name(spec.type);
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  if (!reversed.empty()) reversed.pop_back();  // the program name
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    return CommandLine{CommandLine::Action::kPrint, app.help(), {}};
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }

  CommandLine result;
  result.config.socket_path = stateside::DefaultSocketPath();
  for (size_t i = 0; i < kNumSpecs; ++i) {
    // Unset: the default in Config (an empty value set explicitly is bad,
    // except for the socket, where the client library treats it as unset).
    if (app.get_option(absl::StrCat("--", kSpecs[i].flag))->count() == 0 &&
        values[i].empty()) {
      continue;
    }
    if (values[i].empty() && std::string_view(kSpecs[i].flag) == "socket") continue;
    if (absl::Status s = Apply(i, values[i], result.config); !s.ok()) return s;
  }
  Config& config = result.config;
  if (config.cookie_name.empty()) {
    config.cookie_name = config.cookie_secure ? "__Host-radar_sid" : "radar_sid";
  }
  // Browsers drop a cookie with these prefixes unless it is Secure: logins
  // would silently fail.
  if (!config.cookie_secure && (config.cookie_name.starts_with("__Host-") ||
                                config.cookie_name.starts_with("__Secure-"))) {
    return absl::InvalidArgumentError(
        "RADAR_COOKIE_NAME (--cookie-name): \"" + config.cookie_name +
        "\" needs RADAR_COOKIE_SECURE=true (browsers drop __Host-/__Secure- cookies "
        "without Secure); use a plain name such as radar_sid");
  }
  return result;
}

}  // namespace radar

// REDIS_URL parsing, the redacted description, and the backoff formula.
#include "sidecar/redis/redis_options.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace stateside::redis {
namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("redis url: ", what));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a user name or password. The error never quotes the input.
absl::StatusOr<std::string> PercentDecode(absl::string_view in, absl::string_view what) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return Bad(absl::StrCat("bad percent-escape in the ", what));
    }
    const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return Bad(absl::StrCat("bad percent-escape in the ", what));
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// Splits "user:password" (either may be empty; the password is mandatory once
// userinfo is present, since AUTH always needs one).
absl::Status ParseUserInfo(absl::string_view info, RedisOptions* out) {
  const size_t colon = info.find(':');
  if (colon == absl::string_view::npos) {
    return Bad("credentials must be user:password or :password (a user name alone cannot AUTH)");
  }
  auto user = PercentDecode(info.substr(0, colon), "user name");
  if (!user.ok()) return user.status();
  auto pass = PercentDecode(info.substr(colon + 1), "password");
  if (!pass.ok()) return pass.status();
  if (pass->empty()) return Bad("empty password after ':'");
  out->username = *std::move(user);
  out->password = *std::move(pass);
  return absl::OkStatus();
}

absl::StatusOr<int> ParseDb(absl::string_view text) {
  int db = 0;
  if (text.empty() || !std::all_of(text.begin(), text.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(text, &db) || db < 0) {
    return Bad(absl::StrCat("bad database number \"", text, "\" (want a number >= 0)"));
  }
  return db;
}

// Only "db=N" is understood; anything else is a mistake worth reporting.
absl::Status ParseQuery(absl::string_view query, bool db_in_path, RedisOptions* out) {
  if (query.empty()) return absl::OkStatus();
  for (absl::string_view param : absl::StrSplit(query, '&')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(param, absl::MaxSplits('=', 1));
    if (kv.first != "db") {
      return Bad(absl::StrCat("unsupported query parameter \"", kv.first, "\" (only db=N)"));
    }
    if (db_in_path) return Bad("database given twice (path and ?db=)");
    auto db = ParseDb(kv.second);
    if (!db.ok()) return db.status();
    out->db = *db;
  }
  return absl::OkStatus();
}

absl::Status ParseHostPort(absl::string_view hp, RedisNode* out) {
  absl::string_view host, port;
  if (absl::StartsWith(hp, "[")) {
    const size_t close = hp.find(']');
    if (close == absl::string_view::npos) return Bad("unterminated IPv6 address '['");
    host = hp.substr(1, close - 1);
    absl::string_view rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return Bad("unexpected text after IPv6 address");
      port = rest.substr(1);
      if (port.empty()) return Bad("empty port after ':'");
    }
  } else {
    const size_t colon = hp.rfind(':');
    if (colon != absl::string_view::npos) {
      host = hp.substr(0, colon);
      port = hp.substr(colon + 1);
      if (port.empty()) return Bad("empty port after ':'");
    } else {
      host = hp;
    }
  }
  if (host.empty()) return Bad("missing host (want redis://host:port)");
  out->host = std::string(host);
  if (!port.empty()) {
    int p = 0;
    if (!std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(port, &p) || p < 1 || p > 65535) {
      return Bad(absl::StrCat("bad port \"", port, "\" (want 1-65535)"));
    }
    out->port = p;
  } else {
    out->port = 6379;
  }
  return absl::OkStatus();
}

}  // namespace

const char* TopologyName(RedisTopology topology) {
  switch (topology) {
    case RedisTopology::kStandalone: return "standalone";
    case RedisTopology::kCluster: return "cluster";
    case RedisTopology::kSentinel: return "sentinel";
  }
  return "unknown";
}

absl::StatusOr<RedisOptions> ParseRedisUrl(std::string_view url_in, RedisOptions base) {
  const absl::string_view url(url_in.data(), url_in.size());
  RedisOptions out = std::move(base);
  out.username.clear();
  out.password.clear();
  out.unix_path.clear();
  out.db = 0;
  const size_t sep = url.find("://");
  if (sep == absl::string_view::npos) {
    return Bad("missing scheme (want redis://, rediss:// or unix://)");
  }
  const std::string scheme = absl::AsciiStrToLower(url.substr(0, sep));
  absl::string_view rest = url.substr(sep + 3);
  if (const size_t hash = rest.find('#'); hash != absl::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  absl::string_view query;
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }

  if (scheme == "unix") {
    if (out.topology != RedisTopology::kStandalone) {
      return Bad(absl::StrCat("unix:// names one node; ", TopologyName(out.topology),
                              " needs redis:// or rediss:// with a node list"));
    }
    out.tls.enabled = false;
    // unix://[user:pass@]/path: the credentials end at the '@' before '/'.
    if (!absl::StartsWith(rest, "/")) {
      const size_t at = rest.find("@/");
      if (at == absl::string_view::npos) {
        return Bad("unix socket path must be absolute (unix:///path/to/redis.sock)");
      }
      if (absl::Status s = ParseUserInfo(rest.substr(0, at), &out); !s.ok()) return s;
      rest = rest.substr(at + 1);
    }
    if (rest.size() < 2) return Bad("empty unix socket path");
    out.unix_path = std::string(rest);
    if (absl::Status s = ParseQuery(query, false, &out); !s.ok()) return s;
    return out;
  }
  if (scheme != "redis" && scheme != "rediss") {
    return Bad(absl::StrCat("unsupported scheme \"", scheme,
                            "\" (want redis://, rediss:// or unix://)"));
  }
  out.tls.enabled = scheme == "rediss";

  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path = slash == absl::string_view::npos ? "" : rest.substr(slash + 1);
  if (const size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    if (absl::Status s = ParseUserInfo(authority.substr(0, at), &out); !s.ok()) return s;
    authority = authority.substr(at + 1);
  }
  // A node list: "h1:p1,h2:p2". Only Cluster seeds and sentinels come as a
  // list; a standalone URL naming several hosts is a mistake worth stopping.
  out.nodes.clear();
  if (authority.empty()) return Bad("missing host (want redis://host:port)");
  for (absl::string_view hp : absl::StrSplit(authority, ',')) {
    RedisNode node;
    if (hp.empty()) return Bad("empty node in the node list");
    if (absl::Status s = ParseHostPort(hp, &node); !s.ok()) return s;
    out.nodes.push_back(std::move(node));
  }
  if (out.nodes.size() > 1 && out.topology == RedisTopology::kStandalone) {
    return Bad("a node list needs STATESIDE_REDIS_TOPOLOGY=cluster or sentinel");
  }
  out.host = out.nodes.front().host;
  out.port = out.nodes.front().port;
  if (out.topology == RedisTopology::kStandalone) out.nodes.clear();
  const bool db_in_path = !path.empty();
  if (db_in_path) {
    auto db = ParseDb(path);
    if (!db.ok()) return db.status();
    out.db = *db;
  }
  if (absl::Status s = ParseQuery(query, db_in_path, &out); !s.ok()) return s;
  if (out.topology == RedisTopology::kCluster && out.db != 0) {
    return Bad("Redis Cluster has only database 0");
  }
  // One node: its name. A node list (Cluster seeds, sentinels, and the nodes
  // they lead to) stays empty, so each connection checks the name of the
  // node it reaches rather than the first seed's.
  if (out.tls.enabled && out.tls.server_name.empty() && out.nodes.empty()) {
    out.tls.server_name = out.host;
  }
  return out;
}

std::string RedisOptions::Describe() const {
  std::string cred;
  if (!password.empty()) cred = absl::StrCat(username, ":***@");
  if (!unix_path.empty()) {
    return absl::StrCat("unix://", cred, unix_path, db != 0 ? absl::StrCat("?db=", db) : "");
  }
  auto hostport = [](const std::string& h, int p) {
    const bool v6 = h.find(':') != std::string::npos;
    return absl::StrCat(v6 ? "[" : "", h, v6 ? "]" : "", ":", p);
  };
  std::string where;
  if (nodes.empty()) {
    where = hostport(host, port);
  } else {
    for (const RedisNode& n : nodes) {
      absl::StrAppend(&where, where.empty() ? "" : ",", hostport(n.host, n.port));
    }
  }
  std::string layout;
  if (topology == RedisTopology::kCluster) layout = " (cluster)";
  if (topology == RedisTopology::kSentinel) {
    layout = absl::StrCat(" (sentinel, master ", sentinel_master, ")");
  }
  return absl::StrCat(tls.enabled ? "rediss://" : "redis://", cred, where, "/", db, layout);
}

absl::Duration BackoffDelay(int attempt, absl::Duration initial, absl::Duration max,
                            double jitter01) {
  attempt = std::clamp(attempt, 0, 30);
  absl::Duration d = initial;
  for (int i = 0; i < attempt && d < max; ++i) d *= 2;
  d = std::min(d, max);
  // Scale into [0.5, 1.0) so a crowd of sidecars reconnecting after a Redis
  // restart spreads out but never waits longer than the cap.
  jitter01 = std::clamp(jitter01, 0.0, 1.0);
  return d * (0.5 + 0.5 * jitter01);
}

absl::Status ValidateConnectionOptions(const RedisOptions& options, std::string_view who) {
  auto bad = [who](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(absl::string_view(who.data(), who.size()), " options: ", what));
  };
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.command_timeout <= absl::ZeroDuration() ||
      options.idle_ping_interval <= absl::ZeroDuration()) {
    return bad("timeouts must be positive");
  }
  if (options.backoff_initial <= absl::ZeroDuration() ||
      options.backoff_max < options.backoff_initial) {
    return bad("backoff must satisfy 0 < initial <= max");
  }
  if (options.max_reply_bytes < 1 || options.max_reply_elements < 1) {
    return bad("reply bounds must be positive");
  }
  if (!options.unix_path.empty() && options.unix_path.size() > 107) {
    return bad("unix socket path longer than 107 bytes");
  }
  if (options.unix_path.empty() && (options.port < 1 || options.port > 65535)) {
    return bad("port must be 1-65535");
  }
  return absl::OkStatus();
}

}  // namespace stateside::redis

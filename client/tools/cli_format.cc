// statesidectl's parsing and printing helpers (see cli_format.h).
#include "client/tools/cli_format.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "stateside/types.h"

namespace stateside::cli {

absl::StatusOr<std::pair<std::string, std::string>> ParseAssignment(
    std::string_view arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string_view::npos) {
    return absl::InvalidArgumentError("expected name=value");
  }
  if (eq == 0) return absl::InvalidArgumentError("empty attribute name");
  return std::make_pair(std::string(arg.substr(0, eq)),
                        std::string(arg.substr(eq + 1)));
}

std::string EscapeForDisplay(std::string_view bytes) {
  const bool utf8 = IsValidUtf8(bytes);
  std::string out;
  out.reserve(bytes.size());
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    switch (c) {
      case '\\': out += "\\\\"; continue;
      case '"': out += "\\\""; continue;
      case '\n': out += "\\n"; continue;
      case '\t': out += "\\t"; continue;
      case '\r': out += "\\r"; continue;
      default: break;
    }
    if (b < 0x20 || b == 0x7f || (b >= 0x80 && !utf8)) {
      out += absl::StrFormat("\\x%02x", b);
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatTimestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

Json SessionInfoToJson(const SessionInfo& info) {
  return Json{{"id", info.id},
              {"user_id", info.user_id},
              {"version", info.version},
              {"created", FormatTimestamp(info.created)},
              {"last_access", FormatTimestamp(info.last_access)},
              {"idle_expiry", FormatTimestamp(info.idle_expiry)},
              {"absolute_expiry", FormatTimestamp(info.absolute_expiry)}};
}

Json SessionToJson(const Session& session) {
  Json json = SessionInfoToJson(session.info);
  json["cookie"] = session.cookie;
  Json text = Json::object();
  Json binary = Json::object();
  for (const auto& [name, value] : session.attributes) {
    // Names are UTF-8 (protobuf strings); the check is for robustness.
    const std::string key = IsValidUtf8(name)
                                ? name
                                : EscapeForDisplay(name);
    if (IsValidUtf8(value)) {
      text[key] = value;
    } else {
      binary[key] = absl::Base64Escape(value);
    }
  }
  json["attributes"] = std::move(text);
  json["binary_attributes"] = std::move(binary);
  return json;
}

Json InstanceToJson(const InstanceInfo& i) {
  return Json{{"id", i.id},
              {"hostname", i.hostname},
              {"pid", i.pid},
              {"version", i.version},
              {"start_time", FormatTimestamp(i.start_time)},
              {"uptime_seconds", absl::ToDoubleSeconds(i.uptime)},
              {"drain_state", std::string(DrainStateName(i.drain_state))},
              {"ready", i.ready},
              {"backend", i.backend},
              {"admin_address", i.admin_address}};
}

Json InstanceInfoToJson(const InstanceInfo& i) {
  Json json = InstanceToJson(i);
  json["api_revision"] = i.api_revision;
  json["capabilities"] = Json{{"pipe", i.capabilities.pipe},
                              {"session_events", i.capabilities.session_events},
                              {"reflection", i.capabilities.reflection},
                              {"request_ids", i.capabilities.request_ids},
                              {"realtime_resume", i.capabilities.realtime_resume},
                              {"topology", std::string(StoreTopologyName(i.capabilities.topology))}};
  return json;
}

std::string DumpJson(const Json& json) {
  return json.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

void PrintSessionInfo(std::ostream& out, const SessionInfo& info) {
  out << "id:              " << info.id << "\n"
      << "user:            "
      << (info.user_id.empty() ? "(anonymous)" : EscapeForDisplay(info.user_id))
      << "\n"
      << "version:         " << info.version << "\n"
      << "created:         " << FormatTimestamp(info.created) << "\n"
      << "last access:     " << FormatTimestamp(info.last_access) << "\n"
      << "idle expiry:     " << FormatTimestamp(info.idle_expiry) << "\n"
      << "absolute expiry: " << FormatTimestamp(info.absolute_expiry) << "\n";
}

void PrintSession(std::ostream& out, const Session& session) {
  PrintSessionInfo(out, session.info);
  out << "cookie:          " << session.cookie << "\n";
  if (session.attributes.empty()) {
    out << "attributes:      (none)\n";
    return;
  }
  out << "attributes:\n";
  for (const auto& [name, value] : session.attributes) {
    out << "  " << EscapeForDisplay(name) << " = \"" << EscapeForDisplay(value)
        << "\"\n";
  }
}

void PrintSessionTable(std::ostream& out,
                       const std::vector<SessionInfo>& sessions) {
  if (sessions.empty()) {
    out << "no sessions\n";
    return;
  }
  out << absl::StrFormat("%-43s  %7s  %-24s  %s\n", "ID", "VERSION",
                         "LAST ACCESS", "IDLE EXPIRY");
  for (const SessionInfo& s : sessions) {
    out << absl::StrFormat("%-43s  %7d  %-24s  %s\n", s.id, s.version,
                           FormatTimestamp(s.last_access), FormatTimestamp(s.idle_expiry));
  }
}

void PrintInstance(std::ostream& out, const InstanceInfo& i) {
  out << "instance:      " << EscapeForDisplay(i.id) << "\n"
      << "hostname:      " << EscapeForDisplay(i.hostname) << "\n"
      << "pid:           " << i.pid << "\n"
      << "version:       " << EscapeForDisplay(i.version) << "\n"
      << "started:       " << FormatTimestamp(i.start_time) << "\n"
      << "uptime:        " << absl::FormatDuration(absl::Trunc(i.uptime, absl::Seconds(1)))
      << "\n"
      << "drain state:   " << DrainStateName(i.drain_state) << "\n"
      << "ready:         " << (i.ready ? "yes" : "no") << "\n"
      << "backend:       " << EscapeForDisplay(i.backend) << "\n"
      << "admin address: " << EscapeForDisplay(i.admin_address) << "\n"
      << "api revision:  " << i.api_revision << "\n"
      << "topology:      " << StoreTopologyName(i.capabilities.topology) << "\n"
      << "capabilities: ";
  const std::pair<bool, std::string_view> capabilities[] = {
      {i.capabilities.pipe, "pipe"},
      {i.capabilities.session_events, "session-events"},
      {i.capabilities.reflection, "reflection"},
      {i.capabilities.request_ids, "request-ids"},
      {i.capabilities.realtime_resume, "realtime-resume"}};
  bool any = false;
  for (const auto& [has, name] : capabilities) {
    if (!has) continue;
    out << " " << name;
    any = true;
  }
  out << (any ? "\n" : " (none)\n");
}

void PrintInstanceTable(std::ostream& out, const std::vector<InstanceInfo>& instances) {
  if (instances.empty()) {
    out << "no instances\n";
    return;
  }
  out << absl::StrFormat("%-24s  %-9s  %-5s  %-15s  %-10s  %s\n", "INSTANCE", "STATE",
                         "READY", "BACKEND", "VERSION", "ADMIN");
  for (const InstanceInfo& i : instances) {
    out << absl::StrFormat("%-24s  %-9s  %-5s  %-15s  %-10s  %s\n", EscapeForDisplay(i.id),
                           DrainStateName(i.drain_state), i.ready ? "yes" : "no",
                           EscapeForDisplay(i.backend), EscapeForDisplay(i.version),
                           EscapeForDisplay(i.admin_address));
  }
}

Json DrainNoticeToJson(const DrainNotice& notice) {
  Json json{{"state", std::string(DrainStateName(notice.state))}};
  if (notice.deadline != absl::InfiniteFuture() &&
      notice.deadline != absl::InfinitePast()) {
    json["deadline"] = FormatTimestamp(notice.deadline);
  }
  return json;
}

std::string FormatDrainNotice(const DrainNotice& notice) {
  std::string text(DrainStateName(notice.state));
  if (notice.deadline != absl::InfiniteFuture() &&
      notice.deadline != absl::InfinitePast()) {
    text += " deadline=" + FormatTimestamp(notice.deadline);
  }
  return text;
}

std::string DumpJsonLine(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

namespace {

bool IsNameChar(char c, bool first) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && absl::ascii_isdigit(static_cast<unsigned char>(c)));
}

}  // namespace

absl::StatusOr<Json> ParseMetricSample(std::string_view line) {
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("not a metric sample (", std::string(why), ")"));
  };
  size_t i = 0;
  while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
  if (i == 0) return bad("no name");
  Json json{{"name", std::string(line.substr(0, i))}, {"labels", Json::object()}};
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      const size_t start = i;
      while (i < line.size() && IsNameChar(line[i], i == start)) ++i;
      if (i == start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
        return bad("bad label");
      }
      const std::string name(line.substr(start, i - start));
      i += 2;
      std::string value;
      for (;; ++i) {
        if (i >= line.size()) return bad("unterminated label value");
        const char c = line[i];
        if (c == '"') break;
        if (c == '\\') {
          if (++i >= line.size()) return bad("bad escape");
          value += line[i] == 'n' ? '\n' : line[i];
        } else {
          value += c;
        }
      }
      ++i;  // closing quote
      json["labels"][name] = value;
      if (i < line.size() && line[i] == ',') ++i;
    }
  }
  if (i >= line.size() || line[i] != ' ') return bad("no value");
  std::string_view rest = line.substr(i + 1);
  const std::string_view value_text = rest.substr(0, rest.find(' '));
  double value;
  if (!absl::SimpleAtod(absl::string_view(value_text.data(), value_text.size()), &value)) {
    return bad("bad value");
  }
  if (std::isfinite(value)) {
    json["value"] = value;
  } else {
    json["value"] = std::string(value_text);
  }
  return json;
}

}  // namespace stateside::cli

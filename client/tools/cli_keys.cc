// statesidectl's key commands: `keys rewrap` starts (or continues) the
// sidecar's rewrap sweep through POST /keys/rewrap on the admin listener and
// follows its progress until it ends; `keys status` shows the progress once.
// The sweep runs inside the sidecar: only the sidecar holds keys, this tool
// never sees one.
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/tools/cli_format.h"
#include "client/tools/cli_internal.h"
#include "client/tools/http_get.h"
#include "stateside/client.h"

namespace stateside::cli {
namespace {

struct KeyArgs {
  std::string admin;
  std::string token_file;
  double rate = 0;
  bool no_follow = false;
  std::string interval = "1s";
};

std::string AdminAddress(const KeyArgs& a) {
  if (!a.admin.empty()) return a.admin;
  const char* env = std::getenv("STATESIDE_ADMIN_ADDR");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:9464";
}

absl::Duration Timeout(const Globals& g) {
  absl::Duration d;
  return absl::ParseDuration(g.timeout, &d) ? d : absl::Seconds(5);
}

absl::StatusOr<std::string> ReadToken(const KeyArgs& a) {
  if (a.token_file.empty()) return std::string();
  std::ifstream in(a.token_file);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read --admin-token-file ", a.token_file));
  }
  return std::string(absl::StripAsciiWhitespace(buffer.str()));
}

// One call to /keys/rewrap; the JSON answer, or an error naming the status.
absl::StatusOr<Json> Call(const Globals& g, const KeyArgs& a, const std::string& method,
                          const std::string& token) {
  std::string path = "/keys/rewrap";
  if (method == "POST" && a.rate > 0) absl::StrAppend(&path, "?rate=", a.rate);
  const std::string address = AdminAddress(a);
  auto response = HttpCall(method, address, path, token, Timeout(g));
  if (!response.ok()) return response.status();
  Json body = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (response->status != 200 && response->status != 202) {
    std::string why = body.is_object() && body.contains("error") && body["error"].is_string()
                          ? body["error"].get<std::string>()
                          : response->body;
    const std::string message =
        absl::StrCat(method, " http://", address, path, ": HTTP ", response->status, ": ", why);
    if (response->status == 401 || response->status == 403) {
      return absl::PermissionDeniedError(message);
    }
    if (response->status == 400) return absl::InvalidArgumentError(message);
    return absl::UnavailableError(message);
  }
  if (!body.is_object() || !body.contains("state")) {
    return absl::DataLossError(absl::StrCat("GET http://", address, path, ": not a rewrap report"));
  }
  return body;
}

uint64_t U64(const Json& j, const char* name) {
  return j.contains(name) && j[name].is_number_unsigned() ? j[name].get<uint64_t>() : 0;
}

std::string Str(const Json& j, const char* name) {
  return j.contains(name) && j[name].is_string() ? j[name].get<std::string>() : "";
}

// "rewrap to k2: running — 120 sessions, 30 opt-outs ..." then one line per
// key id: what was found under it, moved, and what is still under it.
std::string FormatProgress(const Json& p) {
  std::string out = absl::StrCat("rewrap to ", Str(p, "primary"), ": ", Str(p, "state"), " - ",
                                 U64(p, "sessions"), " sessions, ", U64(p, "opt_outs"),
                                 " opt-outs (", U64(p, "unsealed_opt_outs"),
                                 " without a sealed subject), ", U64(p, "conflicts"),
                                 " conflicts, ", U64(p, "errors"), " errors\n");
  uint64_t unopenable = 0;
  if (p.contains("keys") && p["keys"].is_object()) {
    for (const auto& [id, c] : p["keys"].items()) {
      absl::StrAppend(&out, "  key ", id, ": found ", U64(c, "found"), ", rewrapped ",
                      U64(c, "rewrapped"), ", left ", U64(c, "left"),
                      id == Str(p, "primary") ? " (primary)" : "", "\n");
      unopenable += U64(c, "unopenable");
    }
  }
  if (unopenable > 0) {
    absl::StrAppend(&out, "  ", unopenable,
                    " values did not open under their key (tampered, or sealed under other bytes "
                    "for that key id): they read as not found\n");
  }
  if (!Str(p, "last_error").empty()) absl::StrAppend(&out, "  last error: ", Str(p, "last_error"), "\n");
  if (!Str(p, "note").empty()) absl::StrAppend(&out, "  ", Str(p, "note"), "\n");
  return out;
}

void Print(const Globals& g, const Json& p, std::ostream& out) {
  out << (g.json ? DumpJsonLine(p) : FormatProgress(p));
  out.flush();
}

// OK when the sweep is done, nothing it saw is left under an old key (the
// primary is none: a value under it that does not open needs no old key),
// and it met no error (a key it could not read may hold values under one).
absl::Status Verdict(const Json& p) {
  const std::string state = Str(p, "state");
  if (state == "failed" || state == "interrupted") {
    return absl::UnavailableError(absl::StrCat("the rewrap sweep ", state, ": ",
                                               Str(p, "last_error"),
                                               " (run `keys rewrap` again to continue)"));
  }
  if (state != "done") return absl::OkStatus();
  uint64_t left = 0;
  if (p.contains("keys") && p["keys"].is_object()) {
    for (const auto& [id, c] : p["keys"].items()) {
      if (id != Str(p, "primary")) left += U64(c, "left");
    }
  }
  if (left > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        left, " values are still under old keys (see above): do not remove those keys"));
  }
  if (const uint64_t errors = U64(p, "errors"); errors > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the sweep met ", errors, " error(s) (last: ", Str(p, "last_error"),
        "): keys it could not read may hold values under old keys; run `keys rewrap` "
        "again before removing any"));
  }
  return absl::OkStatus();
}

}  // namespace

void AddKeyCommands(CLI::App& app, const Globals& g, Action& action) {
  auto a = std::make_shared<KeyArgs>();
  const Globals* gl = &g;
  Action* act = &action;
  auto* keys = app.add_subcommand("keys", "key rotation: move stored values to the primary key");
  keys->require_subcommand(1);
  auto add_common = [a](CLI::App* cmd) {
    cmd->add_option("--admin", a->admin,
                    "admin address host:port (default: $STATESIDE_ADMIN_ADDR, else "
                    "127.0.0.1:9464)");
    cmd->add_option("--admin-token-file", a->token_file,
                    "file holding the admin token (when the sidecar has one)");
  };
  auto* rewrap = keys->add_subcommand(
      "rewrap",
      "start or continue the sidecar's rewrap sweep (sessions and opt-outs under old keys, and "
      "version-1 envelopes under any key, are resealed under the primary) and follow it until "
      "done; exit 1 if anything is left under an old key");
  add_common(rewrap);
  rewrap->add_option("--rate", a->rate, "keys visited per second (default: the sidecar's, 500)")
      ->check(CLI::Range(1.0, 100000.0));
  rewrap->add_flag("--no-follow", a->no_follow, "return once the sweep has started");
  rewrap->add_option("--interval", a->interval, "time between progress reports")
      ->check([](const std::string& v) {
        absl::Duration d;
        return absl::ParseDuration(v, &d) && d > absl::ZeroDuration()
                   ? std::string()
                   : std::string("a positive duration, e.g. 1s");
      });
  rewrap->callback([=] {
    *act = [=](Client&, std::ostream& out) -> absl::Status {
      absl::StatusOr<std::string> token = ReadToken(*a);
      absl::StatusOr<Json> p = token.ok() ? Call(*gl, *a, "POST", *token) : token.status();
      if (!p.ok()) return p.status();
      Print(*gl, *p, out);
      if (a->no_follow) return Verdict(*p);
      absl::Duration interval;
      if (!absl::ParseDuration(a->interval, &interval)) interval = absl::Seconds(1);
      while (Str(*p, "state") == "running") {
        absl::SleepFor(interval);
        p = Call(*gl, *a, "GET", *token);
        if (!p.ok()) return p.status();
        Print(*gl, *p, out);
      }
      return Verdict(*p);
    };
  });
  auto* status = keys->add_subcommand(
      "status", "the rewrap sweep's progress: per key id, what was found, moved and left");
  add_common(status);
  status->callback([=] {
    *act = [=](Client&, std::ostream& out) -> absl::Status {
      absl::StatusOr<std::string> token = ReadToken(*a);
      absl::StatusOr<Json> p = token.ok() ? Call(*gl, *a, "GET", *token) : token.status();
      if (p.ok()) Print(*gl, *p, out);
      return p.status();
    };
  });
}

}  // namespace stateside::cli

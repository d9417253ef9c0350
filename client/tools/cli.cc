// statesidectl's command tree (CLI11) and what each command does and prints.
#include "client/tools/cli.h"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/tools/cli_format.h"
#include "client/tools/cli_internal.h"
#include "stateside/client.h"

namespace stateside::cli {
namespace {

std::optional<absl::Duration> ParseNonNegativeDuration(const std::string& text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return std::nullopt;
  }
  return d;
}

const CLI::Validator& DurationText() {
  static const CLI::Validator* const validator = new CLI::Validator(
      [](std::string& text) -> std::string {
        return ParseNonNegativeDuration(text)
                   ? ""
                   : "expected a duration such as 500ms, 2s or 1h30m";
      },
      "DURATION");
  return *validator;
}

const CLI::Validator& AssignmentText() {
  static const CLI::Validator* const validator = new CLI::Validator(
      [](std::string& text) -> std::string {
        auto parsed = ParseAssignment(text);
        return parsed.ok() ? "" : std::string(parsed.status().message());
      },
      "NAME=VALUE");
  return *validator;
}

// --set arguments → attributes; a name given twice is a usage error (which
// of the two was meant?). Throws CLI::ValidationError: called from CLI11
// callbacks, so it surfaces as a parse error (exit 2).
Attributes AssignmentsToAttributes(const std::vector<std::string>& args) {
  Attributes attributes;
  for (const std::string& arg : args) {
    auto parsed = ParseAssignment(arg);
    if (!parsed.ok()) {
      throw CLI::ValidationError("--set", std::string(parsed.status().message()));
    }
    if (!attributes.emplace(parsed->first, parsed->second).second) {
      throw CLI::ValidationError(
          "--set", absl::StrCat("attribute '", parsed->first, "' given twice"));
    }
  }
  return attributes;
}

std::string FailureLine(const absl::Status& status) {
  return absl::StrCat("statesidectl: ", absl::StatusCodeToString(status.code()),
                      ": ", status.message(), "\n");
}

// Subcommands taking a session ("<id|cookie>"). Also reachable as
// --session=VALUE, which NormalizeArgs uses for values beginning with '-'.
CLI::Option* AddRefArgument(CLI::App* cmd, std::string* ref) {
  return cmd->add_option("session,--session", *ref, "session id, or cookie value (contains '.')")
      ->required();
}

// The per-call cap of the user's sessions (create, and regenerate --user):
// --max-sessions N and --at-limit refuse|end_oldest, read into `limit`.
struct LimitArgs {
  uint32_t max_sessions = 0;
  std::string at_limit;
  SessionLimit Limit() const {
    SessionLimit limit;
    if (max_sessions != 0) limit.max_sessions_per_user = max_sessions;
    if (at_limit == "refuse") limit.policy = SessionLimitPolicy::kRefuse;
    if (at_limit == "end_oldest") limit.policy = SessionLimitPolicy::kEndOldest;
    return limit;
  }
};

void AddLimitOptions(CLI::App* cmd, LimitArgs* args) {
  cmd->add_option("--max-sessions", args->max_sessions,
                  "cap the user's live sessions for this call (<= the sidecar's "
                  "STATESIDE_MAX_SESSIONS_PER_USER)")
      ->check(CLI::Range(1u, 1'000'000u));
  cmd->add_option("--at-limit", args->at_limit,
                  "at the cap: refuse, or end_oldest (default: the sidecar's policy)")
      ->check(CLI::IsMember({"refuse", "end_oldest"}));
}

// Whether `arg` is a session id or cookie value that begins with '-': a
// base64url id (43 characters, alphabet A-Z a-z 0-9 - _) may, one in 64, and
// CLI11 would take it for an option. No option of ours is that long.
bool LooksLikeDashedSessionRef(std::string_view arg) {
  if (arg.size() < 40 || arg[0] != '-') return false;
  int dots = 0;
  for (const char c : arg) {
    if (c == '.') {
      ++dots;
    } else if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
               c != '_') {
      return false;
    }
  }
  return dots <= 1;
}

// Rewrites session references beginning with '-' so that CLI11 reads them as
// values: "-Xy…" → "--session=-Xy…", and "--keep -Xy…" → "--keep=-Xy…".
// Nothing after a "--" is touched (CLI11 already reads it as positional).
std::vector<std::string> NormalizeArgs(int argc, const char* const* argv) {
  std::vector<std::string> args;
  bool positional_only = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && !positional_only && LooksLikeDashedSessionRef(arg)) {
      if (!args.empty() && args.back() == "--keep") {
        args.back() = "--keep=" + arg;
      } else {
        args.push_back("--session=" + arg);
      }
      continue;
    }
    if (arg == "--") positional_only = true;
    args.push_back(std::move(arg));
  }
  return args;
}

}  // namespace

int RunStatesidectl(int argc, const char* const* argv, std::ostream& out,
                    std::ostream& err) {
  CLI::App app{
      "statesidectl: talk to the Stateside sidecar over its Unix socket.\n"
      "Exit status: 0 ok, 1 the call failed (code and message on stderr), "
      "2 bad usage."};
  app.name("statesidectl");
  app.footer(
      "Sessions are named by id or by cookie value (text with a '.' is a "
      "cookie).\n--set NAME=VALUE stores the raw bytes after the first '='. "
      "Text output escapes\nnon-printable bytes (\\xHH). In --json output, "
      "\"attributes\" holds the values that\nare valid UTF-8 as strings, "
      "\"binary_attributes\" the others in base64.");
  app.fallthrough();  // global options are accepted after the subcommand too
  app.require_subcommand(1);

  Globals g;
  app.add_option("--socket", g.socket,
                 "sidecar socket (default: $STATESIDE_SOCKET, else "
                 "/tmp/stateside/stateside.sock)");
  app.add_flag("--json", g.json, "print JSON (for scripts) instead of text");
  app.add_option("--timeout", g.timeout, "deadline of the call, retries included")
      ->check(DurationText())
      ->capture_default_str();
  app.add_option("--wait", g.wait,
                 "first wait up to this long for the sidecar to be SERVING "
                 "(default 0s: do not wait)")
      ->check(DurationText());

  Action action;
  auto print_info = [&g](std::ostream& out, const SessionInfo& info) {
    if (g.json) {
      out << DumpJson(SessionInfoToJson(info));
    } else {
      PrintSessionInfo(out, info);
    }
  };
  auto print_session = [&g](std::ostream& out, const Session& session) {
    if (g.json) {
      out << DumpJson(SessionToJson(session));
    } else {
      PrintSession(out, session);
    }
  };

  // --- info (health, instances, drain... in cli_lifecycle.cc) ---
  app.add_subcommand("info", "the sidecar instance (id, version, drain state, backend)")
      ->callback([&] {
        action = [&](Client& c, std::ostream& out) -> absl::Status {
          auto instance = c.GetInstance();
          if (!instance.ok()) return instance.status();
          if (g.json) {
            out << DumpJson(InstanceInfoToJson(*instance));
          } else {
            PrintInstance(out, *instance);
          }
          return absl::OkStatus();
        };
      });

  LifecycleArgs lifecycle_args;
  AddLifecycleCommands(app, g, lifecycle_args, action);
  AddKeyCommands(app, g, action);
  AddRealtimeCommands(app, g, action, err);

  // --- session ---
  auto* session = app.add_subcommand("session", "create, read, change and end sessions");
  session->require_subcommand(1);

  std::string user, ref, keep, idle_ttl, absolute_ttl;
  LimitArgs limit_args;
  std::vector<std::string> set_args, delete_args;
  uint64_t expect_version = 0;
  bool no_touch = false;

  auto* create = session->add_subcommand("create", "create a session; prints its id and cookie");
  create->add_option("--user", user, "owner (default: an anonymous session)");
  create->add_option("--set", set_args, "attribute NAME=VALUE (repeatable; the value is the raw text after '=')")
      ->check(AssignmentText())
      ->allow_extra_args(false);
  create->add_option("--idle-ttl", idle_ttl, "idle timeout, <= the sidecar's")
      ->check(DurationText());
  create->add_option("--absolute-ttl", absolute_ttl, "hard timeout, <= the sidecar's")
      ->check(DurationText());
  AddLimitOptions(create, &limit_args);
  create->callback([&] {
    Attributes attributes = AssignmentsToAttributes(set_args);
    SessionTtls ttls;
    if (!idle_ttl.empty()) ttls.idle = ParseNonNegativeDuration(idle_ttl);
    if (!absolute_ttl.empty()) ttls.absolute = ParseNonNegativeDuration(absolute_ttl);
    action = [&, attributes, ttls](Client& c, std::ostream& out) -> absl::Status {
      auto created = c.CreateSession(user, attributes, ttls, limit_args.Limit());
      if (!created.ok()) return created.status();
      print_session(out, *created);
      return absl::OkStatus();
    };
  });

  auto* get = session->add_subcommand("get", "show a session and its attributes");
  AddRefArgument(get, &ref);
  get->add_flag("--no-touch", no_touch, "do not roll the idle timeout");
  get->callback([&] {
    action = [&](Client& c, std::ostream& out) -> absl::Status {
      auto got = c.GetSession(SessionRef::Parse(ref), !no_touch);
      if (!got.ok()) return got.status();
      print_session(out, *got);
      return absl::OkStatus();
    };
  });

  auto* update = session->add_subcommand("update", "set and delete attributes");
  AddRefArgument(update, &ref);
  update->add_option("--set", set_args, "attribute NAME=VALUE to set (repeatable)")
      ->check(AssignmentText())
      ->allow_extra_args(false);
  update->add_option("--delete", delete_args, "attribute NAME to delete (repeatable)")
      ->allow_extra_args(false);
  CLI::Option* expect_version_option = update->add_option(
      "--expect-version", expect_version,
      "apply only if the session is at this version (else ABORTED)");
  // CLI11 would read "-1" as 2^64-1.
  expect_version_option->check(CLI::Validator(
      [](std::string& text) -> std::string {
        const bool digits = !text.empty() &&
            text.find_first_not_of("0123456789") == std::string::npos;
        return digits ? "" : "expected a version number (0, 1, 2, ...)";
      },
      "N"));
  update->callback([&] {
    Attributes attributes = AssignmentsToAttributes(set_args);
    if (attributes.empty() && delete_args.empty()) {
      throw CLI::ValidationError("update", "nothing to do: give --set and/or --delete");
    }
    std::optional<uint64_t> expected;
    if (expect_version_option->count() > 0) expected = expect_version;
    action = [&, attributes, expected](Client& c, std::ostream& out) -> absl::Status {
      auto updated = c.UpdateSession(SessionRef::Parse(ref), attributes,
                                     delete_args, expected);
      if (!updated.ok()) return updated.status();
      print_info(out, *updated);
      return absl::OkStatus();
    };
  });

  auto* touch = session->add_subcommand("touch", "roll the idle timeout");
  AddRefArgument(touch, &ref);
  touch->callback([&] {
    action = [&](Client& c, std::ostream& out) -> absl::Status {
      auto touched = c.TouchSession(SessionRef::Parse(ref));
      if (!touched.ok()) return touched.status();
      print_info(out, *touched);
      return absl::OkStatus();
    };
  });

  auto* destroy = session->add_subcommand("destroy", "end a session (no error if unknown)");
  AddRefArgument(destroy, &ref);
  destroy->callback([&] {
    action = [&](Client& c, std::ostream& out) -> absl::Status {
      auto existed = c.DestroySession(SessionRef::Parse(ref));
      if (!existed.ok()) return existed.status();
      if (g.json) {
        out << DumpJson(Json{{"existed", *existed}});
      } else {
        out << (*existed ? "destroyed\n" : "no such session; nothing destroyed\n");
      }
      return absl::OkStatus();
    };
  });

  auto* regenerate = session->add_subcommand(
      "regenerate", "move a session to a new id (and cookie); the old id ends");
  AddRefArgument(regenerate, &ref);
  regenerate->add_option("--user", user,
                         "login: the new session belongs to this user (an anonymous "
                         "session only; its attributes are kept)");
  AddLimitOptions(regenerate, &limit_args);
  regenerate->callback([&, regenerate] {
    RegenerateOptions options;
    if (regenerate->count("--user") > 0) options.user_id = user;
    options.limit = limit_args.Limit();
    action = [&, options](Client& c, std::ostream& out) -> absl::Status {
      auto moved = c.RegenerateSession(SessionRef::Parse(ref), options);
      if (!moved.ok()) return moved.status();
      print_session(out, *moved);
      return absl::OkStatus();
    };
  });

  auto* list = session->add_subcommand(
      "list", "a user's sessions (every page, or one with --page-size/--page-token)");
  list->add_option("--user", user, "the user")->required();
  uint32_t page_size = 0;
  std::string page_token;
  list->add_option("--page-size", page_size,
                   "show one page of at most this many (the sidecar's default: 0 = 100, "
                   "at most 1000)");
  list->add_option("--page-token", page_token,
                   "show the page after the one that printed this next page token");
  list->callback([&, list] {
    const bool one_page = list->count("--page-size") + list->count("--page-token") > 0;
    action = [&, one_page](Client& c, std::ostream& out) -> absl::Status {
      UserSessionsPage page;
      if (one_page) {
        auto got = c.ListUserSessionsPage(user, page_token, page_size);
        if (!got.ok()) return got.status();
        page = *std::move(got);
      } else {
        auto all = c.ListUserSessions(user);
        if (!all.ok()) return all.status();
        page.sessions = *std::move(all);
      }
      if (g.json) {
        Json array = Json::array();
        for (const SessionInfo& s : page.sessions) array.push_back(SessionInfoToJson(s));
        Json listing{{"user_id", user}, {"sessions", std::move(array)}};
        if (one_page) listing["next_page_token"] = page.next_page_token;
        out << DumpJson(listing);
      } else {
        PrintSessionTable(out, page.sessions);
        if (!page.next_page_token.empty()) {
          out << "next page: --page-token " << page.next_page_token << "\n";
        }
      }
      return absl::OkStatus();
    };
  });

  auto* destroy_user = session->add_subcommand(
      "destroy-user", "end every session of a user (log out everywhere)");
  destroy_user->add_option("--user", user, "the user")->required();
  destroy_user->add_option("--keep", keep, "keep this session (id or cookie)");
  destroy_user->callback([&] {
    action = [&](Client& c, std::ostream& out) -> absl::Status {
      std::optional<SessionRef> kept;
      if (!keep.empty()) kept = SessionRef::Parse(keep);
      auto destroyed = c.DestroyUserSessions(user, kept);
      if (!destroyed.ok()) return destroyed.status();
      if (g.json) {
        out << DumpJson(Json{{"destroyed", *destroyed}});
      } else {
        out << "destroyed " << *destroyed << " session(s)\n";
      }
      return absl::OkStatus();
    };
  });

  // --- optout ---
  auto* optout = app.add_subcommand("optout", "analytics opt-out flags");
  optout->require_subcommand(1);
  std::string subject, optout_ttl;
  bool off = false;
  auto print_optout = [&g, &subject](std::ostream& out, bool opted_out) {
    if (g.json) {
      out << DumpJson(Json{{"subject", subject}, {"opted_out", opted_out}});
    } else {
      out << EscapeForDisplay(subject) << ": "
          << (opted_out ? "opted out" : "not opted out") << "\n";
    }
  };
  auto* optout_set = optout->add_subcommand("set", "opt a subject out (or back in with --off)");
  optout_set->add_option("subject", subject, "user id, session id or other subject")->required();
  optout_set->add_flag("--off", off, "clear the opt-out");
  optout_set->add_option("--ttl", optout_ttl, "how long the flag lasts (default: the sidecar's, 1 year)")
      ->check(DurationText());
  optout_set->callback([&] {
    std::optional<absl::Duration> ttl;
    if (!optout_ttl.empty()) ttl = ParseNonNegativeDuration(optout_ttl);
    action = [&, ttl](Client& c, std::ostream& out) -> absl::Status {
      absl::Status status = c.SetOptOut(subject, !off, ttl);
      if (!status.ok()) return status;
      print_optout(out, !off);
      return absl::OkStatus();
    };
  });
  auto* optout_get = optout->add_subcommand("get", "whether a subject opted out");
  optout_get->add_option("subject", subject, "user id, session id or other subject")->required();
  optout_get->callback([&] {
    action = [&](Client& c, std::ostream& out) -> absl::Status {
      auto opted_out = c.GetOptOut(subject);
      if (!opted_out.ok()) return opted_out.status();
      print_optout(out, *opted_out);
      return absl::OkStatus();
    };
  });

  try {
    const std::vector<std::string> args = NormalizeArgs(argc, argv);
    std::vector<const char*> arg_ptrs;
    for (const std::string& a : args) arg_ptrs.push_back(a.c_str());
    app.parse(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  } catch (const CLI::ParseError& e) {
    // Help is a success; every other parse error is bad usage (CLI11's own
    // exit codes, 106 and so on, are not part of our contract).
    return app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
  }
  if (!action) {  // unreachable: require_subcommand guarantees a command
    err << "statesidectl: no command\n";
    return kExitUsage;
  }

  ClientOptions options;
  if (!g.socket.empty()) options.socket_path = g.socket;
  options.call_timeout = *ParseNonNegativeDuration(g.timeout);
  const absl::Duration wait = *ParseNonNegativeDuration(g.wait);
  options.wait_until_ready = wait > absl::ZeroDuration();
  options.ready_timeout = wait;
  // One command, one call: a Pipe stream would only add a second connection.
  options.streams = 0;
  if (options.call_timeout <= absl::ZeroDuration()) {
    err << "statesidectl: --timeout: must be positive\n";
    return kExitUsage;
  }
  auto client = Client::Connect(options);
  if (!client.ok()) {
    err << FailureLine(client.status());
    // Only option validation answers INVALID_ARGUMENT here (e.g. --socket
    // too long): that is bad usage, not a failed call.
    return client.status().code() == absl::StatusCode::kInvalidArgument
               ? kExitUsage
               : kExitFailed;
  }
  const absl::Status status = action(**client, out);
  out.flush();
  if (!status.ok()) {
    err << FailureLine(status);
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace stateside::cli

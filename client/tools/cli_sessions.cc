// statesidectl's session commands (session create, get, update, touch,
// destroy, regenerate, list, destroy-user, watch) and the analytics opt-out
// commands (optout set, optout get).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/tools/cli_format.h"
#include "client/tools/cli_internal.h"
#include "client/tools/cli_realtime_format.h"
#include "stateside/client.h"

namespace stateside::cli {
namespace {

// What the session commands parse into; shared by the parse callbacks and
// the action, which outlive AddSessionCommands. One subcommand runs per
// parse, so the subcommands share fields of the same meaning.
struct SessionArgs {
  std::string user, ref, keep, idle_ttl, absolute_ttl;
  std::vector<std::string> set_args, delete_args;
  uint64_t expect_version = 0;
  bool no_touch = false;
  // list
  uint32_t page_size = 0;
  std::string page_token;
  // create, and regenerate --user: the per-call cap of the user's sessions
  uint32_t max_sessions = 0;
  std::string at_limit;
  // create, regenerate: "" (a fresh one per invocation) or the caller's
  std::string request_id;
  // destroy-user
  bool close_connections = false;
  // watch
  std::vector<std::string> kinds;
  uint64_t count = 0;
  SessionLimit Limit() const {
    SessionLimit limit;
    if (max_sessions != 0) limit.max_sessions_per_user = max_sessions;
    if (at_limit == "refuse") limit.policy = SessionLimitPolicy::kRefuse;
    if (at_limit == "end_oldest") limit.policy = SessionLimitPolicy::kEndOldest;
    return limit;
  }
};

// What the optout commands parse into (as SessionArgs).
struct OptOutArgs {
  std::string subject, ttl;
  bool off = false;
};

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

// Subcommands taking a session ("<id|cookie>"). Also reachable as
// --session=VALUE, which NormalizeArgs (cli.cc) uses for values beginning
// with '-'.
CLI::Option* AddRefArgument(CLI::App* cmd, std::string* ref) {
  return cmd->add_option("session,--session", *ref, "session id, or cookie value (contains '.')")
      ->required();
}

void PrintInfo(const Globals& g, std::ostream& out, const SessionInfo& info) {
  if (g.json) {
    out << DumpJson(SessionInfoToJson(info));
  } else {
    PrintSessionInfo(out, info);
  }
}

void PrintOneSession(const Globals& g, std::ostream& out, const Session& session) {
  if (g.json) {
    out << DumpJson(SessionToJson(session));
  } else {
    PrintSession(out, session);
  }
}

void PrintOptOut(const Globals& g, std::ostream& out, const std::string& subject,
                 bool opted_out) {
  if (g.json) {
    out << DumpJson(Json{{"subject", subject}, {"opted_out", opted_out}});
  } else {
    out << EscapeForDisplay(subject) << ": "
        << (opted_out ? "opted out" : "not opted out") << "\n";
  }
}

// --max-sessions N and --at-limit refuse|end_oldest, into `a`.
void AddLimitOptions(CLI::App* cmd, SessionArgs* a) {
  cmd->add_option("--max-sessions", a->max_sessions,
                  "cap the user's live sessions for this call (<= the sidecar's "
                  "STATESIDE_MAX_SESSIONS_PER_USER)")
      ->check(CLI::Range(1u, 1'000'000u));
  cmd->add_option("--at-limit", a->at_limit,
                  "at the cap: refuse, or end_oldest (default: the sidecar's policy)")
      ->check(CLI::IsMember({"refuse", "end_oldest"}));
}

// --request-id of create and regenerate.
void AddRequestIdOption(CLI::App* command, SessionArgs* a) {
  command->add_option("--request-id", a->request_id,
                      "the call's request_id, for a script that runs the command again after "
                      "a failure: the sidecar applies it once (default: a fresh one, which "
                      "covers the command's own retries)");
}

// session create, get, touch, destroy, regenerate.
void AddSessionLifeCommands(CLI::App* session, const Globals* gl,
                            std::shared_ptr<SessionArgs> a, Action* act) {
  auto* create = session->add_subcommand("create", "create a session; prints its id and cookie");
  create->add_option("--user", a->user, "owner (default: an anonymous session)");
  create->add_option("--set", a->set_args, "attribute NAME=VALUE (repeatable; the value is the raw text after '=')")
      ->check(AssignmentText())
      ->allow_extra_args(false);
  create->add_option("--idle-ttl", a->idle_ttl, "idle timeout, <= the sidecar's")
      ->check(DurationText());
  create->add_option("--absolute-ttl", a->absolute_ttl, "hard timeout, <= the sidecar's")
      ->check(DurationText());
  AddLimitOptions(create, a.get());
  AddRequestIdOption(create, a.get());
  create->callback([=] {
    Attributes attributes = AssignmentsToAttributes(a->set_args);
    SessionTtls ttls;
    if (!a->idle_ttl.empty()) ttls.idle = ParseNonNegativeDuration(a->idle_ttl);
    if (!a->absolute_ttl.empty()) ttls.absolute = ParseNonNegativeDuration(a->absolute_ttl);
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      auto created = c.CreateSession(a->user, attributes, ttls, a->Limit(), a->request_id);
      if (!created.ok()) return created.status();
      PrintOneSession(*gl, out, *created);
      return absl::OkStatus();
    };
  });

  auto* get = session->add_subcommand("get", "show a session and its attributes");
  AddRefArgument(get, &a->ref);
  get->add_flag("--no-touch", a->no_touch, "do not roll the idle timeout");
  get->callback([=] {
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      auto got = c.GetSession(SessionRef::Parse(a->ref), !a->no_touch);
      if (!got.ok()) return got.status();
      PrintOneSession(*gl, out, *got);
      return absl::OkStatus();
    };
  });

  auto* update = session->add_subcommand("update", "set and delete attributes");
  AddRefArgument(update, &a->ref);
  update->add_option("--set", a->set_args, "attribute NAME=VALUE to set (repeatable)")
      ->check(AssignmentText())
      ->allow_extra_args(false);
  update->add_option("--delete", a->delete_args, "attribute NAME to delete (repeatable)")
      ->allow_extra_args(false);
  CLI::Option* expect_version_option = update->add_option(
      "--expect-version", a->expect_version,
      "apply only if the session is at this version (else ABORTED)");
  // CLI11 would read "-1" as 2^64-1.
  expect_version_option->check(CLI::Validator(
      [](std::string& text) -> std::string {
        const bool digits = !text.empty() &&
            text.find_first_not_of("0123456789") == std::string::npos;
        return digits ? "" : "expected a version number (0, 1, 2, ...)";
      },
      "N"));
  update->callback([=] {
    Attributes attributes = AssignmentsToAttributes(a->set_args);
    if (attributes.empty() && a->delete_args.empty()) {
      throw CLI::ValidationError("update", "nothing to do: give --set and/or --delete");
    }
    std::optional<uint64_t> expected;
    if (expect_version_option->count() > 0) expected = a->expect_version;
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      auto updated = c.UpdateSession(SessionRef::Parse(a->ref), attributes,
                                     a->delete_args, expected);
      if (!updated.ok()) return updated.status();
      PrintInfo(*gl, out, *updated);
      return absl::OkStatus();
    };
  });

  auto* touch = session->add_subcommand("touch", "roll the idle timeout");
  AddRefArgument(touch, &a->ref);
  touch->callback([=] {
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      auto touched = c.TouchSession(SessionRef::Parse(a->ref));
      if (!touched.ok()) return touched.status();
      PrintInfo(*gl, out, *touched);
      return absl::OkStatus();
    };
  });

  auto* destroy = session->add_subcommand("destroy", "end a session (no error if unknown)");
  AddRefArgument(destroy, &a->ref);
  destroy->callback([=] {
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      auto existed = c.DestroySession(SessionRef::Parse(a->ref));
      if (!existed.ok()) return existed.status();
      if (gl->json) {
        out << DumpJson(Json{{"existed", *existed}});
      } else {
        out << (*existed ? "destroyed\n" : "no such session; nothing destroyed\n");
      }
      return absl::OkStatus();
    };
  });

  auto* regenerate = session->add_subcommand(
      "regenerate", "move a session to a new id (and cookie); the old id ends");
  AddRefArgument(regenerate, &a->ref);
  regenerate->add_option("--user", a->user,
                         "login: the new session belongs to this user (an anonymous "
                         "session only; its attributes are kept)");
  AddLimitOptions(regenerate, a.get());
  AddRequestIdOption(regenerate, a.get());
  regenerate->callback([=] {
    RegenerateOptions options;
    if (regenerate->count("--user") > 0) options.user_id = a->user;
    options.limit = a->Limit();
    options.request_id = a->request_id;
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      auto moved = c.RegenerateSession(SessionRef::Parse(a->ref), options);
      if (!moved.ok()) return moved.status();
      PrintOneSession(*gl, out, *moved);
      return absl::OkStatus();
    };
  });
}

// session list and destroy-user: a user's sessions.
void AddUserSessionCommands(CLI::App* session, const Globals* gl,
                            std::shared_ptr<SessionArgs> a, Action* act) {
  auto* list = session->add_subcommand(
      "list", "a user's sessions (every page, or one with --page-size/--page-token)");
  list->add_option("--user", a->user, "the user")->required();
  list->add_option("--page-size", a->page_size,
                   "show one page of at most this many (the sidecar's default: 0 = 100, "
                   "at most 1000)");
  list->add_option("--page-token", a->page_token,
                   "show the page after the one that printed this next page token");
  list->callback([=] {
    const bool one_page = list->count("--page-size") + list->count("--page-token") > 0;
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      UserSessionsPage page;
      if (one_page) {
        auto got = c.ListUserSessionsPage(a->user, a->page_token, a->page_size);
        if (!got.ok()) return got.status();
        page = *std::move(got);
      } else {
        auto all = c.ListUserSessions(a->user);
        if (!all.ok()) return all.status();
        page.sessions = *std::move(all);
      }
      if (gl->json) {
        Json array = Json::array();
        for (const SessionInfo& s : page.sessions) array.push_back(SessionInfoToJson(s));
        Json listing{{"user_id", a->user}, {"sessions", std::move(array)}};
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
  destroy_user->add_option("--user", a->user, "the user")->required();
  destroy_user->add_option("--keep", a->keep, "keep this session (id or cookie)");
  destroy_user->add_flag("--close-connections", a->close_connections,
                         "also have the apps close the user's realtime connections");
  destroy_user->callback([=] {
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      LogoutOptions options;
      if (!a->keep.empty()) options.keep = SessionRef::Parse(a->keep);
      options.close_connections = a->close_connections;
      auto destroyed = c.DestroyUserSessions(a->user, options);
      if (!destroyed.ok()) return destroyed.status();
      if (gl->json) {
        out << DumpJson(Json{{"destroyed", *destroyed}});
      } else {
        out << "destroyed " << *destroyed << " session(s)\n";
      }
      return absl::OkStatus();
    };
  });
}

// One line of `session watch`.
std::string FormatChange(const SessionChange& c) {
  std::string line = absl::StrCat(std::string(SessionEventKindName(c.kind)), " ", c.session_id);
  if (!c.user_id.empty()) absl::StrAppend(&line, " user=", c.user_id);
  if (!c.previous_session_id.empty()) absl::StrAppend(&line, " previous=", c.previous_session_id);
  if (!c.attributes.empty()) absl::StrAppend(&line, " attributes=", absl::StrJoin(c.attributes, ","));
  absl::StrAppend(&line, " at=", FormatTimestamp(c.time), " origin=", c.origin_instance);
  return line;
}

Json ChangeToJson(const SessionChange& c) {
  return Json{{"kind", std::string(SessionEventKindName(c.kind))},
              {"session_id", c.session_id},
              {"user_id", c.user_id},
              {"previous_session_id", c.previous_session_id},
              {"attributes", c.attributes},
              {"time", FormatTimestamp(c.time)},
              {"origin_instance", c.origin_instance}};
}

void AddWatchCommand(CLI::App* session, const Globals* gl, std::shared_ptr<SessionArgs> a,
                     Action* act) {
  auto* watch = session->add_subcommand(
      "watch", "follow the sessions' changes (every sidecar's on Redis) until interrupted");
  watch->add_option("--kind", a->kinds, "only this kind (repeatable)")
      ->check(CLI::IsMember({"created", "regenerated", "updated", "destroyed", "expired"}));
  watch->add_option("--count", a->count, "stop after this many events (0: never)");
  watch->callback([=] {
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      std::vector<SessionEventKind> kinds;
      for (const std::string& name : a->kinds) kinds.push_back(*SessionEventKindFromName(name));
      uint64_t seen = 0;
      return c.WatchSessionEvents(
          [&](const Client::SessionEvent& event) {
            if (const auto* change = std::get_if<SessionChange>(&event)) {
              out << (gl->json ? DumpJsonLine(ChangeToJson(*change)) : FormatChange(*change) + "\n");
            } else {
              const RealtimeEvent gap(std::get<Gap>(event));
              out << (gl->json ? DumpJsonLine(EventToJson(gap)) : FormatEvent(gap) + "\n");
            }
            out.flush();
            return a->count == 0 || ++seen < a->count;
          },
          kinds);
    };
  });
}

}  // namespace

void AddSessionCommands(CLI::App& app, const Globals& g, Action& action) {
  // The callbacks run during the parse, after this function returned: they
  // share the arguments through this pointer and capture g and action by
  // address (both outlive the parse and the action, see cli_internal.h).
  auto a = std::make_shared<SessionArgs>();
  auto* session = app.add_subcommand("session", "create, read, change and end sessions");
  session->require_subcommand(1);
  AddSessionLifeCommands(session, &g, a, &action);
  AddUserSessionCommands(session, &g, a, &action);
  AddWatchCommand(session, &g, a, &action);
}

void AddOptOutCommands(CLI::App& app, const Globals& g, Action& action) {
  // As AddSessionCommands: the callbacks hold pointers, never references.
  auto a = std::make_shared<OptOutArgs>();
  const Globals* const gl = &g;
  Action* const act = &action;
  auto* optout = app.add_subcommand("optout", "analytics opt-out flags");
  optout->require_subcommand(1);
  auto* optout_set = optout->add_subcommand("set", "opt a subject out (or back in with --off)");
  optout_set->add_option("subject", a->subject, "user id, session id or other subject")->required();
  optout_set->add_flag("--off", a->off, "clear the opt-out");
  optout_set->add_option("--ttl", a->ttl, "how long the flag lasts (default: the sidecar's, 1 year)")
      ->check(DurationText());
  optout_set->callback([=] {
    std::optional<absl::Duration> ttl;
    if (!a->ttl.empty()) ttl = ParseNonNegativeDuration(a->ttl);
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      absl::Status status = c.SetOptOut(a->subject, !a->off, ttl);
      if (!status.ok()) return status;
      PrintOptOut(*gl, out, a->subject, !a->off);
      return absl::OkStatus();
    };
  });
  auto* optout_get = optout->add_subcommand("get", "whether a subject opted out");
  optout_get->add_option("subject", a->subject, "user id, session id or other subject")->required();
  optout_get->callback([=] {
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      auto opted_out = c.GetOptOut(a->subject);
      if (!opted_out.ok()) return opted_out.status();
      PrintOptOut(*gl, out, a->subject, *opted_out);
      return absl::OkStatus();
    };
  });
}

}  // namespace stateside::cli

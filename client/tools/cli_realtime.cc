// statesidectl's realtime commands: publish, subscribe (a stream, until
// SIGINT/SIGTERM, optionally resuming), presence, history and the
// cluster-wide connections join|leave|disconnect.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/tools/cli_format.h"
#include "client/tools/cli_internal.h"
#include "client/tools/cli_realtime_format.h"
#include "stateside/client.h"

namespace stateside::cli {
namespace {

// What the realtime commands parse into; shared by the parse callbacks and
// the action, which outlive AddRealtimeCommands.
struct RealtimeArgs {
  // publish
  std::string room, user, conn, event, payload, request_id;
  bool all = false;
  std::vector<std::string> except;
  // The parsed --conn/--except (filled in by the publish callback).
  PublishTarget target;
  std::vector<ConnectionRef> except_refs;
  // subscribe
  std::string sub_conn, sub_user;
  std::vector<std::string> sub_rooms;
  std::vector<std::string> resume;
  std::vector<StreamPosition> resume_points;  // parsed --resume
  int64_t count = 0;
  // presence and history
  std::string presence_room, presence_user, history_room;
  uint64_t after = 0;
  int limit = 0;
  // connections join|leave|disconnect: the selector (publish's target
  // options) and the rooms.
  std::vector<std::string> ops_rooms;
};

// One of --room, --user, --conn, --all of a subcommand: what publish sends
// to, and whose connections `connections` acts on.
struct TargetOptions {
  CLI::Option* room;
  CLI::Option* user;
  CLI::Option* conn;
  CLI::Option* all;
};

// A CLI11 parse error: bad usage, exit 2.
[[noreturn]] void Usage(const std::string& what) {
  throw CLI::ValidationError(what);
}

ConnectionRef ConnectionArgOrUsage(const std::string& option, const std::string& text) {
  auto ref = ParseConnectionArg(text);
  if (!ref.ok()) Usage(absl::StrCat(option, " '", text, "': ", ref.status().message()));
  return *ref;
}

// --- SIGINT/SIGTERM while subscribed ---
// A signal handler can reach only static state: one pipe for the process,
// created on first use and never closed, so that a handler running late in
// another thread can never write into a reused descriptor. Runs are one at
// a time (cli.h), so one pipe suffices.
int g_signal_pipe[2] = {-1, -1};

extern "C" void OnShutdownSignal(int) {
  const int saved_errno = errno;
  const char byte = 'S';
  // Non-blocking: a full pipe already holds a wake-up.
  (void)!write(g_signal_pipe[1], &byte, 1);
  errno = saved_errno;
}

// While alive, SIGINT and SIGTERM cancel the watched subscription (from a
// thread of its own: Cancel is not async-signal-safe) instead of killing the
// process; the previous handlers come back on destruction.
// Thread-safe: Watch/interrupted may race with the signal thread.
class SignalCatcher {
 public:
  SignalCatcher() {
    static std::once_flag once;
    std::call_once(once, [] {
      if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) g_signal_pipe[0] = -1;
    });
    if (g_signal_pipe[0] < 0) return;  // no pipe: signals keep their default
    char stale[64];
    while (read(g_signal_pipe[0], stale, sizeof(stale)) > 0) {
    }
    struct sigaction action = {};
    action.sa_handler = OnShutdownSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
    installed_ = true;
    thread_ = std::thread([this] { Run(); });
  }

  ~SignalCatcher() {
    if (!installed_) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      subscription_ = nullptr;
    }
    const char byte = 'Q';
    (void)!write(g_signal_pipe[1], &byte, 1);
    thread_.join();
  }

  // Cancels `s` on the next signal (at once if one came already).
  void Watch(Subscription* s) {
    absl::MutexLock lock(&mu_);
    subscription_ = s;
    if (interrupted_) s->Cancel();
  }

  bool interrupted() const {
    absl::MutexLock lock(&mu_);
    return interrupted_;
  }

 private:
  void Run() {
    for (;;) {
      pollfd fd = {g_signal_pipe[0], POLLIN, 0};
      if (poll(&fd, 1, -1) < 0 && errno != EINTR) return;
      char bytes[64];
      const ssize_t n = read(g_signal_pipe[0], bytes, sizeof(bytes));
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      if (n > 0 && std::find(bytes, bytes + n, 'S') != bytes + n) {
        interrupted_ = true;
        if (subscription_ != nullptr) subscription_->Cancel();
      }
    }
  }

  struct sigaction old_int_ = {}, old_term_ = {};
  bool installed_ = false;  // constant after construction
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
  Subscription* subscription_ ABSL_GUARDED_BY(mu_) = nullptr;
};

bool IsFor(const RealtimeEvent& event, const std::string& conn) {
  const std::vector<std::string>* conns = nullptr;
  if (const auto* d = std::get_if<Delivery>(&event)) conns = &d->conn_ids;
  if (const auto* gone = std::get_if<Disconnect>(&event)) conns = &gone->conn_ids;
  if (conns == nullptr) return true;  // a gap concerns every connection
  return std::find(conns->begin(), conns->end(), conn) != conns->end();
}

absl::Status RunSubscribe(Client& c, std::ostream& out, const Globals& g,
                          const RealtimeArgs& a) {
  std::vector<ConnectionRegistration> connections;
  if (!a.sub_conn.empty()) connections.push_back({a.sub_conn, a.sub_user, a.sub_rooms});
  std::unique_ptr<Subscription> subscription;
  SignalCatcher signals;  // declared after: stops watching before it goes
  auto subscribed = c.Subscribe(connections, a.resume_points);
  if (!subscribed.ok()) return signals.interrupted() ? absl::OkStatus() : subscribed.status();
  subscription = std::move(*subscribed);
  signals.Watch(subscription.get());
  for (int64_t delivered = 0; a.count == 0 || delivered < a.count;) {
    auto event = subscription->Next();
    if (!event.ok()) {
      // Interrupted: the stream was cancelled on purpose; a clean exit.
      return signals.interrupted() ? absl::OkStatus() : event.status();
    }
    if (!a.sub_conn.empty() && !IsFor(*event, a.sub_conn)) continue;
    out << (g.json ? DumpJsonLine(EventToJson(*event)) : FormatEvent(*event) + "\n");
    out.flush();  // scripts read this through a pipe, line by line
    if (std::holds_alternative<Delivery>(*event)) ++delivered;
  }
  return absl::OkStatus();
}

// Every page of a room's members. A sidecar that repeats a page token would
// make this loop forever: that is an error.
absl::Status ListRoomMembers(Client& c, const std::string& room, int64_t* count,
                             std::vector<ConnectionRef>* members) {
  constexpr int kPageSize = 1000;  // the largest the sidecar accepts
  std::set<std::string> tokens_seen;
  std::string token;
  do {
    auto page = c.RoomMembers(room, kPageSize, token);
    if (!page.ok()) return page.status();
    *count = page->count;
    members->insert(members->end(), page->members.begin(), page->members.end());
    token = page->next_page_token;
    if (!token.empty() && !tokens_seen.insert(token).second) {
      return absl::InternalError("the sidecar repeated a page token");
    }
  } while (!token.empty());
  return absl::OkStatus();
}

absl::Status RunPresence(Client& c, std::ostream& out, std::ostream& err,
                         const Globals& g, const RealtimeArgs& a) {
  int64_t count = 0;
  std::vector<ConnectionRef> connections;
  if (!a.presence_room.empty()) {
    if (absl::Status s = ListRoomMembers(c, a.presence_room, &count, &connections); !s.ok()) {
      return s;
    }
  } else {
    auto found = c.UserConnections(a.presence_user);
    if (!found.ok()) return found.status();
    connections = std::move(*found);
    count = static_cast<int64_t>(connections.size());
  }
  if (g.json) {
    Json array = Json::array();
    for (const ConnectionRef& ref : connections) array.push_back(ConnectionRefToJson(ref));
    out << DumpJson(Json{{"count", count}, {"connections", std::move(array)}});
    return absl::OkStatus();
  }
  for (const ConnectionRef& ref : connections) out << FormatConnectionRef(ref) << "\n";
  err << count << " connection(s)\n";
  return absl::OkStatus();
}

absl::Status RunHistory(Client& c, std::ostream& out, const Globals& g,
                        const RealtimeArgs& a) {
  auto history = c.History(a.history_room, a.after, a.limit);
  if (!history.ok()) return history.status();
  if (g.json) {
    Json events = Json::array();
    for (const Delivery& d : history->events) events.push_back(DeliveryToJson(d));
    out << DumpJson(Json{{"room", a.history_room},
                         {"events", std::move(events)},
                         {"complete", history->complete},
                         {"first_sequence", history->first_sequence},
                         {"last_sequence", history->last_sequence},
                         {"more", history->more}});
    return absl::OkStatus();
  }
  for (const Delivery& d : history->events) out << FormatDelivery(d) << "\n";
  out << "complete=" << (history->complete ? "yes" : "no")
      << " first_sequence=" << history->first_sequence
      << " last_sequence=" << history->last_sequence
      << " more=" << (history->more ? "yes" : "no") << "\n";
  return absl::OkStatus();
}

// Adds --room, --user, --conn, --all to `cmd`, each saying `what`.
TargetOptions AddTargetOptions(CLI::App* cmd, RealtimeArgs& a, const std::string& what) {
  return {cmd->add_option("--room", a.room, what + " of this room"),
          cmd->add_option("--user", a.user, what + " of this user"),
          cmd->add_option("--conn", a.conn,
                          "one connection: CONN (of this sidecar's instance) or INSTANCE/CONN"),
          cmd->add_flag("--all", a.all, what + " of the cluster")};
}

// The sidecar's limit on rooms and resume points per request, checked here
// so that too many is a usage error (exit 2).
void CheckAtMost(const std::string& what, size_t given) {
  constexpr size_t kMaxPerRequest = 256;
  if (given > kMaxPerRequest) {
    Usage(absl::StrCat(what, ": at most ", kMaxPerRequest, ", got ", given));
  }
}

// Exactly one of the target options, and the --except list: usage errors
// (exit 2) name what is wrong.
void ParseTarget(const std::string& command, const TargetOptions& o, RealtimeArgs& a) {
  const size_t targets = o.room->count() + o.user->count() + o.conn->count() + o.all->count();
  if (targets != 1) Usage(command + ": give exactly one of --room, --user, --conn, --all");
  if (o.room->count() > 0) {
    if (a.room.empty()) Usage("--room: empty");
    a.target = PublishTarget::Room(a.room);
  } else if (o.user->count() > 0) {
    if (a.user.empty()) Usage("--user: empty");
    a.target = PublishTarget::User(a.user);
  } else if (o.conn->count() > 0) {
    a.target = PublishTarget::Connection(ConnectionArgOrUsage("--conn", a.conn));
  } else {
    a.target = PublishTarget::All();
  }
  a.except_refs.clear();
  for (const std::string& e : a.except) {
    a.except_refs.push_back(ConnectionArgOrUsage("--except", e));
  }
}

void PrintInstances(std::ostream& out, const Globals& g, int64_t instances) {
  if (g.json) {
    out << DumpJson(Json{{"instances", instances}});
  } else {
    out << "sent to " << instances << " instance(s)\n";
  }
}

}  // namespace

void AddRealtimeCommands(CLI::App& app, const Globals& g, Action& action,
                         std::ostream& err) {
  // The callbacks run during the parse, after this function returned: they
  // share the arguments through this pointer and capture g and action by
  // address (both outlive the parse and the action, see cli_internal.h).
  auto a = std::make_shared<RealtimeArgs>();
  const Globals* const gl = &g;
  Action* const act = &action;
  std::ostream* const errs = &err;

  auto* publish = app.add_subcommand(
      "publish",
      "send an event to exactly one of --room, --user, --conn, --all.\n"
      "C (--conn, --except) is CONN, a connection of the sidecar we talk to, "
      "or INSTANCE/CONN (split at the first '/').\nPrints the room's sequence "
      "number and how many instances it was sent to; --json: "
      "{\"sequence\":N,\"instances\":N}. Retried with its request_id: "
      "published once.\nA PAYLOAD beginning with '-' goes after \"--\".");
  const TargetOptions to = AddTargetOptions(publish, *a, "every connection");
  publish->add_option("--event", a->event, "event name (default: none)");
  publish->add_option("--except", a->except,
                      "a connection that must not receive it (repeatable)")
      ->allow_extra_args(false);
  publish->add_option("--request-id", a->request_id,
                      "the publish's request_id, for a script that runs the command again "
                      "after a failure: published once (default: a fresh one)");
  publish->add_option("payload", a->payload, "the payload: the argument's bytes")
      ->required();
  publish->callback([=] {
    ParseTarget("publish", to, *a);
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      auto published =
          c.Publish(a->target, a->event, a->payload, a->except_refs, "", a->request_id);
      if (!published.ok()) return published.status();
      if (gl->json) {
        out << DumpJson(Json{{"sequence", published->sequence},
                             {"instances", published->instances}});
      } else if (a->target.kind == Target::kRoom) {
        out << "sequence " << published->sequence << ", sent to "
            << published->instances << " instance(s)\n";
      } else {
        out << "sent to " << published->instances << " instance(s)\n";
      }
      return absl::OkStatus();
    };
  });

  auto* subscribe = app.add_subcommand(
      "subscribe",
      "print this instance's events, one line each, until SIGINT/SIGTERM "
      "(exit 0) or the stream fails (exit 1).\nWith --conn, registers that "
      "connection (--user, --room) for the life of the stream and prints only "
      "the events for it (and gaps).\nWith --resume, first the events each "
      "named stream logged after its sequence, then live (each sequence "
      "once).\nText: \"room lobby #12 chat: hello\"; "
      "the payload as is if printable UTF-8, else \"base64:...\"; gaps as "
      "\"gap subscriber-overflow dropped=N\", \"gap redis-disconnected "
      "from=T to=T\" or \"gap resume-incomplete dropped=0 resume=user:ann=3 "
      "first_sequence=N\" (the log no longer reaches back: those in between "
      "are lost); \"disconnect C,...\".\n--json, one object a line: "
      "{\"kind\":\"delivery\","
      "\"target\",\"to\",\"event\",\"payload\" (valid UTF-8) or "
      "\"payload_base64\",\"sequence\",\"conn_ids\",\"origin\","
      "\"published_at\"}, {\"kind\":\"gap\",\"reason\",\"dropped\",\"from\"?,"
      "\"to\"?,\"resume\"?,\"first_sequence\"?} or "
      "{\"kind\":\"disconnect\",\"conn_ids\"}.");
  auto* sub_conn = subscribe->add_option(
      "--conn", a->sub_conn, "register this connection id (as is) for the stream");
  subscribe->add_option("--user", a->sub_user, "the connection's user")->needs(sub_conn);
  subscribe->add_option("--room", a->sub_rooms, "a room the connection joins (repeatable)")
      ->needs(sub_conn)
      ->allow_extra_args(false);
  subscribe->add_option("--count", a->count, "exit 0 after N delivered events")
      ->check(CLI::PositiveNumber);
  subscribe->add_option("--resume", a->resume,
                        "replay what STREAM=N logged after sequence N, then go live "
                        "(repeatable, one a stream): room:ROOM=N, user:USER=N, conn:C=N, "
                        "all=N")
      ->allow_extra_args(false);
  subscribe->callback([=] {
    if (sub_conn->count() > 0 && a->sub_conn.empty()) Usage("--conn: empty");
    CheckAtMost("--room", a->sub_rooms.size());
    CheckAtMost("--resume", a->resume.size());
    a->resume_points.clear();
    std::set<std::string> streams;
    for (const std::string& text : a->resume) {
      absl::StatusOr<StreamPosition> point = ParseStreamPosition(text);
      if (!point.ok()) Usage(absl::StrCat("--resume '", text, "': ", point.status().message()));
      // The stream is what precedes the last '=' (as ParseStreamPosition reads it).
      if (!streams.insert(text.substr(0, text.rfind('='))).second) {
        Usage(absl::StrCat("--resume '", text, "': that stream is given twice"));
      }
      a->resume_points.push_back(*std::move(point));
    }
    *act = [=](Client& c, std::ostream& out) { return RunSubscribe(c, out, *gl, *a); };
  });

  auto* connections = app.add_subcommand(
      "connections",
      "cluster-wide, on every instance: the connections of exactly one of "
      "--room, --user, --conn, --all (minus --except) join or leave ROOMs, or "
      "are disconnected (their instances' subscribe streams get a "
      "disconnect naming them). Prints how many instances it was sent to; "
      "--json: {\"instances\":N}.");
  connections->require_subcommand(1);
  for (const char* verb : {"join", "leave", "disconnect"}) {
    const std::string name = verb;
    auto* cmd = connections->add_subcommand(
        name, name == "disconnect" ? "disconnect the selected connections"
                                   : "the selected connections " + name + " ROOM...");
    const TargetOptions of = AddTargetOptions(cmd, *a, "the connections");
    cmd->add_option("--except", a->except, "a connection left alone (repeatable)")
        ->allow_extra_args(false);
    if (name != "disconnect") {
      cmd->add_option("rooms", a->ops_rooms, "the rooms (1 to 256)")->required();
    }
    cmd->callback([=] {
      ParseTarget("connections " + name, of, *a);
      CheckAtMost("ROOM", a->ops_rooms.size());
      for (const std::string& r : a->ops_rooms) {
        if (r.empty()) Usage("ROOM: empty");
      }
      *act = [=](Client& c, std::ostream& out) -> absl::Status {
        absl::StatusOr<int64_t> sent =
            name == "join"    ? c.JoinConnections(a->target, a->ops_rooms, a->except_refs)
            : name == "leave" ? c.LeaveConnections(a->target, a->ops_rooms, a->except_refs)
                              : c.DisconnectConnections(a->target, a->except_refs);
        if (!sent.ok()) return sent.status();
        PrintInstances(out, *gl, *sent);
        return absl::OkStatus();
      };
    });
  }

  auto* presence = app.add_subcommand(
      "presence",
      "the connections of a room (every page) or of a user, cluster-wide: "
      "INSTANCE/CONN one a line and the count on stderr;\n--json: "
      "{\"count\":N,\"connections\":[{\"instance\":...,\"conn\":...}]}");
  auto* p_room = presence->add_option("--room", a->presence_room, "the room");
  auto* p_user = presence->add_option("--user", a->presence_user, "the user");
  presence->callback([=] {
    if (p_room->count() + p_user->count() != 1) {
      Usage("presence: give exactly one of --room, --user");
    }
    if (a->presence_room.empty() && a->presence_user.empty()) Usage("presence: empty name");
    *act = [=](Client& c, std::ostream& out) { return RunPresence(c, out, *errs, *gl, *a); };
  });

  auto* history = app.add_subcommand(
      "history",
      "a room's recent events (the sidecar's bounded window) and whether "
      "it is complete;\ntext: one line per event, then \"complete=yes|no "
      "first_sequence=N last_sequence=N more=yes|no\" (more: run again with "
      "--after the last one).");
  history->add_option("--room", a->history_room, "the room")->required();
  // Digits only: CLI11 would read "-1" as 2^64-1.
  history->add_option("--after", a->after, "events with a sequence number above N")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            const bool digits = !text.empty() &&
                                text.find_first_not_of("0123456789") == std::string::npos;
            return digits ? "" : "expected a sequence number (0, 1, 2, ...)";
          },
          "N"));
  history->add_option("--limit", a->limit, "at most N events (default: the sidecar's, 100)")
      ->check(CLI::Range(1, 1000));
  history->callback([=] {
    if (a->history_room.empty()) Usage("--room: empty");
    *act = [=](Client& c, std::ostream& out) { return RunHistory(c, out, *gl, *a); };
  });
}

}  // namespace stateside::cli

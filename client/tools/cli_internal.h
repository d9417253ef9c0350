// What statesidectl's command files share: the global options and the shape
// of a command's action. Not thread-safe (one run at a time, as cli.h).
#ifndef STATESIDE_CLIENT_TOOLS_CLI_INTERNAL_H_
#define STATESIDE_CLIENT_TOOLS_CLI_INTERNAL_H_

#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "stateside/client.h"

namespace CLI {
class App;
class Validator;
}

namespace stateside::cli {

// Runs the chosen command against a client, printing to `out`. Commands
// that use only the admin HTTP port ignore the client (it did no I/O).
using Action = std::function<absl::Status(Client&, std::ostream&)>;

// Options of the top-level command, valid for every subcommand.
struct Globals {
  std::string socket;
  bool json = false;
  std::string timeout = "5s";
  std::string wait = "0s";
};

// A duration text such as "500ms" or "1h30m", if it parses and is finite
// and not negative (cli.cc).
std::optional<absl::Duration> ParseNonNegativeDuration(const std::string& text);

// Checks an option's text with ParseNonNegativeDuration (a usage error,
// exit 2, when it does not parse).
const CLI::Validator& DurationText();

// Options of the lifecycle commands (filled in by the parser).
struct LifecycleArgs {
  std::string health_service;
  std::string health_admin;
  std::string metrics_admin;
  std::string metrics_grep;
  bool drain_no_follow = false;
};

// Adds info, health, instances, metrics, drain and watch-drain. The references
// must outlive both the parse and the action.
void AddLifecycleCommands(CLI::App& app, const Globals& g, LifecycleArgs& args,
                          Action& action);

// Adds publish, subscribe, presence and history (cli_realtime.cc). `g`,
// `action` and `err` (where presence prints its count line) must outlive
// both the parse and the action.
void AddRealtimeCommands(CLI::App& app, const Globals& g, Action& action,
                         std::ostream& err);

// Adds keys rewrap and keys status (cli_keys.cc). `g` and `action` must
// outlive both the parse and the action.
void AddKeyCommands(CLI::App& app, const Globals& g, Action& action);

// Adds session create, get, update, touch, destroy, regenerate, list and
// destroy-user (cli_sessions.cc). `g` and `action` must outlive both the
// parse and the action.
void AddSessionCommands(CLI::App& app, const Globals& g, Action& action);

// Adds optout set and optout get (cli_sessions.cc), as AddSessionCommands.
void AddOptOutCommands(CLI::App& app, const Globals& g, Action& action);

}  // namespace stateside::cli

#endif  // STATESIDE_CLIENT_TOOLS_CLI_INTERNAL_H_

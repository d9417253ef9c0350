// statesidectl's top-level command: its global options, the command groups
// (each in its own file, see cli_internal.h), and the run of the chosen
// command against a client.
#include "client/tools/cli.h"

#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/tools/cli_internal.h"
#include "stateside/client.h"

namespace stateside::cli {

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

namespace {

std::string FailureLine(const absl::Status& status) {
  return absl::StrCat("statesidectl: ", absl::StatusCodeToString(status.code()),
                      ": ", status.message(), "\n");
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

// The top-level command and its global options (filled into `g`).
void AddGlobalOptions(CLI::App& app, Globals& g) {
  app.name("statesidectl");
  app.footer(
      "Sessions are named by id or by cookie value (text with a '.' is a "
      "cookie).\n--set NAME=VALUE stores the raw bytes after the first '='. "
      "Text output escapes\nnon-printable bytes (\\xHH). In --json output, "
      "\"attributes\" holds the values that\nare valid UTF-8 as strings, "
      "\"binary_attributes\" the others in base64.");
  app.fallthrough();  // global options are accepted after the subcommand too
  app.require_subcommand(1);

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
}

// Connects as the global options say and runs the parsed command's action.
int RunAction(const Globals& g, const Action& action, std::ostream& out,
              std::ostream& err) {
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

}  // namespace

int RunStatesidectl(int argc, const char* const* argv, std::ostream& out,
                    std::ostream& err) {
  CLI::App app{
      "statesidectl: talk to the Stateside sidecar over its Unix socket.\n"
      "Exit status: 0 ok, 1 the call failed (code and message on stderr), "
      "2 bad usage."};
  Globals g;
  AddGlobalOptions(app, g);

  // The order of the groups is the order of --help.
  Action action;
  LifecycleArgs lifecycle_args;
  AddLifecycleCommands(app, g, lifecycle_args, action);
  AddKeyCommands(app, g, action);
  AddRealtimeCommands(app, g, action, err);
  AddSessionCommands(app, g, action);
  AddOptOutCommands(app, g, action);

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
  return RunAction(g, action, out, err);
}

}  // namespace stateside::cli

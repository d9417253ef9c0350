// statesidectl's command tree, runnable in-process (the tests drive it like
// main does). Not thread-safe: one run per call; it writes to the streams given.
//
// Exit status: 0 success; 1 a call failed (stderr: "statesidectl: CODE: message"
// with the gRPC code name, e.g. "statesidectl: NOT_FOUND: session not found");
// 2 bad usage (unknown command or option, missing or malformed argument).
#ifndef STATESIDE_CLIENT_TOOLS_CLI_H_
#define STATESIDE_CLIENT_TOOLS_CLI_H_

#include <ostream>

namespace stateside::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Parses argv (argv[0] is the program name) and runs the command.
int RunStatesidectl(int argc, const char* const* argv, std::ostream& out,
                    std::ostream& err);

}  // namespace stateside::cli

#endif  // STATESIDE_CLIENT_TOOLS_CLI_H_

// radar-app's log, in the sidecar's formats: spdlog's default logger on
// stderr, text "[time] [LEVEL] [instance] message" or one JSON object per
// line {"time","level","instance","msg"} (STATESIDE_LOG_FORMAT/LEVEL).
// InitLogging is not thread-safe (main only); logging afterwards is.
#ifndef STATESIDE_APP_LOGGING_H_
#define STATESIDE_APP_LOGGING_H_

#include <string_view>

#include "absl/status/status.h"

namespace radar {

// Installs the default logger. Called once before the instance id is known
// (with the program name) and again once it is: only while no other thread
// logs. `format` is "text" or "json", `level` a level name Config accepts.
absl::Status InitLogging(std::string_view format, std::string_view level,
                         std::string_view instance);

}  // namespace radar

#endif  // STATESIDE_APP_LOGGING_H_

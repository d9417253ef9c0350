// The sidecar's log: spdlog's default logger on stderr, each line carrying
// the instance id, as text "[time] [LEVEL] [instance-id] message" or as one
// JSON object per line {"time","level","instance","msg"}. Times are UTC.
//
// InitLogging is called once from main before other threads log; afterwards
// logging (spdlog::info, ...) is safe from any thread.
#ifndef STATESIDE_SIDECAR_SERVER_LOGGING_H_
#define STATESIDE_SIDECAR_SERVER_LOGGING_H_

#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "sidecar/server/config.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/sink.h"

namespace stateside {

// A logger named "stateside" writing to `sink` in `format`. `level` is a
// spdlog level name as Config normalises it ("info", "warn", ...);
// INVALID_ARGUMENT for anything else.
absl::StatusOr<std::shared_ptr<spdlog::logger>> MakeLogger(
    LogFormat format, std::string_view level, std::string_view instance_id,
    spdlog::sink_ptr sink);

// Makes the stderr logger (colours only on a terminal, text format),
// installs it as spdlog's default and routes gRPC's and protobuf's own log
// messages to it. Not thread-safe: call once, at the start of main.
absl::Status InitLogging(LogFormat format, std::string_view level,
                         std::string_view instance_id);

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_LOGGING_H_

// Text and JSON log formats with the instance id on every line.
#include "sidecar/server/logging.h"

#include <chrono>
#include <string>
#include <utility>

#include <grpc/support/log.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "nlohmann/json.hpp"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace stateside {
namespace {

std::string_view UpperLevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "TRACE";
    case spdlog::level::debug:
      return "DEBUG";
    case spdlog::level::info:
      return "INFO";
    case spdlog::level::warn:
      return "WARN";
    case spdlog::level::err:
      return "ERROR";
    case spdlog::level::critical:
      return "CRITICAL";
    default:
      return "OFF";
  }
}

std::string_view LowerLevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

absl::StatusOr<spdlog::level::level_enum> LevelFromName(std::string_view name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  if (name == "critical") return spdlog::level::critical;
  if (name == "off") return spdlog::level::off;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level ", std::string(name)));
}

std::string FormatTime(spdlog::log_clock::time_point tp) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromChrono(tp),
                          absl::UTCTimeZone());
}

// %* in the text pattern: the level in capitals ("INFO", "WARN").
class UpperLevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view name = UpperLevelName(msg.level);
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<UpperLevelFlag>();
  }
};

// %& in the text pattern: the instance id. A flag rather than literal text
// in the pattern, so that no character of the id is read as a pattern flag.
class InstanceFlag final : public spdlog::custom_flag_formatter {
 public:
  explicit InstanceFlag(std::string id) : id_(std::move(id)) {}
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    dest.append(id_.data(), id_.data() + id_.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<InstanceFlag>(id_);
  }

 private:
  const std::string id_;
};

// One JSON object per line. nlohmann escapes quotes, control characters and
// newlines; invalid UTF-8 in a message is replaced, never emitted raw.
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string instance_id)
      : instance_id_(std::move(instance_id)) {}

  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    nlohmann::json line = {
        {"time", FormatTime(msg.time)},
        {"level", LowerLevelName(msg.level)},
        {"instance", instance_id_},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(instance_id_);
  }

 private:
  const std::string instance_id_;
};

// gRPC's and protobuf's own messages (gRPC logs errors only unless
// GRPC_VERBOSITY says otherwise) go through the same logger, so that every
// line carries the instance id and the JSON format stays parseable.
void GrpcLogToSpdlog(gpr_log_func_args* args) {
  const spdlog::level::level_enum level =
      args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::err
      : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                : spdlog::level::debug;
  spdlog::log(level, "grpc: {} ({}:{})", args->message, args->file, args->line);
}

void ProtobufLogToSpdlog(google::protobuf::LogLevel level, const char* file,
                         int line, const std::string& message) {
  const spdlog::level::level_enum spd_level =
      level >= google::protobuf::LOGLEVEL_ERROR     ? spdlog::level::err
      : level == google::protobuf::LOGLEVEL_WARNING ? spdlog::level::warn
                                                    : spdlog::level::info;
  spdlog::log(spd_level, "protobuf: {} ({}:{})", message, file, line);
}

}  // namespace

absl::StatusOr<std::shared_ptr<spdlog::logger>> MakeLogger(
    LogFormat format, std::string_view level, std::string_view instance_id,
    spdlog::sink_ptr sink) {
  auto parsed_level = LevelFromName(level);
  if (!parsed_level.ok()) return parsed_level.status();
  if (format == LogFormat::kJson) {
    sink->set_formatter(std::make_unique<JsonFormatter>(std::string(instance_id)));
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(
        spdlog::pattern_time_type::utc);
    formatter->add_flag<UpperLevelFlag>('*');
    formatter->add_flag<InstanceFlag>('&', std::string(instance_id));
    formatter->set_pattern("[%Y-%m-%dT%H:%M:%S.%eZ] [%^%*%$] [%&] %v");
    sink->set_formatter(std::move(formatter));
  }
  auto logger = std::make_shared<spdlog::logger>("stateside", std::move(sink));
  logger->set_level(*parsed_level);
  // Warnings and errors reach the log at once even if the process dies next.
  logger->flush_on(spdlog::level::warn);
  return logger;
}

absl::Status InitLogging(LogFormat format, std::string_view level,
                         std::string_view instance_id) {
  spdlog::sink_ptr sink;
  if (format == LogFormat::kJson) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  }
  auto logger = MakeLogger(format, level, instance_id, std::move(sink));
  if (!logger.ok()) return logger.status();
  spdlog::set_default_logger(*logger);
  gpr_set_log_function(&GrpcLogToSpdlog);
  google::protobuf::SetLogHandler(&ProtobufLogToSpdlog);
  return absl::OkStatus();
}

}  // namespace stateside

// Text and JSON log formats with the instance id on every line (the same
// shapes as the sidecar's, so one log pipeline reads both).
#include "app/logging.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace radar {
namespace {

std::string_view LevelName(spdlog::level::level_enum level, bool upper) {
  switch (level) {
    case spdlog::level::trace: return upper ? "TRACE" : "trace";
    case spdlog::level::debug: return upper ? "DEBUG" : "debug";
    case spdlog::level::info: return upper ? "INFO" : "info";
    case spdlog::level::warn: return upper ? "WARN" : "warn";
    case spdlog::level::err: return upper ? "ERROR" : "error";
    case spdlog::level::critical: return upper ? "CRITICAL" : "critical";
    default: return upper ? "OFF" : "off";
  }
}

// %* : the level in capitals; %& : the instance id (a flag, not literal
// pattern text, so no character of the id is read as a pattern flag).
class UpperLevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view name = LevelName(msg.level, true);
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<UpperLevelFlag>();
  }
};

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

class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string instance) : instance_(std::move(instance)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const nlohmann::ordered_json line = {
        {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromChrono(msg.time),
                                  absl::UTCTimeZone())},
        {"level", LevelName(msg.level, false)},
        {"instance", instance_},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    // Invalid UTF-8 in a message is replaced, never emitted raw.
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(instance_);
  }

 private:
  const std::string instance_;
};

}  // namespace

absl::Status InitLogging(std::string_view format, std::string_view level,
                         std::string_view instance) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError("unknown log level");
  }
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (format == "json") {
    sink->set_formatter(std::make_unique<JsonFormatter>(std::string(instance)));
  } else {
    auto formatter =
        std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<UpperLevelFlag>('*');
    formatter->add_flag<InstanceFlag>('&', std::string(instance));
    formatter->set_pattern("[%Y-%m-%dT%H:%M:%S.%eZ] [%*] [%&] %v");
    sink->set_formatter(std::move(formatter));
  }
  auto logger = std::make_shared<spdlog::logger>("radar-app", std::move(sink));
  logger->set_level(parsed);
  // Every line reaches the log at once: tests and operators wait on lines
  // like "listening on", and a crash must not swallow the last ones.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

}  // namespace radar

// The validation rules of the configuration: each raw setting parsed into
// its typed Config field, then the rules across settings (idle <= absolute,
// Redis needs a key and a secret, ...). Internal to sidecar/server: the
// public entry point is ParseCommandLine (config.h). Pure functions, plus
// reads of the *_FILE settings.
#ifndef STATESIDE_SIDECAR_SERVER_CONFIG_RULES_H_
#define STATESIDE_SIDECAR_SERVER_CONFIG_RULES_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sidecar/server/config.h"

namespace stateside::config_rules {

// The effective raw value of each setting, by environment name, after
// flags, environment and defaults were merged ("" = unset). Wipes its
// values on destruction: some are secrets.
class RawSettings {
 public:
  RawSettings() = default;
  ~RawSettings();
  RawSettings(const RawSettings&) = delete;
  RawSettings& operator=(const RawSettings&) = delete;

  void Set(absl::string_view env, std::string value);
  // "" for a setting never Set.
  const std::string& Get(absl::string_view env) const;
  bool IsSet(absl::string_view env) const { return !Get(env).empty(); }

 private:
  std::map<std::string, std::string> values_;
};

// Fills `config` from `raw`. The first problem is INVALID_ARGUMENT with one
// line "SETTING: problem" that never holds a key or a secret. On error,
// `config` may hold a partial result (the caller wipes it).
absl::Status Validate(const RawSettings& raw, Config& config);

}  // namespace stateside::config_rules

#endif  // STATESIDE_SIDECAR_SERVER_CONFIG_RULES_H_

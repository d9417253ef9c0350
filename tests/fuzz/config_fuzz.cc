// The sidecar's configuration from a hostile environment: each input line
// "NAME=value" is one variable (Redis URLs, durations, key lists, sizes,
// topologies...). Parsing never crashes; it succeeds or names the setting it
// refuses, on one line, never echoing a secret.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "sidecar/server/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  stateside::Environment env;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;
    env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  // Never touch the real file system through _FILE settings.
  for (auto it = env.begin(); it != env.end();) {
    it = absl::EndsWith(it->first, "_FILE") ? env.erase(it) : std::next(it);
  }
  auto line = stateside::ParseCommandLine({"stateside"}, env);
  if (!line.ok()) {
    const std::string message(line.status().message());
    FUZZ_CHECK(message.find('\n') == std::string::npos);
    // The error starts with the name of a setting the input gave or a known one.
    FUZZ_CHECK(message.find(": ") != std::string::npos);
  } else {
    stateside::WipeSecrets(line->config);
  }
  return 0;
}

// Parsers for the value syntaxes of the configuration (durations with days,
// booleans, counts, host:port, secret files). Each returns INVALID_ARGUMENT
// with a message that does not name the setting (the caller prefixes it) and
// never echoes its input when the input may be secret. Pure functions.
#ifndef STATESIDE_SIDECAR_SERVER_CONFIG_VALUES_H_
#define STATESIDE_SIDECAR_SERVER_CONFIG_VALUES_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::config_values {

// A non-negative duration: "0", or one or more <number><unit> groups with
// units ns, us, ms, s, m, h and d (24h), e.g. "30s", "1.5h", "7d", "1d12h".
// absl::ParseDuration does not know days, hence this parser.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);

// true/false, 1/0, yes/no, on/off (any case).
absl::StatusOr<bool> ParseBool(absl::string_view text);

// A decimal integer in [min, max].
absl::StatusOr<int64_t> ParseInt(absl::string_view text, int64_t min,
                                 int64_t max);

struct HostPort {
  std::string host;  // without brackets for IPv6
  int port = 0;      // 0..65535; 0 lets the OS choose
};
// "host:port" or "[v6addr]:port".
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);

// The URL with any password replaced by "***", for logs.
std::string MaskRedisUrl(absl::string_view url);

// Contents of a secret file with surrounding whitespace (a trailing newline)
// removed. Errors name the path, never the contents. Reads at most 64 KiB:
// a secret is never that big and /dev/zero must not hang the start.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// Whether a regular file can be opened for reading (errors name the path).
absl::Status CheckReadableFile(const std::string& path);

// "a, b,c" -> {"a", "b", "c"} with whitespace trimmed; an empty item is an
// error (a stray comma usually means a secret went missing).
absl::StatusOr<std::vector<std::string>> SplitList(absl::string_view text);

}  // namespace stateside::config_values

#endif  // STATESIDE_SIDECAR_SERVER_CONFIG_VALUES_H_

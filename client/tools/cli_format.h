// statesidectl's text handling: parsing "name=value" arguments, and printing
// sessions and instances for people (escaped text) or scripts (JSON).
// Pure functions: thread-safe.
//
// JSON representation of attribute values: values are bytes, JSON strings are
// Unicode. A value that is valid UTF-8 appears under "attributes" as a plain
// string; any other value appears under "binary_attributes", standard base64
// (RFC 4648, padded). Both objects are always present, so a script can rely
// on the shape; a name is in exactly one of them.
#ifndef STATESIDE_CLIENT_TOOLS_CLI_FORMAT_H_
#define STATESIDE_CLIENT_TOOLS_CLI_FORMAT_H_

#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "stateside/types.h"

namespace stateside::cli {

using Json = nlohmann::ordered_json;

// "name=value" → {name, value}: the value is the raw bytes after the first
// '=' (it may be empty or contain '='). INVALID_ARGUMENT if there is no '='
// or the name is empty.
absl::StatusOr<std::pair<std::string, std::string>> ParseAssignment(
    std::string_view arg);

// For a terminal: printable text as is, '\\' and '"' escaped, control
// characters as \n, \t, \r or \xHH; if `bytes` is not valid UTF-8, every byte
// >= 0x80 as \xHH too (the output is then plain ASCII).
std::string EscapeForDisplay(std::string_view bytes);

// RFC 3339 in UTC with milliseconds: 2024-05-01T10:00:00.123Z.
std::string FormatTimestamp(absl::Time t);

Json SessionInfoToJson(const SessionInfo& info);
Json SessionToJson(const Session& session);
Json InstanceToJson(const InstanceInfo& instance);
// InstanceToJson plus GetInstance's api_revision and capabilities (statesidectl info).
Json InstanceInfoToJson(const InstanceInfo& instance);
// Pretty-printed, newline-terminated; never throws (invalid UTF-8 replaced,
// which cannot happen for values built by the functions above).
std::string DumpJson(const Json& json);

void PrintSessionInfo(std::ostream& out, const SessionInfo& info);
void PrintSession(std::ostream& out, const Session& session);
void PrintSessionTable(std::ostream& out, const std::vector<SessionInfo>& sessions);
void PrintInstance(std::ostream& out, const InstanceInfo& instance);
// One line per instance: id, drain state, ready, backend, version, admin.
void PrintInstanceTable(std::ostream& out, const std::vector<InstanceInfo>& instances);

// {"state": "DRAINING", "deadline": "...Z"} ("deadline" only when finite).
Json DrainNoticeToJson(const DrainNotice& notice);
// "DRAINING deadline=2024-05-01T10:00:00.000Z" / "SERVING" / "DRAINED".
std::string FormatDrainNotice(const DrainNotice& notice);
// Compact, one line, newline-terminated: for streams (one object a line).
std::string DumpJsonLine(const Json& json);

// One sample line of the Prometheus text format:
//   name{label="value",...} value [timestamp]
// → {"name": ..., "labels": {...}, "value": number, or a string for NaN and
// ±Inf, which JSON cannot hold}. INVALID_ARGUMENT for a comment, a blank or
// a malformed line.
absl::StatusOr<Json> ParseMetricSample(std::string_view line);

}  // namespace stateside::cli

#endif  // STATESIDE_CLIENT_TOOLS_CLI_FORMAT_H_

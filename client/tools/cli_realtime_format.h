// statesidectl's realtime text handling: parsing connection arguments and
// printing events and presence for people (one line each) or scripts (one
// JSON object per line). Pure functions: thread-safe.
//
// Payloads are bytes. Text lines print a payload as is when it is printable
// UTF-8 (no control characters, so the line stays one line), else as
// "base64:" followed by standard padded base64 (a text payload that itself
// begins with "base64:" is therefore ambiguous: scripts use --json). JSON
// puts a valid UTF-8 payload under "payload" (a JSON string, escaped as JSON
// needs) and any other under "payload_base64"; exactly one of them is
// present.
#ifndef STATESIDE_CLIENT_TOOLS_CLI_REALTIME_FORMAT_H_
#define STATESIDE_CLIENT_TOOLS_CLI_REALTIME_FORMAT_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "client/tools/cli_format.h"
#include "stateside/realtime.h"

namespace stateside::cli {

// "CONN" (a connection of the sidecar statesidectl talks to: empty
// instance_id) or "INSTANCE/CONN", split at the first '/' (instance ids
// never contain one; connection ids may). INVALID_ARGUMENT for an empty
// text, instance or connection id.
absl::StatusOr<ConnectionRef> ParseConnectionArg(std::string_view text);
// "INSTANCE/CONN" (just "CONN" when the instance is empty).
std::string FormatConnectionRef(const ConnectionRef& ref);

// A resume point: "room:ROOM=N", "user:USER=N", "conn:C=N" (C as
// ParseConnectionArg) or "all=N", N the last sequence seen (digits; the
// sequence is split off at the last '=', names may contain '=' and ':').
// INVALID_ARGUMENT naming what is wrong: an unknown target, an empty name,
// a missing or malformed sequence.
absl::StatusOr<StreamPosition> ParseStreamPosition(std::string_view text);
// The same form (names as they are).
std::string FormatStreamPosition(const StreamPosition& position);

// Printable: valid UTF-8 without control characters (C0, DEL).
bool IsPrintableText(std::string_view bytes);

// "room lobby #12 chat: hello", "user alice chat: hi", "connection c1: x",
// "all ping: base64:AAE=". The sequence appears when it is non-zero, the
// event name when it is non-empty.
std::string FormatDelivery(const Delivery& d);
// "gap subscriber-overflow dropped=3",
// "gap redis-disconnected from=2024-...Z to=2024-...Z".
std::string FormatGap(const Gap& gap);
std::string FormatEvent(const RealtimeEvent& event);

// {"kind":"delivery","target":"room","to":"lobby","event":"chat",
//  "payload":"hello" | "payload_base64":"AAE=","sequence":12,
//  "conn_ids":["c1"],"origin":"inst-1","published_at":"...Z"}
Json DeliveryToJson(const Delivery& d);
// {"kind":"gap","reason":"subscriber-overflow","dropped":3} plus "from"
// and "to" (RFC 3339) when the sidecar gave them.
Json GapToJson(const Gap& gap);
Json EventToJson(const RealtimeEvent& event);
// {"instance":"inst-1","conn":"c1"}
Json ConnectionRefToJson(const ConnectionRef& ref);

}  // namespace stateside::cli

#endif  // STATESIDE_CLIENT_TOOLS_CLI_REALTIME_FORMAT_H_

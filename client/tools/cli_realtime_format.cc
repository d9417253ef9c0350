// statesidectl's realtime parsing and printing (see cli_realtime_format.h).
#include "client/tools/cli_realtime_format.h"

#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "stateside/types.h"

namespace stateside::cli {

absl::StatusOr<ConnectionRef> ParseConnectionArg(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("expected CONN or INSTANCE/CONN: empty");
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return ConnectionRef{"", std::string(text)};
  if (slash == 0) {
    return absl::InvalidArgumentError(
        "expected CONN or INSTANCE/CONN: empty instance id before '/'");
  }
  if (slash + 1 == text.size()) {
    return absl::InvalidArgumentError(
        "expected CONN or INSTANCE/CONN: empty connection id after '/'");
  }
  return ConnectionRef{std::string(text.substr(0, slash)),
                       std::string(text.substr(slash + 1))};
}

absl::StatusOr<StreamPosition> ParseStreamPosition(std::string_view input) {
  // absl's string_view may not be std's here.
  const absl::string_view text(input.data(), input.size());
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(why, " (expected room:ROOM=N, user:USER=N, conn:C=N or all=N)"));
  };
  const size_t eq = text.rfind('=');
  if (eq == absl::string_view::npos) return bad("no '=N' sequence");
  const absl::string_view digits = text.substr(eq + 1);
  StreamPosition position;
  if (digits.empty() || digits.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(digits, &position.sequence)) {
    return bad(absl::StrCat("sequence '", digits, "' is not a number from 0 to 2^64-1"));
  }
  const absl::string_view target = text.substr(0, eq);
  if (target == "all") {
    position.target = PublishTarget::All();
    return position;
  }
  const size_t colon = target.find(':');
  const absl::string_view kind = target.substr(0, colon);
  const absl::string_view name =
      colon == absl::string_view::npos ? absl::string_view() : target.substr(colon + 1);
  if (colon == absl::string_view::npos || (kind != "room" && kind != "user" && kind != "conn")) {
    return bad(absl::StrCat("unknown target '", kind, "'"));
  }
  if (name.empty()) return bad(absl::StrCat("empty ", kind));
  if (kind == "room") {
    position.target = PublishTarget::Room(std::string(name));
  } else if (kind == "user") {
    position.target = PublishTarget::User(std::string(name));
  } else {
    absl::StatusOr<ConnectionRef> ref =
        ParseConnectionArg(std::string_view(name.data(), name.size()));
    if (!ref.ok()) return bad(ref.status().message());
    position.target = PublishTarget::Connection(*std::move(ref));
  }
  return position;
}

std::string FormatStreamPosition(const StreamPosition& position) {
  const PublishTarget& t = position.target;
  switch (t.kind) {
    case Target::kRoom:
      return absl::StrCat("room:", t.name, "=", position.sequence);
    case Target::kUser:
      return absl::StrCat("user:", t.name, "=", position.sequence);
    case Target::kConnection:
      return absl::StrCat("conn:", FormatConnectionRef(t.connection), "=", position.sequence);
    default:
      return absl::StrCat("all=", position.sequence);
  }
}

std::string FormatConnectionRef(const ConnectionRef& ref) {
  if (ref.instance_id.empty()) return EscapeForDisplay(ref.conn_id);
  return EscapeForDisplay(ref.instance_id) + "/" + EscapeForDisplay(ref.conn_id);
}

bool IsPrintableText(std::string_view bytes) {
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) return false;
  }
  return IsValidUtf8(bytes);
}

std::string FormatDelivery(const Delivery& d) {
  std::string line(TargetName(d.target));
  if (!d.to.empty()) absl::StrAppend(&line, " ", EscapeForDisplay(d.to));
  if (d.sequence != 0) absl::StrAppend(&line, " #", d.sequence);
  if (!d.event.empty()) absl::StrAppend(&line, " ", EscapeForDisplay(d.event));
  line += ":";
  if (d.payload.empty()) return line;
  if (IsPrintableText(d.payload)) {
    absl::StrAppend(&line, " ", d.payload);
  } else {
    absl::StrAppend(&line, " base64:", absl::Base64Escape(d.payload));
  }
  return line;
}

std::string FormatGap(const Gap& gap) {
  std::string line = absl::StrCat("gap ", std::string(GapReasonName(gap.reason)));
  if (gap.reason != Gap::Reason::kRedisDisconnected || gap.dropped != 0) {
    absl::StrAppend(&line, " dropped=", gap.dropped);
  }
  if (gap.from) absl::StrAppend(&line, " from=", FormatTimestamp(*gap.from));
  if (gap.to) absl::StrAppend(&line, " to=", FormatTimestamp(*gap.to));
  if (gap.resume) {
    absl::StrAppend(&line, " resume=", FormatStreamPosition(*gap.resume),
                    " first_sequence=", gap.first_sequence);
  }
  return line;
}

std::string FormatEvent(const RealtimeEvent& event) {
  if (const auto* d = std::get_if<Delivery>(&event)) return FormatDelivery(*d);
  if (const auto* gap = std::get_if<Gap>(&event)) return FormatGap(*gap);
  return absl::StrCat("disconnect ",
                      absl::StrJoin(std::get<Disconnect>(event).conn_ids, ","));
}

Json DeliveryToJson(const Delivery& d) {
  Json json{{"kind", "delivery"},
            {"target", std::string(TargetName(d.target))},
            {"to", d.to},
            {"event", d.event}};
  if (IsValidUtf8(d.payload)) {
    json["payload"] = d.payload;
  } else {
    json["payload_base64"] = absl::Base64Escape(d.payload);
  }
  json["sequence"] = d.sequence;
  json["conn_ids"] = d.conn_ids;
  json["origin"] = d.origin_instance;
  json["published_at"] = FormatTimestamp(d.published_at);
  return json;
}

Json GapToJson(const Gap& gap) {
  Json json{{"kind", "gap"},
            {"reason", std::string(GapReasonName(gap.reason))},
            {"dropped", gap.dropped}};
  if (gap.from) json["from"] = FormatTimestamp(*gap.from);
  if (gap.to) json["to"] = FormatTimestamp(*gap.to);
  if (gap.resume) {
    json["resume"] = FormatStreamPosition(*gap.resume);
    json["first_sequence"] = gap.first_sequence;
  }
  return json;
}

Json EventToJson(const RealtimeEvent& event) {
  if (const auto* d = std::get_if<Delivery>(&event)) return DeliveryToJson(*d);
  if (const auto* gap = std::get_if<Gap>(&event)) return GapToJson(*gap);
  return Json{{"kind", "disconnect"}, {"conn_ids", std::get<Disconnect>(event).conn_ids}};
}

Json ConnectionRefToJson(const ConnectionRef& ref) {
  return Json{{"instance", ref.instance_id}, {"conn", ref.conn_id}};
}

}  // namespace stateside::cli

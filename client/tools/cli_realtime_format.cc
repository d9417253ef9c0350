// statesidectl's realtime parsing and printing (see cli_realtime_format.h).
#include "client/tools/cli_realtime_format.h"

#include <variant>

#include "absl/strings/escaping.h"
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

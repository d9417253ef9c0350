#include "sidecar/realtime/event.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace stateside::realtime {
namespace {

// Frame: version byte, target byte, published_at (int64 µs, big endian),
// then length-prefixed (uint32 big endian) strings: to, to_instance, name,
// payload, origin, then the except count (uint32) and an instance/conn pair
// per entry. Version 2 (control events only, so version 1 frames stay
// what older instances read) adds the control byte and the rooms (count,
// then length-prefixed strings).
constexpr uint8_t kVersion = 1;
constexpr uint8_t kControlVersion = 2;

void PutU32(uint32_t v, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
void PutU64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
void PutString(std::string_view s, std::string* out) {
  PutU32(static_cast<uint32_t>(s.size()), out);
  out->append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  bool U8(uint8_t* v) {
    if (rest_.empty()) return false;
    *v = static_cast<uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return true;
  }
  bool U32(uint32_t* v) {
    uint64_t wide;
    if (!Unsigned(4, &wide)) return false;
    *v = static_cast<uint32_t>(wide);
    return true;
  }
  bool U64(uint64_t* v) { return Unsigned(8, v); }
  bool String(std::string* s) {
    uint32_t size;
    if (!U32(&size) || size > rest_.size()) return false;
    s->assign(rest_.data(), size);
    rest_.remove_prefix(size);
    return true;
  }
  bool done() const { return rest_.empty(); }
  size_t remaining() const { return rest_.size(); }

 private:
  bool Unsigned(size_t n, uint64_t* v) {
    if (rest_.size() < n) return false;
    *v = 0;
    for (size_t i = 0; i < n; ++i) *v = (*v << 8) | static_cast<uint8_t>(rest_[i]);
    rest_.remove_prefix(n);
    return true;
  }
  std::string_view rest_;
};

}  // namespace

std::string_view TargetKindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kRoom:
      return "room";
    case TargetKind::kUser:
      return "user";
    case TargetKind::kConnection:
      return "connection";
    case TargetKind::kAll:
      return "all";
  }
  return "unknown";
}

StreamRef StreamOf(const Event& event) {
  switch (event.target) {
    case TargetKind::kAll:
      return StreamRef{TargetKind::kAll, "", ""};
    case TargetKind::kConnection:
      return StreamRef{TargetKind::kConnection, event.to, event.to_instance};
    default:
      return StreamRef{event.target, event.to, ""};
  }
}

std::string StreamKey(const StreamRef& stream) {
  switch (stream.target) {
    case TargetKind::kRoom:
      return absl::StrCat("r:", stream.to);
    case TargetKind::kUser:
      return absl::StrCat("u:", stream.to);
    case TargetKind::kConnection:
      return absl::StrCat("c:", stream.to_instance, "/", stream.to);
    case TargetKind::kAll:
      break;
  }
  return "a";
}

absl::Status ValidateName(std::string_view field, std::string_view value, size_t min_bytes,
                          size_t max_bytes) {
  if (value.size() < min_bytes || value.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ": must be ", min_bytes, "..", max_bytes, " bytes, got ", value.size()));
  }
  for (char c : value) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(field), ": only printable ASCII without spaces (0x21..0x7e)"));
    }
  }
  return absl::OkStatus();
}

std::string EncodeEvent(const Event& event) {
  std::string out;
  out.reserve(64 + event.to.size() + event.to_instance.size() + event.name.size() +
              event.payload.size() + event.origin.size());
  const bool control = event.control != Control::kNone;
  out.push_back(static_cast<char>(control ? kControlVersion : kVersion));
  out.push_back(static_cast<char>(event.target));
  PutU64(static_cast<uint64_t>(absl::ToUnixMicros(event.published_at)), &out);
  PutString(event.to, &out);
  PutString(event.to_instance, &out);
  PutString(event.name, &out);
  PutString(event.payload, &out);
  PutString(event.origin, &out);
  PutU32(static_cast<uint32_t>(event.except.size()), &out);
  for (const ConnRef& ref : event.except) {
    PutString(ref.instance, &out);
    PutString(ref.conn, &out);
  }
  if (control) {
    out.push_back(static_cast<char>(event.control));
    PutU32(static_cast<uint32_t>(event.rooms.size()), &out);
    for (const std::string& room : event.rooms) PutString(room, &out);
  }
  return out;
}

absl::StatusOr<Event> DecodeEvent(std::string_view bytes) {
  const auto malformed = [] { return absl::InvalidArgumentError("realtime frame is malformed"); };
  Reader in(bytes);
  uint8_t version, target;
  uint64_t micros;
  Event event;
  if (!in.U8(&version) || (version != kVersion && version != kControlVersion) ||
      !in.U8(&target) ||
      target < static_cast<uint8_t>(TargetKind::kRoom) ||
      target > static_cast<uint8_t>(TargetKind::kAll) || !in.U64(&micros) ||
      !in.String(&event.to) || !in.String(&event.to_instance) || !in.String(&event.name) ||
      !in.String(&event.payload) || !in.String(&event.origin)) {
    return malformed();
  }
  uint32_t excepts;
  // Each entry takes at least 8 bytes: a count beyond that is a lie.
  if (!in.U32(&excepts) || excepts > in.remaining() / 8) return malformed();
  event.except.resize(excepts);
  for (ConnRef& ref : event.except) {
    if (!in.String(&ref.instance) || !in.String(&ref.conn)) return malformed();
  }
  if (version == kControlVersion) {
    uint8_t control;
    uint32_t rooms;
    if (!in.U8(&control) || control < static_cast<uint8_t>(Control::kJoin) ||
        control > static_cast<uint8_t>(Control::kDisconnect) || !in.U32(&rooms) ||
        rooms > in.remaining() / 4) {
      return malformed();
    }
    event.control = static_cast<Control>(control);
    event.rooms.resize(rooms);
    for (std::string& room : event.rooms) {
      if (!in.String(&room)) return malformed();
    }
  }
  if (!in.done()) return malformed();
  event.target = static_cast<TargetKind>(target);
  event.published_at = absl::FromUnixMicros(static_cast<int64_t>(micros));
  return event;
}

}  // namespace stateside::realtime

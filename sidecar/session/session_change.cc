// The byte form of a SessionChange.
#include "sidecar/session/session_change.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/string_view.h"

namespace stateside::session {
namespace {

// "1" then the fields: kind, time (Unix µs), session id, user id, previous
// id, origin, the attribute count, each attribute name.
constexpr std::string_view kVersion = "1";
// No field of a change comes near this (ids are 43 bytes, user ids and
// attribute names are bounded by the session rules).
constexpr size_t kMaxField = 1 << 20;

void Put(std::string_view field, std::string* out) {
  absl::StrAppend(out, field.size(), ":", Sv(field));
}

// Takes the next "<length>:<bytes>" field off `rest`.
bool Take(std::string_view* rest, std::string* field) {
  const size_t colon = rest->find(':');
  size_t size = 0;
  if (colon == std::string_view::npos || colon == 0 || colon > 7 ||
      !absl::SimpleAtoi(Sv(rest->substr(0, colon)), &size) || size > kMaxField ||
      rest->size() - colon - 1 < size) {
    return false;
  }
  field->assign(rest->substr(colon + 1, size));
  rest->remove_prefix(colon + 1 + size);
  return true;
}

bool TakeNumber(std::string_view* rest, int64_t* value) {
  std::string field;
  return Take(rest, &field) && absl::SimpleAtoi(field, value);
}

}  // namespace

std::string EncodeChange(const SessionChange& change) {
  std::string out;
  Put(kVersion, &out);
  Put(std::to_string(static_cast<int>(change.kind)), &out);
  Put(std::to_string(absl::ToUnixMicros(change.time)), &out);
  Put(change.session_id, &out);
  Put(change.user_id, &out);
  Put(change.previous_id, &out);
  Put(change.origin, &out);
  Put(std::to_string(change.attributes.size()), &out);
  for (const std::string& name : change.attributes) Put(name, &out);
  return out;
}

absl::StatusOr<SessionChange> DecodeChange(std::string_view bytes) {
  const absl::Status bad = absl::InvalidArgumentError("session change: malformed frame");
  std::string version;
  int64_t kind = 0, micros = 0, count = 0;
  SessionChange change;
  if (!Take(&bytes, &version) || version != kVersion || !TakeNumber(&bytes, &kind) ||
      kind < 1 || kind > kMaxChangeKind || !TakeNumber(&bytes, &micros) ||
      !Take(&bytes, &change.session_id) || !Take(&bytes, &change.user_id) ||
      !Take(&bytes, &change.previous_id) || !Take(&bytes, &change.origin) ||
      !TakeNumber(&bytes, &count) || count < 0 || static_cast<size_t>(count) > bytes.size()) {
    return bad;
  }
  change.kind = static_cast<ChangeKind>(kind);
  change.time = absl::FromUnixMicros(micros);
  change.attributes.resize(static_cast<size_t>(count));
  for (std::string& name : change.attributes) {
    if (!Take(&bytes, &name)) return bad;
  }
  if (!bytes.empty()) return bad;
  return change;
}

}  // namespace stateside::session

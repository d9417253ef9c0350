// The machine-readable cause of an error, carried by the absl::Status
// itself (as payloads) from where the error is made to the RPC layer, which
// turns it into the ErrorInfo detail of stateside/v1/error.proto. Errors
// without one get a reason from their code there. Pure functions over
// values: thread-safe.
#ifndef STATESIDE_SIDECAR_COMMON_ERROR_REASON_H_
#define STATESIDE_SIDECAR_COMMON_ERROR_REASON_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace stateside {

// Payload keys (type URLs in form, as absl asks; never on the wire).
inline constexpr absl::string_view kReasonPayload = "stateside.v1/reason";
inline constexpr absl::string_view kFieldPayload = "stateside.v1/field";
inline constexpr absl::string_view kLimitPayload = "stateside.v1/limit";

// `status` with a stable reason (UPPER_SNAKE_CASE, error.proto's list) and,
// if not empty, the request field at fault and the limit's name.
inline absl::Status WithReason(absl::Status status, absl::string_view reason,
                               absl::string_view field = {}, absl::string_view limit = {}) {
  status.SetPayload(kReasonPayload, absl::Cord(reason));
  if (!field.empty()) status.SetPayload(kFieldPayload, absl::Cord(field));
  if (!limit.empty()) status.SetPayload(kLimitPayload, absl::Cord(limit));
  return status;
}

// The payload `key` of `status`, if set.
inline std::optional<std::string> PayloadOf(const absl::Status& status, absl::string_view key) {
  auto value = status.GetPayload(key);  // absl::optional in this Abseil
  if (!value.has_value()) return std::nullopt;
  return std::string(*value);
}

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_ERROR_REASON_H_

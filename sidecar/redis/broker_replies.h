// Reading script replies (and small helpers), shared by RedisBroker's write and query halves
// (redis_broker*.cc). Pure functions.
#ifndef STATESIDE_SIDECAR_REDIS_BROKER_REPLIES_H_
#define STATESIDE_SIDECAR_REDIS_BROKER_REPLIES_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/redis/reply.h"

namespace stateside::redis::broker_internal {

// Debian's Abseil has its own string_view type.
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

inline absl::Status Unexpected(std::string_view what, const Reply& reply) {
  return absl::InternalError(absl::StrCat("redis broker: unexpected reply to ", AV(what),
                                          " (type ", static_cast<int>(reply.type), ")"));
}

// A non-negative integer reply, or a bulk string holding one.
inline bool ToUint(const Reply& r, uint64_t* out) {
  if (r.is_integer()) {
    if (r.integer < 0) return false;
    *out = static_cast<uint64_t>(r.integer);
    return true;
  }
  return r.is_string() && absl::SimpleAtoi(r.str, out);
}

inline std::string Millis(absl::Duration d) {
  return std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

inline absl::Status FirstError(const std::vector<absl::StatusOr<Reply>>& results) {
  for (const auto& r : results) {
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

}  // namespace stateside::redis::broker_internal

#endif  // STATESIDE_SIDECAR_REDIS_BROKER_REPLIES_H_

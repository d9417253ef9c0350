// The opt-out store seam: analytics opt-out flags keyed by a blinded subject
// tag, each with its own expiry. Implementations are safe for concurrent use.
// Errors: UNAVAILABLE (backend unreachable), RESOURCE_EXHAUSTED (memory full).
#ifndef STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_STORE_H_
#define STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_STORE_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside {

class OptOutStore {
 public:
  virtual ~OptOutStore() = default;
  // opted_out = true stores the flag until `expiry`; false removes it.
  virtual absl::Status Set(std::string_view tag, bool opted_out, absl::Time now,
                           absl::Time expiry) = 0;
  // Whether a flag for the tag is set and unexpired at `now`.
  virtual absl::StatusOr<bool> Get(std::string_view tag, absl::Time now) = 0;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_STORE_H_

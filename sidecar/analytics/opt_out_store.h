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

  // Set(tag, true, now, expiry) that also stores `sealed_subject` (the
  // subject sealed for this tag) beside the flag, so that a store which
  // outlives a key rotation can re-file the flag under a new key's tag
  // without a read (the rewrap sweep). A store that dies with its process
  // (memory) has nothing to re-file later and ignores it.
  virtual absl::Status SetWithSubject(std::string_view tag, absl::Time now,
                                      absl::Time expiry,
                                      std::string_view sealed_subject) {
    return Set(tag, true, now, expiry);
  }

  // Key rotation: moves the flag stored under `from` (a tag of an older key)
  // to `to` (the primary key's tag) with the same expiry, in one atomic step
  // with respect to every other call: `from` is removed; `to` gets the flag
  // unless it already holds one (then a newer Set decided, and it is kept).
  // `sealed_subject` (may be empty) replaces the stored one (it is bound to
  // the tag). Returns whether `from` held a flag. Clearing a subject must
  // remove the older tags before the primary's: then a Refile racing with
  // the clear either ran before it (and the primary's removal takes the
  // copy) or finds nothing, so a clear is never undone.
  virtual absl::StatusOr<bool> Refile(std::string_view from, std::string_view to,
                                      std::string_view sealed_subject,
                                      absl::Time now) = 0;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_STORE_H_

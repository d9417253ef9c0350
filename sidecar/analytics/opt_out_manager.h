// Analytics opt-outs: whether a subject (a user id, a session id, any stable
// id) opted out of analytics, shared by every instance through an OptOutStore.
// The subject never reaches the store: it is stored under a keyed blind-index
// tag, Keyring::Blind(key, "optout", subject). Keys rotate: a flag set under an
// older primary key is still found, and clearing clears under every key.
//
// Safe for concurrent use: no mutable state of its own.
#ifndef STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_MANAGER_H_
#define STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_MANAGER_H_

#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/analytics/opt_out_store.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/keyring.h"

namespace stateside {

class OptOutManager {
 public:
  // Longest TTL a caller may ask for.
  static constexpr absl::Duration kMaxTtl = absl::Hours(24 * 3653);  // 10 y
  static constexpr size_t kMaxSubjectBytes = 256;

  // REQUIRES: every pointer outlives the manager; 0 < default_ttl <= kMaxTtl.
  OptOutManager(OptOutStore* store, const crypto::Keyring* keyring,
                const Clock* clock, absl::Duration default_ttl);

  // opted_out = true sets the flag for `ttl` (default: default_ttl); false
  // clears it. INVALID_ARGUMENT for a subject that is not 1..256 bytes of
  // printable ASCII, or a ttl that is not positive or exceeds kMaxTtl.
  absl::Status Set(std::string_view subject, bool opted_out,
                   std::optional<absl::Duration> ttl);
  // Whether the subject has an unexpired flag (INVALID_ARGUMENT as Set).
  absl::StatusOr<bool> Get(std::string_view subject);

 private:
  OptOutStore* const store_;
  const crypto::Keyring* const keyring_;
  const Clock* const clock_;
  const absl::Duration default_ttl_;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_MANAGER_H_

// Analytics opt-outs: whether a subject (a user id, a session id, any stable
// id) opted out of analytics, shared by every instance through an OptOutStore.
// The subject never reaches the store: it is stored under a keyed blind-index
// tag, Keyring::Blind(key, "optout", subject). Keys rotate: a flag set under an
// older primary key is still found, and re-filed under the primary's tag with
// its remaining lifetime (so the flag outlives the old key); clearing clears
// under every key. With a Sealer, a flag is stored with its subject sealed
// for the tag (envelope name kSealedSubjectName), which lets the rewrap sweep
// re-file flags nobody reads.
//
// Safe for concurrent use: no mutable state of its own.
#ifndef STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_MANAGER_H_
#define STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_MANAGER_H_

#include <functional>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/analytics/opt_out_store.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"

namespace stateside {

class OptOutManager {
 public:
  // Longest TTL a caller may ask for.
  static constexpr absl::Duration kMaxTtl = absl::Hours(24 * 3653);  // 10 y
  static constexpr size_t kMaxSubjectBytes = 256;
  // Envelope name of a sealed subject; the place is the tag it is stored at.
  static constexpr std::string_view kSealedSubjectName{"\0optout", 7};
  static constexpr std::string_view kPurpose = "optout";

  // Told the key id under whose tag each flag a Get found was stored
  // (stateside_optout_key_reads_total). Must not block.
  using KeyReadSink = std::function<void(std::string_view key_id)>;

  // REQUIRES: every pointer outlives the manager; 0 < default_ttl <= kMaxTtl.
  // `sealer` (may be null: no sealed subjects) seals with `keyring`.
  OptOutManager(OptOutStore* store, const crypto::Keyring* keyring,
                const Clock* clock, absl::Duration default_ttl,
                const crypto::Sealer* sealer = nullptr,
                KeyReadSink on_key_read = {});

  // opted_out = true sets the flag for `ttl` (default: default_ttl); false
  // clears it. INVALID_ARGUMENT for a subject that is not 1..256 bytes of
  // printable ASCII, or a ttl that is not positive or exceeds kMaxTtl.
  absl::Status Set(std::string_view subject, bool opted_out,
                   std::optional<absl::Duration> ttl);
  // Whether the subject has an unexpired flag (INVALID_ARGUMENT as Set). A
  // flag found under an older key's tag is re-filed under the primary's
  // (OptOutStore::Refile); a failed re-file is retried by the next Get and
  // does not fail this one.
  absl::StatusOr<bool> Get(std::string_view subject);

 private:
  // The subject sealed for `tag` ("" without a sealer).
  absl::StatusOr<std::string> SealSubject(std::string_view tag,
                                          std::string_view subject) const;

  OptOutStore* const store_;
  const crypto::Keyring* const keyring_;
  const Clock* const clock_;
  const absl::Duration default_ttl_;
  const crypto::Sealer* const sealer_;
  const KeyReadSink on_key_read_;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_ANALYTICS_OPT_OUT_MANAGER_H_

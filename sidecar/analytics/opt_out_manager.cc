// OptOutManager: validation, blinding and key rotation over an OptOutStore.
#include "sidecar/analytics/opt_out_manager.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "sidecar/common/status_macros.h"

namespace stateside {
namespace {

constexpr std::string_view kPurpose = "optout";

absl::Status ValidateSubject(std::string_view subject) {
  bool printable = true;
  for (char c : subject) printable = printable && c >= 0x20 && c <= 0x7e;
  if (subject.empty() || subject.size() > OptOutManager::kMaxSubjectBytes ||
      !printable) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject must be 1..", OptOutManager::kMaxSubjectBytes,
                     " bytes of printable ASCII"));
  }
  return absl::OkStatus();
}

}  // namespace

OptOutManager::OptOutManager(OptOutStore* store, const crypto::Keyring* keyring,
                             const Clock* clock, absl::Duration default_ttl)
    : store_(store),
      keyring_(keyring),
      clock_(clock),
      default_ttl_(default_ttl) {}

absl::Status OptOutManager::Set(std::string_view subject, bool opted_out,
                                std::optional<absl::Duration> ttl) {
  RETURN_IF_ERROR(ValidateSubject(subject));
  const absl::Time now = clock_->Now();
  if (!opted_out) {
    // Clear under every key's tag, or a flag set before a rotation would
    // still be found by Get.
    for (const crypto::Keyring::Key& key : keyring_->keys()) {
      RETURN_IF_ERROR(store_->Set(
          crypto::Keyring::Blind(key, kPurpose, subject), false, now, now));
    }
    return absl::OkStatus();
  }
  const absl::Duration lasting = ttl.value_or(default_ttl_);
  if (lasting <= absl::ZeroDuration() || lasting > kMaxTtl) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl must be positive and at most ",
                     absl::FormatDuration(kMaxTtl), " (10 years)"));
  }
  RETURN_IF_ERROR(store_->Set(
      crypto::Keyring::Blind(keyring_->primary(), kPurpose, subject), true, now,
      now + lasting));
  // Then drop copies under older keys, so the newest Set alone decides how
  // long the flag lasts (after the primary is written: no window without it).
  for (size_t i = 1; i < keyring_->keys().size(); ++i) {
    RETURN_IF_ERROR(store_->Set(
        crypto::Keyring::Blind(keyring_->keys()[i], kPurpose, subject), false,
        now, now));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> OptOutManager::Get(std::string_view subject) {
  RETURN_IF_ERROR(ValidateSubject(subject));
  const absl::Time now = clock_->Now();
  // The primary first: after a rotation that is where new flags are.
  for (const crypto::Keyring::Key& key : keyring_->keys()) {
    ASSIGN_OR_RETURN(
        bool set,
        store_->Get(crypto::Keyring::Blind(key, kPurpose, subject), now));
    if (set) return true;
  }
  return false;
}

}  // namespace stateside

// OptOutManager: validation, blinding and key rotation over an OptOutStore.
#include "sidecar/analytics/opt_out_manager.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "sidecar/common/status_macros.h"

namespace stateside {
namespace {

constexpr std::string_view kPurpose = OptOutManager::kPurpose;

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
                             const Clock* clock, absl::Duration default_ttl,
                             const crypto::Sealer* sealer, KeyReadSink on_key_read)
    : store_(store),
      keyring_(keyring),
      clock_(clock),
      default_ttl_(default_ttl),
      sealer_(sealer),
      on_key_read_(std::move(on_key_read)) {}

absl::StatusOr<std::string> OptOutManager::SealSubject(
    std::string_view tag, std::string_view subject) const {
  if (sealer_ == nullptr) return std::string();
  return sealer_->Seal(tag, kSealedSubjectName, subject);
}

absl::Status OptOutManager::Set(std::string_view subject, bool opted_out,
                                std::optional<absl::Duration> ttl) {
  RETURN_IF_ERROR(ValidateSubject(subject));
  const absl::Time now = clock_->Now();
  if (!opted_out) {
    // Clear under every key's tag, or a flag set before a rotation would
    // still be found by Get. The older keys' tags first and the primary's
    // last: a Get re-filing a flag meanwhile then either ran before the
    // primary's removal (which takes its copy) or found nothing to move.
    const auto& keys = keyring_->keys();
    for (size_t i = keys.size(); i-- > 0;) {
      RETURN_IF_ERROR(store_->Set(
          crypto::Keyring::Blind(keys[i], kPurpose, subject), false, now, now));
    }
    return absl::OkStatus();
  }
  const absl::Duration lasting = ttl.value_or(default_ttl_);
  if (lasting <= absl::ZeroDuration() || lasting > kMaxTtl) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl must be positive and at most ",
                     absl::FormatDuration(kMaxTtl), " (10 years)"));
  }
  const std::string tag =
      crypto::Keyring::Blind(keyring_->primary(), kPurpose, subject);
  ASSIGN_OR_RETURN(std::string sealed, SealSubject(tag, subject));
  RETURN_IF_ERROR(store_->SetWithSubject(tag, now, now + lasting, sealed));
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
  const auto& keys = keyring_->keys();
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string tag = crypto::Keyring::Blind(keys[i], kPurpose, subject);
    ASSIGN_OR_RETURN(bool set, store_->Get(tag, now));
    if (!set) continue;
    if (on_key_read_) on_key_read_(keys[i].id);
    if (i != 0) {
      // Under an older key: re-file it under the primary's tag, or it is
      // lost when that key leaves the keyring (flags live a year).
      const std::string primary_tag =
          crypto::Keyring::Blind(keyring_->primary(), kPurpose, subject);
      absl::StatusOr<std::string> sealed = SealSubject(primary_tag, subject);
      if (sealed.ok()) {
        (void)store_->Refile(tag, primary_tag, *sealed, now);
      }
    }
    return true;
  }
  return false;
}

}  // namespace stateside

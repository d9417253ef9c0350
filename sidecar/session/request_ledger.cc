#include "sidecar/session/request_ledger.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/error_reason.h"

namespace stateside::session {
namespace {

constexpr std::string_view kPurpose = "request";
constexpr std::string_view kBodyPurpose = "request-body";
constexpr size_t kClaimBytes = 16;  // random bytes of a claim token
constexpr char kClaimed = 'P';
constexpr char kAnswered = 'D';

// The fixed-size head of a stored value: its kind, the claim token (hex) and
// the fingerprint (a Blind tag, 32 hex characters); an answer follows.
struct Head {
  char kind = 0;
  std::string_view claim;
  std::string_view fingerprint;
  std::string_view rest;
};
constexpr size_t kClaimHex = 2 * kClaimBytes;
constexpr size_t kFingerprintHex = 32;
constexpr size_t kHeadBytes = 1 + kClaimHex + kFingerprintHex;

bool ParseHead(std::string_view value, Head* head) {
  if (value.size() < kHeadBytes || (value[0] != kClaimed && value[0] != kAnswered)) {
    return false;
  }
  head->kind = value[0];
  head->claim = value.substr(1, kClaimHex);
  head->fingerprint = value.substr(1 + kClaimHex, kFingerprintHex);
  head->rest = value.substr(kHeadBytes);
  return true;
}

std::string Joined(std::string_view a, std::string_view b, std::string_view c = {}) {
  std::string out;
  out.reserve(a.size() + b.size() + c.size() + 2);
  out.append(a).push_back('\0');
  out.append(b).push_back('\0');
  out.append(c);
  return out;
}

}  // namespace

RequestLedger::RequestLedger(RequestStore* store, const crypto::Keyring* keyring,
                             const crypto::Sealer* sealer, RandomSource* random,
                             const Clock* clock, absl::Duration ttl)
    : store_(store), keyring_(keyring), sealer_(sealer), random_(random), clock_(clock),
      ttl_(ttl) {}

absl::Status RequestLedger::ValidateRequestId(std::string_view request_id) {
  const bool printable = std::all_of(request_id.begin(), request_id.end(),
                                     [](char c) { return c >= 0x21 && c <= 0x7e; });
  if (request_id.empty() || request_id.size() > kMaxRequestIdBytes || !printable) {
    return WithReason(absl::InvalidArgumentError(absl::StrCat(
                          "request_id: 1..", kMaxRequestIdBytes,
                          " bytes of printable ASCII (0x21..0x7e), got ", request_id.size(),
                          " bytes")),
                      "INVALID_ARGUMENT", "request_id");
  }
  return absl::OkStatus();
}

void RequestLedger::Once(const Call& call, Apply apply, Reply done) const {
  if (absl::Status valid = ValidateRequestId(call.request_id); !valid.ok()) {
    return std::move(done)(valid);
  }
  const crypto::Keyring::Key& key = keyring_->primary();
  const std::string tag =
      crypto::Keyring::Blind(key, kPurpose, Joined(call.method, call.scope, call.request_id));
  const std::string fingerprint =
      crypto::Keyring::Blind(key, kBodyPurpose, Joined(call.method, call.body));
  absl::StatusOr<std::string> claim_bytes = RandomBytes(*random_, kClaimBytes);
  if (!claim_bytes.ok()) return std::move(done)(claim_bytes.status());
  const std::string claim = absl::BytesToHexString(*claim_bytes);
  std::string pending = absl::StrCat(std::string(1, kClaimed), claim, fingerprint);

  const absl::Time now = clock_->Now();
  absl::StatusOr<std::optional<std::string>> found =
      store_->Claim(tag, pending, now, now + std::min(ttl_, kClaimLease));
  if (!found.ok()) return std::move(done)(found.status());
  if (found->has_value()) {
    Head head;
    if (!ParseHead(**found, &head)) {
      return std::move(done)(absl::InternalError("request ledger: unexpected stored value"));
    }
    if (head.fingerprint != fingerprint) {
      return std::move(done)(WithReason(
          absl::FailedPreconditionError(
              "request_id: already used with another request; generate a new request_id "
              "for each call (and reuse it only for that call's retries)"),
          "REQUEST_ID_REUSED", "request_id"));
    }
    if (head.kind == kClaimed) {
      return std::move(done)(WithReason(
          absl::UnavailableError("request_id: the first call with this request_id is still "
                                 "running; retry after a backoff"),
          "REQUEST_IN_PROGRESS"));
    }
    absl::StatusOr<crypto::Opened> opened = sealer_->Open(tag, kSealedAnswerName, head.rest);
    if (!opened.ok()) {
      return std::move(done)(
          absl::InternalError("request ledger: the stored answer did not open"));
    }
    return std::move(done)(std::move(opened->plaintext));
  }

  // Claimed: run the call, then store its answer before answering.
  std::move(apply)([this, tag, claim, fingerprint, pending = std::move(pending),
                    done = std::move(done)](Answer answer) mutable {
    const absl::Time at = clock_->Now();
    // What answers once the store has settled the entry: a retry that
    // follows the answer finds what it says.
    auto then_answer = [](Answer answer, Reply done) {
      return [answer = std::move(answer), done = std::move(done)](
                 absl::StatusOr<bool>) mutable { std::move(done)(std::move(answer)); };
    };
    if (!answer.ok()) {
      // Not remembered: the claim goes, and a retry runs the call again.
      return store_->Replace(tag, pending, "", at, at,
                             then_answer(std::move(answer), std::move(done)));
    }
    absl::StatusOr<std::string> sealed = sealer_->Seal(tag, kSealedAnswerName, *answer);
    if (!sealed.ok()) {
      return store_->Replace(tag, pending, "", at, at,
                             then_answer(std::move(answer), std::move(done)));
    }
    std::string value = absl::StrCat(std::string(1, kAnswered), claim, fingerprint, *sealed);
    // The call applied: it answers OK even if the answer could not be kept
    // (a retry then meets the claim until its lease ends).
    store_->Replace(tag, pending, value, at, at + ttl_,
                    then_answer(std::move(answer), std::move(done)));
  });
}

}  // namespace stateside::session

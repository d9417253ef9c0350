// Cookie signing and verification (see cookie.h for the format).
#include "sidecar/crypto/cookie.h"

#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/not_found.h"
#include "sidecar/crypto/encoding.h"
#include "sidecar/crypto/primitives.h"

namespace stateside::crypto {
namespace {

// Domain separation: a cookie MAC can never be mistaken for any other HMAC
// computed under the same secret.
constexpr std::string_view kDomain = "stateside-cookie-v1";
constexpr size_t kMinSecretSize = 32;  // 256 bits, the HMAC-SHA256 strength
// Real cookies are ~87 bytes (43-char id, '.', 43-char signature); the cap
// bounds the work an attacker can make us do per request.
constexpr size_t kMaxCookieSize = 256;
constexpr size_t kSignatureChars = 43;  // unpadded base64url of 32 bytes

void Mac(const HmacSha256Key& key, std::string_view id, char* out) {
  const char separator = '\0';
  absl::Status s =
      key.MacTo({kDomain, std::string_view(&separator, 1), id}, out);
  if (!s.ok()) {
    // Only reachable if OpenSSL itself is broken (allocation failure); a
    // cookie with a garbage signature would log every user out silently.
    std::abort();
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<CookieSigner>> CookieSigner::Create(
    std::vector<std::string> secrets) {
  if (secrets.empty()) {
    return absl::InvalidArgumentError("at least one cookie secret is required");
  }
  for (size_t i = 0; i < secrets.size(); ++i) {
    if (secrets[i].size() < kMinSecretSize) {
      const std::string message =
          absl::StrCat("cookie secret ", i + 1, " is ", secrets[i].size(),
                       " bytes; at least ", kMinSecretSize, " are required");
      for (std::string& secret : secrets) Cleanse(secret);
      return absl::InvalidArgumentError(message);
    }
  }
  struct Wiper {
    std::vector<std::string>& secrets;
    ~Wiper() {
      for (std::string& secret : secrets) Cleanse(secret);
    }
  } wiper{secrets};
  std::vector<std::unique_ptr<HmacSha256Key>> keys;
  keys.reserve(secrets.size());
  for (const std::string& secret : secrets) {
    absl::StatusOr<std::unique_ptr<HmacSha256Key>> key =
        HmacSha256Key::Create(secret);
    if (!key.ok()) return key.status();
    keys.push_back(*std::move(key));
  }
  return std::unique_ptr<CookieSigner>(new CookieSigner(std::move(keys)));
}

// keys_ wipe their keyed states when they are destroyed.
CookieSigner::~CookieSigner() = default;

std::string CookieSigner::Sign(std::string_view id) const {
  char mac[kSha256Size];
  Mac(*keys_.front(), id, mac);
  const std::string signature = Base64UrlEncode(std::string_view(mac, sizeof(mac)));
  std::string cookie;
  cookie.reserve(id.size() + 1 + signature.size());  // one append target, no regrowth
  cookie.append(id).append(1, '.').append(signature);
  return cookie;
}

absl::StatusOr<std::string> CookieSigner::Verify(std::string_view cookie,
                                                 bool* primary) const {
  // One answer for every bad cookie: no hint of which check failed.
  if (cookie.empty() || cookie.size() > kMaxCookieSize) return SessionNotFound();
  // The signature never contains '.', the id might.
  const size_t dot = cookie.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return SessionNotFound();
  const std::string_view id = cookie.substr(0, dot);
  const std::string_view signature = cookie.substr(dot + 1);
  if (signature.size() != kSignatureChars) return SessionNotFound();
  const std::optional<std::string> given = Base64UrlDecode(signature);
  if (!given.has_value() || given->size() != kSha256Size) return SessionNotFound();

  // Every secret is tried, without stopping at a match, so the time taken
  // does not tell which secret (if any) signed the cookie.
  bool match = false;
  bool first = false;
  char mac[kSha256Size];
  for (size_t i = 0; i < keys_.size(); ++i) {
    Mac(*keys_[i], id, mac);
    const bool equal =
        ConstantTimeEquals(std::string_view(mac, sizeof(mac)), *given);
    if (i == 0) first = equal;
    match = equal | match;
  }
  Cleanse(mac, sizeof(mac));
  if (!match) return SessionNotFound();
  if (primary != nullptr) *primary = first;
  return std::string(id);
}

}  // namespace stateside::crypto

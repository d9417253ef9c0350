// Cookie signing and verification (see cookie.h for the format).
#include "sidecar/crypto/cookie.h"

#include <cstdlib>
#include <cstring>
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

void Mac(std::string_view secret, std::string_view id, char* out) {
  const char separator = '\0';
  absl::Status s = HmacSha256To(
      secret, {kDomain, std::string_view(&separator, 1), id}, out);
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
  size_t total = 0;
  for (const std::string& secret : secrets) total += secret.size();
  auto storage = SecretBuffer::Allocate(total);
  if (!storage.ok()) return storage.status();
  std::vector<std::string_view> views;
  size_t offset = 0;
  for (const std::string& secret : secrets) {
    std::memcpy(storage->data() + offset, secret.data(), secret.size());
    views.push_back(storage->view(offset, secret.size()));
    offset += secret.size();
  }
  return std::unique_ptr<CookieSigner>(
      new CookieSigner(*std::move(storage), std::move(views)));
}

// storage_ wipes the secrets when it is destroyed.
CookieSigner::~CookieSigner() = default;

std::string CookieSigner::Sign(std::string_view id) const {
  char mac[kSha256Size];
  Mac(secrets_.front(), id, mac);
  std::string cookie(id);
  cookie.push_back('.');
  cookie += Base64UrlEncode(std::string_view(mac, sizeof(mac)));
  return cookie;
}

absl::StatusOr<std::string> CookieSigner::Verify(std::string_view cookie) const {
  // One answer for every bad cookie: no hint of which check failed.
  const absl::Status not_found = SessionNotFound();
  if (cookie.empty() || cookie.size() > kMaxCookieSize) return not_found;
  // The signature never contains '.', the id might.
  const size_t dot = cookie.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return not_found;
  const std::string_view id = cookie.substr(0, dot);
  const std::string_view signature = cookie.substr(dot + 1);
  if (signature.size() != kSignatureChars) return not_found;
  const std::optional<std::string> given = Base64UrlDecode(signature);
  if (!given.has_value() || given->size() != kSha256Size) return not_found;

  // Every secret is tried, without stopping at a match, so the time taken
  // does not tell which secret (if any) signed the cookie.
  bool match = false;
  char mac[kSha256Size];
  for (std::string_view secret : secrets_) {
    Mac(secret, id, mac);
    match = ConstantTimeEquals(std::string_view(mac, sizeof(mac)), *given) |
            match;
  }
  Cleanse(mac, sizeof(mac));
  if (!match) return not_found;
  return std::string(id);
}

}  // namespace stateside::crypto

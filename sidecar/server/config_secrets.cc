// Placeholder and strength checks of the secret settings.
#include "sidecar/server/config_secrets.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "sidecar/crypto/secret_strength.h"

namespace stateside::config_secrets {
namespace {

constexpr char kGenerateKey[] = "generate one with: openssl rand -hex 32";

absl::Status SettingError(absl::string_view setting, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(setting, ": ", message));
}

// "the key" for a single value, "key 2 of 3" in a list.
std::string Which(absl::string_view noun, size_t i, size_t n) {
  return n == 1 ? absl::StrCat("the ", noun)
                : absl::StrCat(noun, " ", i + 1, " of ", n);
}

}  // namespace

const std::vector<std::string_view>& ShippedPlaceholders() {
  static const auto* const kPlaceholders = new std::vector<std::string_view>{
      // deploy/k8s/examples/secret.example.yaml
      "replace-me-with-64-hex-chars-from-openssl-rand-hex-32",
      "replace-me-with-openssl-rand-hex-32-output",
      "replace-me",  // redis-password, and inside redis-url
      "redis://:replace-me@redis:6379/0",
      // The all-zero key the example Secret shipped until the key
      // placeholder above replaced it (copies of it live on).
      "0000000000000000000000000000000000000000000000000000000000000000",
  };
  return *kPlaceholders;
}

bool ContainsShippedPlaceholder(std::string_view text) {
  for (std::string_view placeholder : ShippedPlaceholders()) {
    if (text.find(placeholder) != std::string_view::npos) return true;
  }
  return false;
}

std::string_view RedisUrlPassword(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  const size_t start = scheme_end + 3;
  const size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return {};
  const std::string_view userinfo = url.substr(start, at - start);
  const size_t colon = userinfo.find(':');
  return colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
}

absl::Status CheckKeyText(absl::string_view setting, std::string_view text) {
  if (ContainsShippedPlaceholder(text)) {
    return SettingError(setting, absl::StrCat("holds a placeholder shipped with "
                                              "Stateside, not a key: ",
                                              kGenerateKey));
  }
  return absl::OkStatus();
}

absl::Status CheckKeys(absl::string_view setting,
                       const std::vector<std::string_view>& keys) {
  for (size_t i = 0; i < keys.size(); ++i) {
    if (auto reason = crypto::WeakKeyReason(keys[i])) {
      return SettingError(setting, absl::StrCat(Which("key", i, keys.size()), " ",
                                                *reason, ": ", kGenerateKey));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCookieSecrets(absl::string_view setting, std::string_view text,
                                const std::vector<std::string_view>& secrets) {
  if (ContainsShippedPlaceholder(text)) {
    return SettingError(setting, absl::StrCat("holds a placeholder shipped with "
                                              "Stateside, not a secret: ",
                                              kGenerateKey));
  }
  for (size_t i = 0; i < secrets.size(); ++i) {
    if (auto reason = crypto::WeakSecretReason(secrets[i])) {
      return SettingError(setting,
                          absl::StrCat(Which("secret", i, secrets.size()), " ",
                                       *reason, ": ", kGenerateKey));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRedisUrlSecret(absl::string_view setting, std::string_view url) {
  if (ContainsShippedPlaceholder(RedisUrlPassword(url))) {
    return SettingError(setting,
                        "the password is a placeholder shipped with Stateside: "
                        "give Redis a real one (openssl rand -hex 24)");
  }
  return absl::OkStatus();
}

}  // namespace stateside::config_secrets

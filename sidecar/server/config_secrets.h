// The secret settings judged before anything starts: values shipped in the
// repository as placeholders are refused by name, keys and cookie secrets by
// their strength (crypto/secret_strength.h). Internal to sidecar/server (the
// rules of config_rules.cc call it). Pure functions: thread-safe.
#ifndef STATESIDE_SIDECAR_SERVER_CONFIG_SECRETS_H_
#define STATESIDE_SIDECAR_SERVER_CONFIG_SECRETS_H_

#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace stateside::config_secrets {

// Every placeholder value that the repository ships, or once shipped, where
// a secret belongs (deploy/k8s/examples/secret.example.yaml, the Compose
// .env.example, the docs). A test reads those files and fails if they hold
// a value missing here, so a new placeholder cannot ship without being
// refused.
const std::vector<std::string_view>& ShippedPlaceholders();

// Whether `text` (a key, a secret list, a password) contains one of the
// ShippedPlaceholders.
bool ContainsShippedPlaceholder(std::string_view text);

// The password part of a Redis URL's userinfo ("" if none): "p" in
// redis://user:p@host and in redis://:p@host; a lone "redis://p@host" item
// too, since some clients read it as the password.
std::string_view RedisUrlPassword(std::string_view url);

// INVALID_ARGUMENT "<setting>: ..." when the value holds a shipped
// placeholder, a weak key (each of `keys`, 32 bytes) or a weak cookie
// secret. Messages name the setting and the rule, never the value.
absl::Status CheckKeyText(absl::string_view setting, std::string_view text);
absl::Status CheckKeys(absl::string_view setting,
                       const std::vector<std::string_view>& keys);
absl::Status CheckCookieSecrets(absl::string_view setting, std::string_view text,
                                const std::vector<std::string_view>& secrets);
absl::Status CheckRedisUrlSecret(absl::string_view setting, std::string_view url);

}  // namespace stateside::config_secrets

#endif  // STATESIDE_SIDECAR_SERVER_CONFIG_SECRETS_H_

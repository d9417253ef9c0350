// Session ids: 256 bits from the random source, as 43 characters of
// unpadded base64url. Thread-safe (as safe as the RandomSource given).
#ifndef STATESIDE_SIDECAR_CRYPTO_SESSION_ID_H_
#define STATESIDE_SIDECAR_CRYPTO_SESSION_ID_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sidecar/crypto/random.h"

namespace stateside::crypto {

inline constexpr size_t kSessionIdBytes = 32;  // 256 bits (docs/SECURITY.md)
inline constexpr size_t kSessionIdChars = 43;  // ceil(32 * 8 / 6)

// A fresh id, or the random source's error.
absl::StatusOr<std::string> NewSessionId(RandomSource& random);

// Exactly 43 characters of the base64url alphabet. A cheap syntactic filter
// applied before any store lookup; it says nothing about existence.
bool IsWellFormedSessionId(std::string_view id);

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_SESSION_ID_H_

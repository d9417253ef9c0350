// Non-secret digests. SHA-1 names Lua scripts for Redis EVALSHA (what SCRIPT
// LOAD returns); it protects nothing. Pure functions; thread-safe.
#ifndef STATESIDE_SIDECAR_CRYPTO_DIGEST_H_
#define STATESIDE_SIDECAR_CRYPTO_DIGEST_H_

#include <string>
#include <string_view>

namespace stateside::crypto {

// Lower-case hex SHA-1 of `data` (40 characters).
std::string Sha1Hex(std::string_view data);

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_DIGEST_H_

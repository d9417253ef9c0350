// The system CSPRNG behind the RandomSource seam (sidecar/common/random.h).
// Thread-safe.
#ifndef STATESIDE_SIDECAR_CRYPTO_RANDOM_H_
#define STATESIDE_SIDECAR_CRYPTO_RANDOM_H_

#include <memory>

#include "sidecar/common/random.h"

namespace stateside::crypto {

// The operating system's CSPRNG through OpenSSL's RAND_bytes.
std::unique_ptr<RandomSource> NewSecureRandom();

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_RANDOM_H_

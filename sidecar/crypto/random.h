// The random source: session ids, nonces and key-derivation salts all come from
// here, so tests can substitute a deterministic one. Thread-safe.
#ifndef STATESIDE_SIDECAR_CRYPTO_RANDOM_H_
#define STATESIDE_SIDECAR_CRYPTO_RANDOM_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stateside::crypto {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Fills out[0, n) with random bytes. Fails only if the system CSPRNG does.
  virtual absl::Status Fill(char* out, size_t n) = 0;
};

// The operating system's CSPRNG through OpenSSL's RAND_bytes.
std::unique_ptr<RandomSource> NewSecureRandom();

// n random bytes, or the CSPRNG's error.
absl::StatusOr<std::string> RandomBytes(RandomSource& random, size_t n);

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_RANDOM_H_

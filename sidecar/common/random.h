// The random source seam: session ids, nonces, key-derivation salts and the
// instance id's suffix all come from one, so tests can substitute a
// deterministic one. The implementation on the system CSPRNG is
// crypto::NewSecureRandom() (sidecar/crypto/random.h). Thread-safe.
#ifndef STATESIDE_SIDECAR_COMMON_RANDOM_H_
#define STATESIDE_SIDECAR_COMMON_RANDOM_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stateside {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Fills out[0, n) with random bytes. Fails only if the system CSPRNG does.
  virtual absl::Status Fill(char* out, size_t n) = 0;
};

// n random bytes, or the source's error.
inline absl::StatusOr<std::string> RandomBytes(RandomSource& random, size_t n) {
  std::string out(n, '\0');
  if (absl::Status s = random.Fill(out.data(), n); !s.ok()) return s;
  return out;
}

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_RANDOM_H_

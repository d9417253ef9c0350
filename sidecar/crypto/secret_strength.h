// Judges whether a key or a secret looks generated or typed: an all-zero or
// one-byte key, a short pattern repeated, a handful of distinct bytes, or a
// byte distribution that carries little information. These are heuristics
// that catch placeholders, padding and keyboard patterns; they cannot tell a
// memorable phrase from random bytes (the configuration also refuses the
// placeholders shipped with Stateside by name). Pure functions: thread-safe.
#ifndef STATESIDE_SIDECAR_CRYPTO_SECRET_STRENGTH_H_
#define STATESIDE_SIDECAR_CRYPTO_SECRET_STRENGTH_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace stateside::crypto {

// The smallest p >= 1 such that bytes[i] == bytes[i - p] for every i >= p
// (bytes.size() when no shorter pattern repeats; 0 for empty input).
size_t RepeatingPeriod(std::string_view bytes);

// How many different byte values occur.
size_t DistinctBytes(std::string_view bytes);

// bytes.size() times the Shannon entropy of the byte frequencies, in bits:
// an upper bound on what the bytes can hold if they were drawn from that
// distribution. Random 32-byte keys score about 150, 32 random hex
// characters about 115 (never below 90 in 300 000 draws).
double EstimatedEntropyBits(std::string_view bytes);

// Why a 32-byte encryption key is refused, or nullopt if it is acceptable:
// "is all zero bytes", "repeats one byte", "repeats a pattern of N bytes"
// (N <= half the key), "has only N distinct byte values" (fewer than 12; a
// random key has fewer than 12 with probability ~1e-23). The reason never
// contains key bytes.
std::optional<std::string> WeakKeyReason(std::string_view key);

// Why a cookie signing secret is refused, or nullopt: shorter than 32 bytes,
// one repeated byte, a pattern of at most half its length repeated, or an
// estimated entropy below 64 bits. Never contains the secret.
std::optional<std::string> WeakSecretReason(std::string_view secret);

inline constexpr size_t kMinCookieSecretBytes = 32;

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_SECRET_STRENGTH_H_

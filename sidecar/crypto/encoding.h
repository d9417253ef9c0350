// Text encodings of binary values used by the crypto module: lowercase hex
// and unpadded base64url (RFC 4648 section 5), with strict decoders. Internal
// to sidecar/crypto. Pure functions, thread-safe.
//
// They take std::string_view; Debian's Abseil (20220623) has its own
// absl::string_view type, so the conversions live here and nowhere else.
#ifndef STATESIDE_SIDECAR_CRYPTO_ENCODING_H_
#define STATESIDE_SIDECAR_CRYPTO_ENCODING_H_

#include <optional>
#include <string>
#include <string_view>

namespace stateside::crypto {

std::string HexEncode(std::string_view bytes);

// Unpadded base64url of `bytes`.
std::string Base64UrlEncode(std::string_view bytes);

// True for the 64 characters of the base64url alphabet.
bool IsBase64UrlChar(char c);

// Decodes canonical unpadded base64url: only alphabet characters, no
// padding or whitespace, a length that is not 1 (mod 4), and unused trailing
// bits zero, so each byte string has exactly one accepted encoding.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// `s` without leading and trailing ASCII whitespace.
std::string_view TrimAsciiWhitespace(std::string_view s);

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_ENCODING_H_

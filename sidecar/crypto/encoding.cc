// Hex and base64url for the crypto module, on top of absl's escaping.
#include "sidecar/crypto/encoding.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace stateside::crypto {
namespace {

absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

std::string HexEncode(std::string_view bytes) {
  return absl::BytesToHexString(ToAbsl(bytes));
}

std::string Base64UrlEncode(std::string_view bytes) {
  // absl's web-safe variant uses '-' and '_' and writes no padding.
  return absl::WebSafeBase64Escape(ToAbsl(bytes));
}

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  for (char c : text) {
    if (!IsBase64UrlChar(c)) return std::nullopt;
  }
  std::string out;
  if (!absl::WebSafeBase64Unescape(ToAbsl(text), &out)) return std::nullopt;
  // Several strings differ only in the unused low bits of their last
  // character and decode alike; accept only the one we would have written.
  if (Base64UrlEncode(out) != text) return std::nullopt;
  return out;
}

std::string_view TrimAsciiWhitespace(std::string_view s) {
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace stateside::crypto

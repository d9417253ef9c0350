// Strict UTF-8 validation (RFC 3629, table 3-7 of the Unicode standard).
#include "client/src/utf8.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "client/src/convert.h"

namespace stateside {

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const uint8_t* const end = p + text.size();
  while (p < end) {
    const uint8_t b = *p;
    if (b < 0x80) {
      ++p;
      continue;
    }
    int len;
    // Allowed range of the second byte, which rules out overlong forms,
    // surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..).
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return false;  // continuation byte first, C0/C1 or F5..FF
    }
    if (end - p < len) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i < len; ++i) {
      if (p[i] < 0x80 || p[i] > 0xBF) return false;
    }
    p += len;
  }
  return true;
}

}  // namespace stateside

namespace stateside::client_internal {

absl::Status CheckText(std::string_view field, std::string_view text) {
  if (IsValidUtf8(text)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(Sv(field), " is not valid UTF-8"));
}

}  // namespace stateside::client_internal

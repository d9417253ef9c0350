// UTF-8 validation for the text fields of the API. Pure: thread-safe.
#ifndef STATESIDE_CLIENT_SRC_UTF8_H_
#define STATESIDE_CLIENT_SRC_UTF8_H_

#include <string_view>

#include "absl/status/status.h"

namespace stateside::client_internal {

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF — the same rule protobuf applies to `string` fields, so a text the
// client accepts is one the sidecar can parse.
bool IsValidUtf8(std::string_view text);

// OK if `text` is valid UTF-8, else INVALID_ARGUMENT "<field> is not valid
// UTF-8": a clear error instead of a request the sidecar cannot parse.
absl::Status CheckText(std::string_view field, std::string_view text);

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_UTF8_H_

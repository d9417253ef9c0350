// UTF-8 validation for the text fields of the API. Pure: thread-safe.
#ifndef STATESIDE_CLIENT_SRC_UTF8_H_
#define STATESIDE_CLIENT_SRC_UTF8_H_

#include <string_view>

#include "absl/status/status.h"
#include "stateside/types.h"  // IsValidUtf8

namespace stateside::client_internal {

// OK if `text` is valid UTF-8, else INVALID_ARGUMENT "<field> is not valid
// UTF-8": a clear error instead of a request the sidecar cannot parse.
absl::Status CheckText(std::string_view field, std::string_view text);

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_UTF8_H_

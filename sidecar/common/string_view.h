// Sv: std::string_view → absl::string_view. Debian's Abseil has its own
// string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), and its hash containers
// look up heterogeneously, and its string functions take arguments, only as
// absl::string_view: the conversion is explicit, and written once here for
// the whole sidecar. A view of the same bytes (no copy). Thread-safe.
#ifndef STATESIDE_SIDECAR_COMMON_STRING_VIEW_H_
#define STATESIDE_SIDECAR_COMMON_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace stateside {

inline absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_STRING_VIEW_H_

// The uniform not-found answer: every path that cannot produce a session
// (no such id, expired, destroyed, a cookie that fails any check, a key
// that does not open it) answers exactly this NOT_FOUND, so a caller cannot
// tell the causes apart (docs/SECURITY.md). Values only: thread-safe.
#ifndef STATESIDE_SIDECAR_COMMON_NOT_FOUND_H_
#define STATESIDE_SIDECAR_COMMON_NOT_FOUND_H_

#include "absl/status/status.h"

namespace stateside {

inline constexpr char kSessionNotFoundMessage[] = "session not found";

inline absl::Status SessionNotFound() { return absl::NotFoundError(kSessionNotFoundMessage); }

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_NOT_FOUND_H_

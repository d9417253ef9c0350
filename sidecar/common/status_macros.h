// Early-return helpers for absl::Status. Debian's Abseil (20220623) predates
// ABSL_RETURN_IF_ERROR, so the project keeps these two small macros.
#ifndef STATESIDE_SIDECAR_COMMON_STATUS_MACROS_H_
#define STATESIDE_SIDECAR_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STATESIDE_CONCAT_INNER_(a, b) a##b
#define STATESIDE_CONCAT_(a, b) STATESIDE_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status stateside_status_ = (expr);     \
    if (!stateside_status_.ok()) return stateside_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` declares x from an OK StatusOr or returns
// its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(STATESIDE_CONCAT_(stateside_or_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#endif  // STATESIDE_SIDECAR_COMMON_STATUS_MACROS_H_

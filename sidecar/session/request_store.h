// The request-id store seam: where RequestLedger (request_ledger.h) keeps the
// first answer of each call made with a request_id, so that a retry finds it
// on any instance. An entry is a key (a blinded tag) holding an opaque value
// (the ledger's) with an expiry; the store never sees a plaintext answer.
//
// Implementations are safe for concurrent use. Errors: UNAVAILABLE (backend
// unreachable), RESOURCE_EXHAUSTED (memory store full).
#ifndef STATESIDE_SIDECAR_SESSION_REQUEST_STORE_H_
#define STATESIDE_SIDECAR_SESSION_REQUEST_STORE_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::session {

class RequestStore {
 public:
  virtual ~RequestStore() = default;

  using Done = absl::AnyInvocable<void(absl::StatusOr<bool>) &&>;

  // One atomic step: if `key` holds a value that has not expired at `now`,
  // returns it and changes nothing; else stores `value` until `until` and
  // returns nullopt. Blocking.
  virtual absl::StatusOr<std::optional<std::string>> Claim(std::string_view key,
                                                           std::string_view value,
                                                           absl::Time now, absl::Time until) = 0;

  // One atomic step: if `key` still holds exactly `expected` (unexpired),
  // replaces it by `value` until `until`, or removes it if `value` is
  // empty; answers whether it did. Does not block: `done` runs exactly once,
  // on the calling thread or on a thread of the store's, and must not block.
  virtual void Replace(std::string_view key, std::string_view expected, std::string_view value,
                       absl::Time now, absl::Time until, Done done) = 0;
};

}  // namespace stateside::session

#endif  // STATESIDE_SIDECAR_SESSION_REQUEST_STORE_H_

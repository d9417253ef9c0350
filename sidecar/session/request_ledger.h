// Retries that cannot apply twice: a call made with a request_id (Create,
// Regenerate, Publish; see the proto comments) runs at most once per
// (method, scope, request_id) within a TTL, and a retry answers the first
// answer, read back from the store (RequestStore), on any instance that
// shares it.
//
// One entry per request_id, at the tag Keyring::Blind(primary, "request",
// method 0 scope 0 request_id) (nothing of the call reaches the store in
// plaintext): first a claim ("P", a random claim token and the request's
// fingerprint, a keyed hash of method and body) written in one atomic step
// with the check that none exists, for at most kClaimLease; then the call
// runs; then, in one compare-and-set step with the claim, the answer ("D",
// the claim and fingerprint, the serialized response sealed for the tag) for
// the TTL, and only after that is stored does the caller answer. So a
// connection lost after the call was applied leaves the answer for the
// retry. A call that fails removes its claim (an error is not remembered:
// the retry runs the call again). A retry that finds:
//   - the answer with the same fingerprint: that answer, nothing applied;
//   - another fingerprint: FAILED_PRECONDITION, reason REQUEST_ID_REUSED;
//   - a claim (the first call still runs, or its sidecar died while it ran
//     and the lease has not run out): UNAVAILABLE, reason
//     REQUEST_IN_PROGRESS.
// Limits, written in the protos' comments: a store failure between the
// call and the answer's write (or a key rotation within the TTL: the tag
// changes) loses the answer, so a later retry may apply again. Cost: two
// store round trips more per call (the claim, then the answer), and the
// claim holds the calling thread (so the RPC layer runs a call with a
// request_id on its offload pool, not on a gRPC thread: rpc/offload.h).
//
// Thread-safe: no mutable state of its own.
#ifndef STATESIDE_SIDECAR_SESSION_REQUEST_LEDGER_H_
#define STATESIDE_SIDECAR_SESSION_REQUEST_LEDGER_H_

#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/common/clock.h"
#include "sidecar/common/random.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/session/request_store.h"

namespace stateside::session {

class RequestLedger {
 public:
  static constexpr size_t kMaxRequestIdBytes = 128;
  // How long a claim holds when its sidecar dies before writing the answer.
  static constexpr absl::Duration kClaimLease = absl::Seconds(30);
  // Envelope name of a sealed answer; the place is the entry's tag.
  static constexpr std::string_view kSealedAnswerName{"\0request", 8};

  // One call with a request_id. `scope` narrows the request_id (the user of
  // a Create, the session of a Regenerate, the sender of a Publish); `body`
  // is the request as the fingerprint covers it (serialized without its
  // request_id). Views: valid for the duration of Once only.
  struct Call {
    std::string_view method;
    std::string_view scope;
    std::string_view request_id;
    std::string_view body;
  };
  // A serialized response, or the call's error.
  using Answer = absl::StatusOr<std::string>;
  using Reply = absl::AnyInvocable<void(Answer) &&>;
  using Apply = absl::AnyInvocable<void(Reply) &&>;

  // REQUIRES: every pointer outlives the ledger; ttl > 0.
  RequestLedger(RequestStore* store, const crypto::Keyring* keyring, const crypto::Sealer* sealer,
                RandomSource* random, const Clock* clock, absl::Duration ttl);

  // INVALID_ARGUMENT (field "request_id") unless 1..128 printable ASCII bytes.
  static absl::Status ValidateRequestId(std::string_view request_id);

  // Runs `apply` unless the request_id was seen (see the top), then `done`
  // with its answer or the first one. `apply` runs on the calling thread and
  // may answer from any thread; `done` runs exactly once, on the calling
  // thread or the store's, and must not block. Blocks for the claim.
  void Once(const Call& call, Apply apply, Reply done) const;

  absl::Duration ttl() const { return ttl_; }

 private:
  RequestStore* const store_;
  const crypto::Keyring* const keyring_;
  const crypto::Sealer* const sealer_;
  RandomSource* const random_;
  const Clock* const clock_;
  const absl::Duration ttl_;
};

}  // namespace stateside::session

#endif  // STATESIDE_SIDECAR_SESSION_REQUEST_LEDGER_H_

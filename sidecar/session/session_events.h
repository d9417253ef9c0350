// What the session rules report for metrics and logs (the metrics layer
// implements it; tests count with it). Calls come from RPC threads
// concurrently and must not block.
#ifndef STATESIDE_SIDECAR_SESSION_SESSION_EVENTS_H_
#define STATESIDE_SIDECAR_SESSION_SESSION_EVENTS_H_

#include <string_view>

namespace stateside::session {

// Why a lookup answered NOT_FOUND. The caller never learns which.
enum class NotFoundCause {
  kMalformedKey,   // not a well-formed id or cookie
  kBadSignature,   // cookie signature did not verify
  kUnknown,        // absent, expired or destroyed in the store
  kUndecryptable,  // an envelope failed to open
  // The metadata seal is missing, does not open, or does not match the
  // stored created / idle TTL / absolute expiry / user: the store's copy was
  // changed behind the sidecar's back (or written by a release without it).
  kTamperedMetadata,
};
std::string_view NotFoundCauseName(NotFoundCause cause);

class SessionEvents {
 public:
  virtual ~SessionEvents() = default;
  virtual void SessionCreated() {}
  virtual void SessionDestroyed() {}
  // A read met the session expired (idle or absolute).
  virtual void SessionExpired() {}
  virtual void SessionNotFound(NotFoundCause cause) {}
  // reason: "malformed", "unknown_key", "auth_failed", "key_mismatch"
  // (crypto::OpenFailureName).
  virtual void DecryptFailed(std::string_view reason) {}
  // An envelope opened under this key id (reads under old keys = rotation).
  virtual void KeyUsedForRead(std::string_view key_id) {}
  virtual void VersionConflict() {}
  // A call refused with RESOURCE_EXHAUSTED by a cap ("sessions_per_user").
  virtual void CapRefused(std::string_view cap) {}
};

}  // namespace stateside::session

#endif  // STATESIDE_SIDECAR_SESSION_SESSION_EVENTS_H_

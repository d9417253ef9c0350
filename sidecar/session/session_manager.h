// The session rules: ids, cookies, encryption of every attribute, TTLs,
// versions, tombstones and limits, over any SessionStore. Knows the store
// interface, the crypto and the clock; nothing of gRPC, Redis or HTTP.
//
// Safe for concurrent use: it holds no mutable state of its own; atomicity per
// session is the store's.
#ifndef STATESIDE_SIDECAR_SESSION_SESSION_MANAGER_H_
#define STATESIDE_SIDECAR_SESSION_SESSION_MANAGER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/random.h"
#include "sidecar/session/session_events.h"
#include "sidecar/session/store.h"

namespace stateside {

struct SessionLimits {
  size_t max_attributes = 64;
  size_t max_attribute_name_bytes = 128;
  size_t max_attribute_bytes = 64 * 1024;   // one plaintext value
  size_t max_total_bytes = 256 * 1024;      // all stored bytes of a session
  size_t max_user_id_bytes = 256;
};

struct SessionPolicy {
  absl::Duration idle_ttl = absl::Hours(24);
  absl::Duration absolute_ttl = absl::Hours(24 * 7);
  SessionLimits limits;
};

// A session id or a signed cookie value, as the caller handed it.
struct SessionKey {
  enum class Kind { kId, kCookie };
  Kind kind = Kind::kId;
  std::string value;

  static SessionKey Id(std::string id) { return {Kind::kId, std::move(id)}; }
  static SessionKey Cookie(std::string c) { return {Kind::kCookie, std::move(c)}; }
};

struct SessionInfo {
  std::string id;
  std::string user_id;
  absl::Time created;
  absl::Time last_access;
  absl::Time idle_expiry;
  absl::Time absolute_expiry;
  uint64_t version = 0;
};

struct Session {
  SessionInfo info;
  absl::flat_hash_map<std::string, std::string> attributes;  // plaintext
  std::string cookie;                                        // "id.signature"
};

struct CreateParams {
  std::string user_id;
  absl::flat_hash_map<std::string, std::string> attributes;
  std::optional<absl::Duration> idle_ttl;      // must not exceed the policy's
  std::optional<absl::Duration> absolute_ttl;  // must not exceed the policy's
};

struct UpdateParams {
  absl::flat_hash_map<std::string, std::string> set;
  std::vector<std::string> remove;
  std::optional<uint64_t> expected_version;
};

class SessionManager {
 public:
  // REQUIRES: every pointer outlives the manager; `events` may be null.
  SessionManager(SessionStore* store, const crypto::Sealer* sealer,
                 const crypto::CookieSigner* signer, crypto::RandomSource* random,
                 const Clock* clock, SessionPolicy policy,
                 SessionEvents* events = nullptr);

  absl::StatusOr<Session> Create(const CreateParams& params);
  absl::StatusOr<Session> Get(const SessionKey& key, bool touch = true);
  absl::StatusOr<SessionInfo> Update(const SessionKey& key,
                                     const UpdateParams& params);
  absl::StatusOr<SessionInfo> Touch(const SessionKey& key);
  // Idempotent: OK(false) for an unknown or forged key.
  absl::StatusOr<bool> Destroy(const SessionKey& key);
  absl::StatusOr<Session> Regenerate(const SessionKey& key);
  absl::StatusOr<std::vector<SessionInfo>> ListUserSessions(
      std::string_view user_id);
  absl::StatusOr<uint32_t> DestroyUserSessions(
      std::string_view user_id, const std::optional<SessionKey>& keep);

  const SessionPolicy& policy() const { return policy_; }

 private:
  // ... private helpers are the implementation's choice.
  SessionStore* const store_;
  const crypto::Sealer* const sealer_;
  const crypto::CookieSigner* const signer_;
  crypto::RandomSource* const random_;
  const Clock* const clock_;
  const SessionPolicy policy_;
  SessionEvents* const events_;  // never null: a no-op sink if none given
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SESSION_SESSION_MANAGER_H_

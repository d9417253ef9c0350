// The session rules: ids, cookies, encryption of every attribute, TTLs,
// versions, tombstones and limits, over any SessionStore. Knows the store
// interface, the crypto and the clock; nothing of gRPC, Redis or HTTP.
//
// Safe for concurrent use: it holds no mutable state of its own; atomicity per
// session is the store's.
#ifndef STATESIDE_SIDECAR_SESSION_SESSION_MANAGER_H_
#define STATESIDE_SIDECAR_SESSION_SESSION_MANAGER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/random.h"
#include "sidecar/session/session_change.h"
#include "sidecar/session/session_events.h"
#include "sidecar/session/store.h"

namespace stateside::session {

// What a Create (or a Regenerate that gives a session its owner) does when
// the user already holds the most live sessions allowed.
enum class SessionLimitPolicy {
  kRefuse,     // RESOURCE_EXHAUSTED, reason SESSION_LIMIT; nothing written
  kEndOldest,  // the user's oldest sessions end (tombstoned) to make room
};

struct SessionLimits {
  size_t max_attributes = 64;
  size_t max_attribute_name_bytes = 128;
  size_t max_attribute_bytes = 64 * 1024;  // one plaintext value
  size_t max_total_bytes = 256 * 1024;     // all stored bytes of a session
  size_t max_user_id_bytes = 256;
  // Live sessions one user may hold (STATESIDE_MAX_SESSIONS_PER_USER); 0 =
  // no cap. Enforced by the store in the same atomic step as the new
  // session's index entry (SessionStore::CreateCapped), so concurrent
  // creates for one user on any instance cannot overshoot it; a count
  // through the user's index before that refuses early (and prunes stale
  // entries).
  size_t max_sessions_per_user = 100;
  // At the cap (STATESIDE_SESSION_LIMIT_POLICY).
  SessionLimitPolicy session_limit_policy = SessionLimitPolicy::kRefuse;
};

struct SessionPolicy {
  absl::Duration idle_ttl = absl::Hours(24);
  absl::Duration absolute_ttl = absl::Hours(24 * 7);
  // Touch coalescing of reads (STATESIDE_SESSION_TOUCH_GRANULARITY; see
  // ReadOptions::touch_granularity). An explicit Touch always writes.
  absl::Duration touch_granularity = absl::Seconds(60);
  SessionLimits limits;
};

// A session id or a signed cookie value, as the caller handed it.
struct SessionKey {
  enum class Kind { kId, kCookie };
  Kind kind = Kind::kId;
  std::string value;

  static SessionKey Id(std::string id) { return {Kind::kId, std::move(id)}; }
  static SessionKey Cookie(std::string c) {
    return {Kind::kCookie, std::move(c)};
  }
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
  // This call's cap of the user's live sessions instead of the policy's:
  // 1..max_sessions_per_user (any positive value when that is 0, no cap).
  std::optional<uint32_t> max_sessions_per_user;
  std::optional<SessionLimitPolicy> session_limit_policy;  // unset: the policy's
};

struct RegenerateParams {
  // Unset: the session keeps its owner. Set: the copy belongs to this user
  // (login: an anonymous session becomes the user's, attributes kept). Only
  // an anonymous session may be given an owner; naming another user than a
  // session's own is FAILED_PRECONDITION (reason SESSION_OWNED).
  std::optional<std::string> user_id;
  // As in CreateParams; they apply only when the owner changes (a Regenerate
  // that keeps the owner leaves the user's count as it was).
  std::optional<uint32_t> max_sessions_per_user;
  std::optional<SessionLimitPolicy> session_limit_policy;
};

// How the session rules seal what they store, for the other code that moves
// stored sessions (the rewrap sweep). Reserved envelope names of the user id
// and of the metadata seal: user attribute names are printable ASCII, so
// they cannot start with NUL and collide with these.
inline constexpr std::string_view kUserEnvelopeName("\0user", 5);
inline constexpr std::string_view kMetadataSealName("\0meta", 5);
// The blinding purpose of the user index's tags (Keyring::Blind).
inline constexpr std::string_view kUserIndexPurpose = "user";

// One page of ListUserSessionsPage.
struct UserSessionsPage {
  std::vector<SessionInfo> sessions;
  std::string next_page_token;  // "" after the last page
};

// Page sizes of a user's session listing: 0 asks for the default; more than
// the maximum is the maximum.
inline constexpr uint32_t kDefaultUserPageSize = 100;
inline constexpr uint32_t kMaxUserPageSize = 1000;

struct UpdateParams {
  absl::flat_hash_map<std::string, std::string> set;
  std::vector<std::string> remove;
  std::optional<uint64_t> expected_version;
};

// The metadata seal of a stored session: an envelope under the primary key,
// whose associated data names stored.id, over what must not change after
// creation (created, idle TTL, absolute expiry, user tag, `user_id`). The
// session rules write it at Create and Regenerate and refuse a session whose
// stored fields differ from it; exposed for tests that forge records.
absl::StatusOr<std::string> SealSessionMetadata(const crypto::Sealer& sealer,
                                                const StoredSession& stored,
                                                std::string_view user_id);
// An opened metadata seal's plaintext with the user tag `from` replaced by
// `to` (a sweep moving the session to another key's tag); DATA_LOSS if the
// plaintext does not name `from`.
absl::StatusOr<std::string> RetagMetadataPlaintext(std::string plaintext,
                                                   std::string_view from,
                                                   std::string_view to);

// The points between the store steps of Create and Regenerate where a test
// may run a concurrent operation (SetStepHookForTesting).
enum class ManagerStep {
  kEpochRead,  // Create: the user's epoch read, nothing written yet
  kWritten,    // Create/Regenerate: the new session and its index entry written
  kRetired,    // Regenerate: the old id tombstoned
  kListed,     // DestroyUserSessions: the index listed, nothing destroyed yet
};

class SessionManager;

// A Get or Update of a caller that reuses its per-call state (the sidecar's
// transports keep a pool of them): the manager keeps what it needs across
// the store's round trip here (the id, the cookie, the names an update
// changed), hands the call down to the store (StoreCall), and answers
// through the call's own virtual function instead of a closure. One call at
// a time; the owner may reuse it once its answer ran.
class SessionCall : public StoreCall {
 public:
  // The answer of GetAsync (SessionRead) or UpdateAsync (SessionUpdated):
  // runs exactly once, as the closure of the plain forms would.
  virtual void SessionRead(absl::StatusOr<Session> session) = 0;
  virtual void SessionUpdated(absl::StatusOr<SessionInfo> info) = 0;

  void Recycle() override {
    cookie_.clear();
    names_.clear();
    StoreCall::Recycle();
  }

 private:
  friend class SessionManager;
  std::string cookie_;              // what Get answers the cookie as
  std::vector<std::string> names_;  // the attributes an Update changes
};

class SessionManager {
 public:
  // Completion of the asynchronous forms: runs exactly once, on the calling
  // thread or on a thread of the store's (so it must not block).
  template <typename T>
  using Done = absl::AnyInvocable<void(absl::StatusOr<T>) &&>;

  // REQUIRES: every pointer outlives the manager; `events` may be null.
  SessionManager(SessionStore* store, const crypto::Sealer* sealer,
                 const crypto::CookieSigner* signer,
                 RandomSource* random, const Clock* clock,
                 SessionPolicy policy, SessionEvents* events = nullptr);

  // Every lookup by key answers one NOT_FOUND ("session not found") for a
  // malformed key, a bad cookie signature, an unknown/expired/destroyed
  // session or an envelope that does not open; the cause goes to events_.
  // Bad input is INVALID_ARGUMENT naming the limit; store errors
  // (UNAVAILABLE, RESOURCE_EXHAUSTED) pass through.

  // A new session, version 1 (so a defaulted 0 never matches a real version).
  // Attribute names: 1..max_attribute_name_bytes of printable ASCII.
  // At the cap of the user's live sessions (max_sessions_per_user, or the
  // call's): RESOURCE_EXHAUSTED (reason SESSION_LIMIT) naming the setting or
  // the field, or with SessionLimitPolicy::kEndOldest the user's oldest
  // sessions end in the same atomic store step.
  absl::StatusOr<Session> Create(const CreateParams& params);
  // Create without holding the caller's thread for an anonymous session,
  // whose one store step is the write (SessionStore::CreateAsync). A user's
  // session takes several (the cap's count, the revocation epoch before and
  // after), which only the blocking Create does: for one this answers
  // FAILED_PRECONDITION at once (a caller's bug), never blocking the thread.
  void CreateAsync(const CreateParams& params, Done<Session> done);
  // Rolls the idle TTL unless touch is false.
  absl::StatusOr<Session> Get(const SessionKey& key, bool touch = true);
  // Get and Update without holding the caller's thread across the store's
  // round trip: the same rules and answers as the blocking forms.
  void GetAsync(const SessionKey& key, bool touch, Done<Session> done);
  // Applies removals and sets atomically (a name may not be in both), bumps
  // the version, counts as an access. ABORTED if expected_version differs.
  absl::StatusOr<SessionInfo> Update(const SessionKey& key,
                                     const UpdateParams& params);
  void UpdateAsync(const SessionKey& key, const UpdateParams& params,
                   Done<SessionInfo> done);
  // GetAsync and UpdateAsync of a reused call: call->SessionRead or
  // call->SessionUpdated gets the answer. The plain forms above run these
  // with a call of their own.
  void GetAsync(const SessionKey& key, bool touch, SessionCall* call);
  void UpdateAsync(const SessionKey& key, const UpdateParams& params, SessionCall* call);
  absl::StatusOr<SessionInfo> Touch(const SessionKey& key);
  void TouchAsync(const SessionKey& key, Done<SessionInfo> done);
  // Idempotent: OK(false) for an unknown or forged key. The tombstone lasts
  // policy.absolute_ttl (an upper bound of any session's remaining life while
  // the policy is unchanged).
  absl::StatusOr<bool> Destroy(const SessionKey& key);
  void DestroyAsync(const SessionKey& key, Done<bool> done);
  // Copies the session to a new id (same user, attributes, created, TTLs,
  // absolute expiry and version: the data is the same, so a version read
  // before still describes it), then retires the old id with
  // SessionStore::Retire: one script that tombstones it only if it is still
  // live at the copied version. An Update racing with it lands either before
  // the retirement (the version moved: the stale copy is destroyed and the
  // copy made again, up to 4 times, then ABORTED) or after it (NOT_FOUND, as
  // on any destroyed session), so it is never lost and the old id never
  // outlives a successful call. Copy-then-tombstone, never a RENAME: the two
  // ids live in different Redis Cluster slots.
  // Keeping the owner leaves the user's session count as it was, so
  // max_sessions_per_user does not apply. With params.user_id naming a new
  // owner (login), the copy is sealed for, indexed under and counted
  // against that user as a Create would be (cap, revocation epoch); the
  // anonymous original leaves no index behind.
  absl::StatusOr<Session> Regenerate(const SessionKey& key,
                                     const RegenerateParams& params = {});
  // Metadata of the user's live sessions, a page at a time, in order of
  // absolute expiry (oldest first among sessions of one absolute TTL).
  // page_token: "" for the first page, else the previous page's
  // next_page_token (INVALID_ARGUMENT if it is not one); page_size: see
  // kDefaultUserPageSize. A page may hold fewer sessions than page_size, or
  // none, and still have a next page; it holds more only when sessions share
  // one absolute expiry to the microsecond (a page never splits those).
  // Sessions created or destroyed during a walk may or may not be seen.
  absl::StatusOr<UserSessionsPage> ListUserSessionsPage(
      std::string_view user_id, std::string_view page_token,
      uint32_t page_size);
  // Every page of the above, concatenated (for tools and tests: the RPC
  // answers a page at a time).
  absl::StatusOr<std::vector<SessionInfo>> ListUserSessions(
      std::string_view user_id);
  // Destroys the user's sessions except `keep`, returning how many. A `keep`
  // that names no session (malformed, forged) keeps nothing: logging out
  // everywhere must not fail open because of a bad key.
  //
  // It cannot be outrun by a concurrent Create or Regenerate of the user:
  // once it has returned, every session of the user whose Create began
  // before it (D1 below) is dead, whether it was indexed before the listing
  // or not, and so is every copy a Regenerate made of one; only `keep`
  // survives. The protocol (the interleavings are argued in
  // docs/ARCHITECTURE.md, "Log out everywhere"):
  //  - DestroyUserSessions: D1 advance the user's revocation epoch (every
  //    tag of the keyring), D2 list the index (a page at a time, never
  //    splitting one absolute expiry, which a Regenerate's copy shares with
  //    its original), D3 destroy each listed session; one that is no longer
  //    live may have been retired by a Regenerate, so D3 follows Successor()
  //    to the copy and destroys that.
  //  - Create: C1 read the epoch, C2 write the session and its index entry,
  //    C3 read the epoch again; if it moved, destroy the session (it is
  //    linearised as created, then logged out: Create still answers OK, and
  //    the cookie it returns is already dead).
  //  - Regenerate: the copy and its index entry are written before Retire
  //    names the copy as the old id's successor.
  // Reads stay one round trip: nothing is checked on Get.
  absl::StatusOr<uint32_t> DestroyUserSessions(
      std::string_view user_id, const std::optional<SessionKey>& keep);

  // Where every change is reported (WatchSessionEvents): created,
  // regenerated, updated (names only), destroyed (by Destroy,
  // DestroyUserSessions, the end-oldest cap policy, or Create's epoch
  // post-check), and expired as met by a read. REQUIRES: set before any
  // concurrent use of the manager; `changes` outlives it (null: none).
  void SetChangeSink(SessionChanges* changes) { changes_ = changes; }
  // A session the store dropped expired by itself (the memory store's
  // sweep): reported as expired, with its owner if the user envelope opens.
  void ReportExpired(const StoredSession& stored) const;

  // Calls `hook` at each ManagerStep, on the calling
  // thread, so a test can interleave another operation deterministically.
  // REQUIRES: set before any concurrent use of the manager.
  void SetStepHookForTesting(absl::AnyInvocable<void(ManagerStep)> hook);

  const SessionPolicy& policy() const { return policy_; }

 private:
  // The call of a plain GetAsync or UpdateAsync (session_manager.cc).
  class AloneCall;

  ReadOptions ReadNow(bool touch) const;
  // Touch's read, and its answer from the store's.
  ReadOptions TouchNow() const;
  absl::StatusOr<SessionInfo> OpenTouched(std::string_view id,
                                          absl::StatusOr<StoredSession> stored) const;
  // Destroy's answer from the store's: reports a live session's end.
  absl::StatusOr<bool> Destroyed(std::string_view id, absl::StatusOr<bool> existed) const;
  // A store read's result as the answer of Get.
  // `cookie`: what the session's cookie is answered as; empty: signed anew.
  absl::StatusOr<Session> OpenRead(std::string_view id,
                                   absl::StatusOr<StoredSession> stored,
                                   std::string cookie = "") const;
  // The checks and sealing of an Update into *id and *mutation (values
  // sealed); FinishUpdate reads the store's answer.
  absl::Status PrepareUpdate(const SessionKey& key, const UpdateParams& params,
                             std::string* id, Mutation* mutation) const;
  // `names`: the attributes the update set or removed (for the change).
  absl::StatusOr<SessionInfo> FinishUpdate(
      absl::StatusOr<StoredSession> updated,
      std::vector<std::string> names) const;
  // The session id a key names, without reporting anything; on failure the
  // cause of the NOT_FOUND that a lookup would answer. `cookie`, if not
  // null, is set to the cookie a read answers with (CookieSigner::Verify
  // says which secret signed it):
  // the key's own cookie when the primary secret signed it, else "" (an id,
  // or a cookie of an older secret: sign anew, which moves it to the
  // primary).
  absl::StatusOr<std::string> ParseKey(const SessionKey& key,
                                       NotFoundCause* cause,
                                       std::string* cookie = nullptr) const;
  // ParseKey, reporting a failure as the uniform NOT_FOUND.
  absl::StatusOr<std::string> ResolveKey(const SessionKey& key,
                                         std::string* cookie = nullptr) const;
  // The uniform NOT_FOUND, with the cause reported to events_.
  absl::Status NotFound(NotFoundCause cause) const;
  // A store read's error: NOT_FOUND becomes the uniform one, others pass;
  // an expiry met on session `id` is reported.
  absl::Status StoreReadError(const absl::Status& status,
                              std::string_view id = "") const;
  // Reports a change to changes_, if set, stamped now.
  void Report(ChangeKind kind, std::string_view id, std::string_view user_id,
              std::string_view previous_id = "",
              std::vector<std::string> attributes = {}) const;
  // Opening reports DecryptFailed/KeyUsedForRead; the callers report the
  // NOT_FOUND (a listing skips the session instead). The functions taking
  // an opener open with it (one read's envelopes under one key schedule);
  // the others make their own.
  absl::StatusOr<std::string> OpenValue(crypto::Sealer::Opener& opener,
                                        std::string_view id,
                                        std::string_view name,
                                        std::string_view envelope) const;
  // The metadata with the user id opened and the metadata seal checked. A
  // seal that is missing, does not open or does not match is
  // FAILED_PRECONDITION (reported as kTamperedMetadata by the callers); an
  // envelope that does not open is NOT_FOUND (kUndecryptable).
  absl::StatusOr<SessionInfo> InfoOf(const StoredSession& stored) const;
  absl::StatusOr<SessionInfo> InfoOf(const StoredSession& stored,
                                     crypto::Sealer::Opener& opener) const;
  // The sealed user id of `stored` ("" for an anonymous session), without
  // the metadata seal's check.
  absl::StatusOr<std::string> OwnerOf(const StoredSession& stored) const;
  absl::StatusOr<std::string> OwnerOf(const StoredSession& stored,
                                      crypto::Sealer::Opener& opener) const;
  // Seals what must not change after creation (created, idle TTL, absolute
  // expiry, user tag, user id) into stored->metadata_seal. REQUIRES: those
  // fields and the id set.
  absl::Status SealMetadata(StoredSession* stored,
                            std::string_view user_id) const;
  // Logs why a seal is refused; see InfoOf.
  absl::Status CheckMetadataSeal(const StoredSession& stored,
                                 std::string_view user_id,
                                 crypto::Sealer::Opener& opener) const;
  // `cookie`: as OpenRead's.
  absl::StatusOr<Session> OpenSession(const StoredSession& stored,
                                      std::string cookie = "") const;
  // A StoredSession for `id` holding `user_id` and `attributes` sealed under
  // it (times and version left to the caller). Checks max_total_bytes.
  absl::StatusOr<StoredSession> SealSession(
      const std::string& id, std::string_view user_id,
      const absl::flat_hash_map<std::string, std::string>& attributes) const;
  // The cap a new session of `user_id` is created under (none for an
  // anonymous one or with no cap), from the policy and a call's overrides;
  // `limit` names what the refusal cites. Refuses at once when a count
  // through the index already reaches the cap (it also prunes the index).
  struct CapChoice {
    UserCap cap;
    std::string_view limit;
  };
  absl::StatusOr<std::optional<CapChoice>> ChooseCap(
      std::string_view user_id, std::optional<uint32_t> asked,
      std::optional<SessionLimitPolicy> asked_policy, absl::Time now) const;
  // What a Create decides before the store: TTLs, cap (see ChooseCap).
  struct CreateChoice {
    absl::Duration idle_ttl;
    absl::Duration absolute_ttl;
    std::optional<CapChoice> cap;
  };
  struct AsyncCreate;
  absl::StatusOr<CreateChoice> ChooseCreate(const CreateParams& params) const;
  // A new session with a fresh id, sealed, times set, version 1.
  absl::StatusOr<StoredSession> NewStored(const CreateParams& params,
                                          const CreateChoice& choice) const;
  // Counts and reports a new session written; what Create answers of it.
  void ReportCreated(const StoredSession& stored, std::string_view user_id);
  Session CreatedSession(const StoredSession& stored, const CreateParams& params) const;
  // Create's answer once every id it tried was taken.
  static absl::Status IdsExhausted(const absl::Status& last);
  // One attempt of CreateAsync: a new id, written; again on ALREADY_EXISTS.
  void AttemptCreate(std::unique_ptr<AsyncCreate> create);
  // Writes a new session: Create, or CreateCapped under `cap`, counting the
  // sessions it ended; the cap's refusal becomes the SESSION_LIMIT error.
  absl::Status WriteNew(const StoredSession& stored, std::string_view user_id,
                        const std::optional<CapChoice>& cap) const;
  // The user's index tag under the primary key ("" for an anonymous user).
  std::string UserTag(std::string_view user_id) const;
  // Create's C3 (see DestroyUserSessions): destroys `created` if the user's
  // epoch is no longer `epoch`. An epoch that cannot be read also destroys
  // it and answers the read's error.
  absl::Status PostCheckEpoch(const std::string& tag, uint64_t epoch,
                              const StoredSession& created,
                              std::string_view user_id);
  void Step(ManagerStep step);
  struct WalkedPage {
    std::vector<SessionInfo> sessions;    // checked to be the user's
    std::vector<std::string> successors;  // met in the index, unchecked
    bool more = false;
    absl::Time last;  // the next page starts after it
  };
  // One page of the user's sessions under the tags of every key of the
  // keyring, each checked to hold exactly this user id (and, unless
  // `for_destroy`, a valid metadata seal: a logout also ends sessions whose
  // seal is missing or broken).
  absl::StatusOr<WalkedPage> WalkUser(std::string_view user_id, absl::Time now,
                                      absl::Time after, size_t limit,
                                      bool for_destroy = false) const;
  // The user's live sessions, counted page by page until `cap` is reached
  // (max_sessions_per_user at Create): at most `cap` plus one page.
  absl::StatusOr<size_t> CountLiveUpTo(std::string_view user_id, absl::Time now,
                                       size_t cap) const;
  // Destroys `id` or, if it is no longer live, the session a Regenerate moved
  // it to (hop by hop); never `keep_id` nor, unless `verified`, a session
  // that is not the user's. Whether a live session was destroyed.
  absl::StatusOr<bool> DestroyFollowing(std::string id,
                                        std::string_view user_id,
                                        const std::string& keep_id,
                                        bool verified, absl::Time now,
                                        absl::Time tombstone_until);

  SessionStore* const store_;
  const crypto::Sealer* const sealer_;
  const crypto::CookieSigner* const signer_;
  RandomSource* const random_;
  const Clock* const clock_;
  const SessionPolicy policy_;
  SessionEvents* const events_;  // never null: a no-op sink if none given
  SessionChanges* changes_ = nullptr;  // SetChangeSink; may be null
  absl::AnyInvocable<void(ManagerStep)> step_hook_;  // tests only
};

}  // namespace stateside::session

#endif  // STATESIDE_SIDECAR_SESSION_SESSION_MANAGER_H_

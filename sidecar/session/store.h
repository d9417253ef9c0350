// The session store seam: what the session rules need from a backend (the
// embedded memory store, Redis). A store keeps only encrypted envelopes and
// blinded tags; it never sees a plaintext attribute or user id.
//
// Every operation is atomic with respect to the others on the same session id.
// Liveness, the same everywhere: a session is live at `now` iff it exists, is
// not a tombstone, now < last_access + idle_ttl and now < absolute_expiry.
// Errors: NOT_FOUND (absent, expired or tombstoned), ABORTED (expected_version
// mismatch), INVALID_ARGUMENT (a limit of the mutation would be exceeded; the
// message names it), ALREADY_EXISTS (Create on a used id), FAILED_PRECONDITION
// (CreateCapped: the user holds its cap of sessions), UNAVAILABLE (backend
// unreachable), RESOURCE_EXHAUSTED (memory store full).
//
// Implementations are safe for concurrent use.
#ifndef STATESIDE_SIDECAR_SESSION_STORE_H_
#define STATESIDE_SIDECAR_SESSION_STORE_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/time/time.h"
#include "sidecar/common/not_found.h"

namespace stateside::session {

// A session as the store holds it.
struct StoredSession {
  std::string id;
  std::string user_tag;       // blinded user id ("" if anonymous); index key
  std::string user_envelope;  // sealed user id ("" if anonymous)
  // Sealed copy of what must never change after creation (created, idle_ttl,
  // absolute_expiry, user_tag, user id): the session rules write it at
  // creation and check it on every read (session_manager.cc). Stores keep it
  // as given, like an envelope.
  std::string metadata_seal;
  absl::Time created;
  absl::Time last_access;
  absl::Duration idle_ttl;
  absl::Time absolute_expiry;
  uint64_t version = 0;
  // Attribute name -> sealed value. Empty when only metadata was asked for.
  absl::flat_hash_map<std::string, std::string> attributes;

  absl::Time idle_expiry() const {
    return std::min(last_access + idle_ttl, absolute_expiry);
  }
  bool LiveAt(absl::Time now) const {
    return now < last_access + idle_ttl && now < absolute_expiry;
  }
};

struct ReadOptions {
  absl::Time now;
  bool touch = true;           // set last_access = now if live (see below)
  bool metadata_only = false;  // skip the attributes
  // Touch coalescing: a touching read writes last_access only when the stored
  // one is at least TouchGranularity(touch_granularity, idle_ttl) older than
  // now, so most reads of a busy session write nothing (on Redis: no write,
  // nothing replicated). The idle expiry is then counted from a stored
  // last_access that may lag the true last read by less than that
  // granularity: a session may expire up to one granularity early, never
  // late. Zero: every touching read writes (an explicit Touch).
  absl::Duration touch_granularity = absl::ZeroDuration();
};

// The granularity a touching read of a session with this idle TTL uses: the
// configured one, but at most 1% of the idle TTL, so a short-lived session's
// expiry moves by at most a hundredth of its life.
inline absl::Duration TouchGranularity(absl::Duration configured, absl::Duration idle_ttl) {
  return std::min(configured, idle_ttl / 100);
}

// Whether a touching read at `now` writes a new last_access.
inline bool TouchDue(const ReadOptions& options, absl::Time last_access, absl::Duration idle_ttl) {
  return options.touch &&
         options.now - last_access >= TouchGranularity(options.touch_granularity, idle_ttl) &&
         options.now > last_access;
}

// Limits a mutation must keep; the store checks them against the merged
// state atomically (INVALID_ARGUMENT naming the limit).
// A limit of 0 is not checked.
struct MutationLimits {
  size_t max_attributes = 0;
  size_t max_total_bytes = 0;  // sum of name sizes + envelope sizes
};

// Removals apply before sets, so a name in both ends up set.
struct Mutation {
  absl::Time now;  // an update is an access: the new last_access when due
  // As ReadOptions::touch_granularity: last_access (and on Redis the key's
  // TTL) is written only when the stored one is a granularity old, so an
  // update of a busy session writes its attributes and counters alone.
  absl::Duration touch_granularity = absl::ZeroDuration();
  std::vector<std::pair<std::string, std::string>> set;  // name -> envelope
  std::vector<std::string> remove;
  std::optional<uint64_t> expected_version;
  MutationLimits limits;
};

// The per-user cap of CreateCapped.
struct UserCap {
  size_t max_sessions = 0;  // > 0
  // At the cap: end the user's oldest sessions (first in index order: the
  // earliest absolute expiry) to make room, instead of refusing.
  bool end_oldest = false;
  absl::Time tombstone_until;  // of the sessions it ends
};

// The NOT_FOUND of a read that met the session expired (and dropped it). To
// every caller it is the same NOT_FOUND; the payload only lets the session
// rules count expiries (stateside_sessions_expired_total).
// One page of a user's index (SessionStore::ListByUserPage).
struct UserIndexPage {
  // The live sessions among the entries read (metadata only), in index order.
  std::vector<StoredSession> sessions;
  // The successors recorded by Retire in the tombstones of entries read (a
  // backend whose listing is not atomic can meet an entry retired after it
  // read the index). Not checked to belong to the user.
  std::vector<std::string> successors;
  // Whether entries may follow; the next page then starts after `last`, the
  // absolute expiry of the last entry read.
  bool more = false;
  absl::Time last = absl::InfinitePast();
};

inline constexpr char kExpiredPayload[] = "type.stateside/session.expired";
inline absl::Status ExpiredNotFound() {
  absl::Status status = SessionNotFound();
  status.SetPayload(kExpiredPayload, absl::Cord("1"));
  return status;
}
inline bool IsExpiredNotFound(const absl::Status& status) {
  return absl::IsNotFound(status) && status.GetPayload(kExpiredPayload).has_value();
}

// One asynchronous Get or Update of a caller that reuses its per-call state
// (the sidecar's transports keep a pool of them, see session_manager.h):
// what the store reads (the id, the options or the mutation), what it
// keeps across its round trip (State) and the completion live here, so a
// store allocates no closure of its own. The owner reuses the object for its
// next call once `done` ran, after Recycle: the store's State is kept, the
// last call's data is not.
class StoreCall {
 public:
  using Completion = absl::AnyInvocable<void(absl::StatusOr<StoredSession>) &&>;

  // What a store keeps with the call across its round trip; made on the
  // call's first use by that store (StateOf) and kept for the next ones.
  class State {
   public:
    virtual ~State() = default;
  };

  virtual ~StoreCall() = default;

  std::string id;
  ReadOptions options;  // GetAsync
  Mutation mutation;    // UpdateAsync: values sealed
  // Runs once, with the store's answer (Finish). Meant to be a callback of
  // a pointer or two, which AnyInvocable holds without an allocation.
  Completion done;

  // Drops what the last call carried (its id, its sealed values, the names
  // it removed) before the owner keeps the object for a later call, so an
  // idle pooled call holds no session's data and no large buffer.
  virtual void Recycle() {
    id.clear();
    mutation.set.clear();
    mutation.set.shrink_to_fit();
    mutation.remove.clear();
    mutation.remove.shrink_to_fit();
  }

  // Runs `done`, moved out first: it may reuse or release this call.
  void Finish(absl::StatusOr<StoredSession> result) {
    Completion run = std::move(done);
    std::move(run)(std::move(result));
  }

  // The store's state of type T (a store keeps one type): made on first use.
  template <typename T>
  T& StateOf() {
    if (T* state = dynamic_cast<T*>(state_.get())) return *state;
    state_ = std::make_unique<T>();
    return static_cast<T&>(*state_);
  }

  // A call of its own for one plain (closure) async call: `done` gets the
  // answer, and the call is deleted once answered.
  static StoreCall* Alone(std::string_view id, Completion done);

 private:
  std::unique_ptr<State> state_;
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // Completion of the asynchronous forms. It runs exactly once, on the
  // calling thread or on a thread of the store's; it must not block.
  template <typename T>
  using Done = absl::AnyInvocable<void(absl::StatusOr<T>) &&>;

  // Inserts a new session (version as given) and indexes it under user_tag.
  // session.last_access is the current time (for liveness and tombstones).
  virtual absl::Status Create(const StoredSession& session) = 0;
  // Create without holding the caller's thread; the default runs it inline.
  virtual void CreateAsync(const StoredSession& session,
                           absl::AnyInvocable<void(absl::Status) &&> done) {
    std::move(done)(Create(session));
  }

  // Create of a session with a user_tag that keeps the live sessions indexed
  // under that tag at most cap.max_sessions, checked in the same atomic step
  // as the index entry, so concurrent creates cannot overshoot it: either
  // FAILED_PRECONDITION (nothing left behind) or, if cap.end_oldest, the
  // oldest entries are ended as Destroy ends them. Returns the ids ended.
  // A backend whose session and index live apart (Redis Cluster) ends them
  // one round trip after the index step (see docs/REDIS_KEYS.md).
  virtual absl::StatusOr<std::vector<std::string>> CreateCapped(
      const StoredSession& session, const UserCap& cap) = 0;

  // The live session, touched if TouchDue(options, ...). A session met expired is
  // ExpiredNotFound() (a lower bound of expiries: a backend may also drop
  // expired sessions unseen).
  virtual absl::StatusOr<StoredSession> Get(std::string_view id,
                                            const ReadOptions& options) = 0;

  // Get without holding the caller's thread for a round trip to the backend
  // (the gRPC threads are few). The default runs Get inline.
  virtual void GetAsync(std::string_view id, const ReadOptions& options,
                        Done<StoredSession> done) {
    std::move(done)(Get(id, options));
  }

  // Applies the mutation to a live session, increments the version by one and
  // sets last_access = now when due (Mutation::touch_granularity). Returns
  // the new metadata (no attributes).
  virtual absl::StatusOr<StoredSession> Update(std::string_view id,
                                               const Mutation& mutation) = 0;
  // Update without holding the caller's thread; the default runs it inline.
  virtual void UpdateAsync(std::string_view id, const Mutation& mutation,
                           Done<StoredSession> done) {
    std::move(done)(Update(id, mutation));
  }

  // GetAsync and UpdateAsync of a reused call (StoreCall): the id, the
  // options or the mutation are the call's, and call->done gets the answer.
  // A store keeps what it needs across its round trip in the call
  // (StoreCall::StateOf), not in a closure. The defaults run the plain
  // forms above with a callback of the call's pointer alone.
  virtual void GetAsync(StoreCall* call) {
    GetAsync(call->id, call->options,
             [call](absl::StatusOr<StoredSession> got) { call->Finish(std::move(got)); });
  }
  virtual void UpdateAsync(StoreCall* call) {
    UpdateAsync(call->id, call->mutation,
                [call](absl::StatusOr<StoredSession> updated) { call->Finish(std::move(updated)); });
  }

  // Replaces the session with a tombstone that lasts until `tombstone_until`
  // (so a late Update cannot resurrect it, and Create on the id answers
  // ALREADY_EXISTS) and removes it from its user's index. Returns whether a
  // live session existed. Destroying an id with no record at all need not
  // write anything (so destroying random ids costs no memory).
  virtual absl::StatusOr<bool> Destroy(std::string_view id, absl::Time now,
                                       absl::Time tombstone_until) = 0;
  // Destroy without holding the caller's thread; the default runs it inline.
  virtual void DestroyAsync(std::string_view id, absl::Time now, absl::Time tombstone_until,
                            Done<bool> done) {
    std::move(done)(Destroy(id, now, tombstone_until));
  }

  // Metadata of the live sessions indexed under user_tag (stale index entries
  // are pruned on the way).
  virtual absl::StatusOr<std::vector<StoredSession>> ListByUser(
      std::string_view user_tag, absl::Time now) = 0;
  // A page of the same, in order of absolute expiry: the entries whose
  // absolute expiry is after both `now` and `after` (absl::InfinitePast():
  // from the start), `limit` of them (> 0) and then every further entry with
  // the last one's absolute expiry, read in one atomic step. A page never
  // splits the entries of one absolute expiry, and a Regenerate's copy has
  // the old session's: a walk meets the old id or its copy (see
  // SessionManager::DestroyUserSessions). A page may hold fewer live
  // sessions than `limit`, or none, and still have more.
  virtual absl::StatusOr<UserIndexPage> ListByUserPage(
      std::string_view user_tag, absl::Time now, absl::Time after,
      size_t limit) = 0;

  // Regenerate's last step, atomic with respect to every other operation on
  // `id`: if the session is live and its version is still
  // `expected_version` (nothing was written since the copy), it becomes a
  // tombstone as Destroy makes one, recording `successor` (the copy's id) for
  // Successor(), and leaves its user's index. ABORTED (nothing changed) if
  // the version moved; NOT_FOUND if it is not live (it is then tombstoned as
  // Destroy would).
  virtual absl::Status Retire(std::string_view id, uint64_t expected_version,
                              std::string_view successor, absl::Time now,
                              absl::Time tombstone_until) = 0;
  // The successor a Retire recorded in the tombstone of `id`, or "" (not
  // retired, or its tombstone is gone). Lets a logout-everywhere follow a
  // session that a concurrent Regenerate moved after it was listed.
  virtual absl::StatusOr<std::string> Successor(std::string_view id) = 0;

  // The per-user revocation epoch (see SessionManager::DestroyUserSessions):
  // a counter per user tag, 0 until first advanced. AdvanceUserEpoch changes
  // it to a value it never had while it lasts (until `until`, at least as
  // long as any session of the user may live); UserEpoch reads it. The two
  // are atomic with respect to each other.
  virtual absl::StatusOr<uint64_t> UserEpoch(std::string_view user_tag) = 0;
  virtual absl::Status AdvanceUserEpoch(std::string_view user_tag,
                                        absl::Time now, absl::Time until) = 0;
};

namespace internal {
// StoreCall::Alone's call: the caller's callback, kept until answered.
class AloneStoreCall final : public StoreCall {
 public:
  StoreCall::Completion caller;
};
}  // namespace internal

inline StoreCall* StoreCall::Alone(std::string_view id, Completion done) {
  auto* call = new internal::AloneStoreCall();
  call->id = std::string(id);
  call->caller = std::move(done);
  call->done = [call](absl::StatusOr<StoredSession> result) {
    Completion caller = std::move(call->caller);
    delete call;
    std::move(caller)(std::move(result));
  };
  return call;
}

}  // namespace stateside::session

#endif  // STATESIDE_SIDECAR_SESSION_STORE_H_

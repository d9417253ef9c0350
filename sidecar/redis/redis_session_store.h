// SessionStore on Redis: every store rule (liveness from the stored times and
// the caller's `now`, touch, versions, expected_version, merged limits,
// tombstones, the user index) holds here as in the memory store. Get and
// Update are one EVALSHA round trip each; the key layout is documented in
// redis_session_store.cc and docs/REDIS_KEYS.md.
//
// Thread-safe. GetAsync, UpdateAsync, DestroyAsync and CreateAsync never block: they
// hand the command to the client, and `done` runs when Redis answers (on the
// client's I/O thread). The other calls block the calling thread until Redis answers
// (bounded by the client's command timeout); REQUIRES: those not called on
// the client's I/O thread. Redis unreachable -> UNAVAILABLE at once.
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_SESSION_STORE_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_SESSION_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sidecar/redis/near_cache.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/session/store.h"

namespace stateside::redis {

class RedisSessionStore final : public session::SessionStore {
 public:
  // REQUIRES: client (and near_cache, if any) outlive the store. `prefix`
  // starts every key. With a near cache (near_cache.h) plain reads are
  // answered from it when they can be, fill it through its tracked reader
  // when it is armed, and every write this store makes invalidates its key
  // once Redis answered it.
  explicit RedisSessionStore(RedisClient* client, std::string prefix = "stateside:",
                             SessionNearCache* near_cache = nullptr);

  absl::Status Create(const session::StoredSession& session) override;
  void CreateAsync(const session::StoredSession& session,
                   absl::AnyInvocable<void(absl::Status) &&> done) override;
  absl::StatusOr<std::vector<std::string>> CreateCapped(const session::StoredSession& session,
                                                        const session::UserCap& cap) override;
  absl::StatusOr<session::StoredSession> Get(std::string_view id, const session::ReadOptions& options) override;
  void GetAsync(std::string_view id, const session::ReadOptions& options,
                Done<session::StoredSession> done) override;
  absl::StatusOr<session::StoredSession> Update(std::string_view id, const session::Mutation& mutation) override;
  void UpdateAsync(std::string_view id, const session::Mutation& mutation,
                   Done<session::StoredSession> done) override;
  void GetAsync(session::StoreCall* call) override;
  void UpdateAsync(session::StoreCall* call) override;
  absl::StatusOr<bool> Destroy(std::string_view id, absl::Time now,
                               absl::Time tombstone_until) override;
  void DestroyAsync(std::string_view id, absl::Time now, absl::Time tombstone_until,
                    Done<bool> done) override;
  absl::StatusOr<std::vector<session::StoredSession>> ListByUser(std::string_view user_tag,
                                                        absl::Time now) override;
  absl::StatusOr<session::UserIndexPage> ListByUserPage(std::string_view user_tag, absl::Time now,
                                               absl::Time after, size_t limit) override;
  absl::Status Retire(std::string_view id, uint64_t expected_version, std::string_view successor,
                      absl::Time now, absl::Time tombstone_until) override;
  absl::StatusOr<std::string> Successor(std::string_view id) override;
  absl::StatusOr<uint64_t> UserEpoch(std::string_view user_tag) override;
  absl::Status AdvanceUserEpoch(std::string_view user_tag, absl::Time now,
                                absl::Time until) override;

  // An estimate of the live sessions in this Redis database: per master
  // (Cluster: each of them, `samples` shared out), DBSIZE times the fraction
  // of its RANDOMKEYs that are session hashes (not tombstones). Two
  // pipelined round trips per master, never a scan; approximate by design
  // (the stateside_sessions_live gauge). Blocking.
  absl::StatusOr<int64_t> EstimateLiveSessions(int samples = 64);

  // Key names, for tests and tools.
  std::string SessionKey(std::string_view id) const;
  std::string UserIndexKey(std::string_view user_tag) const;
  std::string UserEpochKey(std::string_view user_tag) const;

 private:
  // Create and CreateCapped: the session script and, for a user's session,
  // `index_step` on the index, pipelined. -> the index step's reply
  // (nil if none); ALREADY_EXISTS if the id is taken.
  absl::StatusOr<Reply> WriteNew(const session::StoredSession& s, std::optional<RedisCommand> index_step);
  // WriteNew's pipeline, and the reading of its replies.
  std::vector<RedisCommand> WriteNewBatch(const session::StoredSession& s,
                                          std::optional<RedisCommand> index_step) const;
  static absl::StatusOr<Reply> ParseWriteNew(std::vector<absl::StatusOr<Reply>> results);
  // Create's index step: the entry under the session's user tag (none
  // for an anonymous session).
  std::optional<RedisCommand> IndexStep(const session::StoredSession& s) const;

  // A Get is first a plain read (HGETALL, or HMGET of the metadata): a live
  // session whose access need not be written (ReadOptions::touch_granularity)
  // is answered from it alone, with no script and no write. Otherwise (an
  // expired session to delete, a touch due, or a touch with no granularity,
  // which goes there at once) the get script decides atomically, and its
  // answer is the read's. The sync and async forms share the commands and
  // the reading of their replies.
  RedisCommand ReadCommand(std::string_view id, const session::ReadOptions& options) const;
  // The plain read's reply into *out: NOT_FOUND (absent, tombstone), true
  // (*out is the answer) or false (the script must decide).
  static absl::StatusOr<bool> ParseRead(std::string_view id, const session::ReadOptions& options,
                                        absl::StatusOr<Reply> reply, session::StoredSession* out);
  // The near cache's part of a plain read: its answer (a hit), or the
  // client to send the read with and the fill its answer ends.
  struct CachedRead {
    std::optional<session::StoredSession> hit;
    std::optional<SessionNearCache::Fill> fill;
    RedisClient* client = nullptr;
  };
  CachedRead StartRead(std::string_view id, const session::ReadOptions& options);
  // The read went to the near cache's reader and found it down (UNAVAILABLE):
  // it is read again on the store's own client.
  static bool ReaderFailed(const CachedRead& started, const absl::StatusOr<Reply>& reply);
  // What a call keeps across its round trip (redis_session_store.cc).
  struct CallState;
  // The call's CallState, set up for this store.
  CallState& StateOf(session::StoreCall* call) const;
  void GetAsync(session::StoreCall* call, bool on_store_client);
  // The plain read's answer. `store` is only used past an answer (or a
  // failed near-cache reader): the clients fail what is outstanding when
  // destroyed, after the store.
  static void ReadDone(RedisSessionStore* store, session::StoreCall* call,
                       absl::StatusOr<Reply> reply);
  // Ends the fill (if any) with a settled read's session.
  static void EndRead(SessionNearCache* cache, const CachedRead& started,
                      const absl::StatusOr<bool>& settled, const session::StoredSession& read);
  // A write of the session was answered: the near cache forgets it.
  void Written(std::string_view id);
  // Written(id) for a callback, without the store (which may be gone when a
  // client's destructor fails what is outstanding).
  std::function<void()> WrittenLater(std::string_view id) const;
  // Whether a Get goes straight to the script (it writes on every read).
  static bool ScriptFirst(const session::ReadOptions& options);
  void GetByScript(session::StoreCall* call);
  // A write of the call's session was answered: the near cache forgets it
  // (without the store, as WrittenLater).
  static void WrittenBy(session::StoreCall* call);
  // UpdateAsync of `m` (the call's own, or a plain call's), answering `call`.
  void SendUpdate(session::StoreCall* call, const session::Mutation& m);
  RedisCommand GetCommand(std::string_view id, const session::ReadOptions& options) const;
  static absl::StatusOr<session::StoredSession> ParseGet(std::string_view id,
                                                absl::StatusOr<Reply> reply);
  RedisCommand UpdateCommand(std::string_view id, const session::Mutation& mutation) const;
  static absl::StatusOr<session::StoredSession> ParseUpdate(std::string_view id,
                                                   std::optional<uint64_t> expected_version,
                                                   absl::StatusOr<Reply> reply);

  // The destroy script (Destroy, or Retire with its extra arguments), then
  // the index entry's removal. -> the script's code: 1 was live, 0 was not,
  // 2 Retire found the version moved.
  absl::StatusOr<int64_t> Tombstone(std::string_view id, std::vector<std::string> args);
  // Tombstone's script, and the reading of its reply: the code and the
  // user tag whose index entry is to go ("" if none).
  RedisCommand TombstoneCommand(std::string_view id, std::vector<std::string> args) const;
  static absl::StatusOr<std::pair<int64_t, std::string>> ParseTombstone(
      absl::StatusOr<Reply> reply);

  // The metadata of the index members `ids`, pipelined: live sessions of
  // the tag into page->sessions, successors of tombstones into
  // page->successors; the other entries are pruned.
  absl::Status ReadIndexed(std::string_view user_tag, absl::Time now,
                           const std::vector<std::string>& ids, session::UserIndexPage* page);

  RedisClient* const client_;
  const std::string prefix_;
  SessionNearCache* const near_cache_;
  const std::shared_ptr<const RedisScript> create_;
  const std::shared_ptr<const RedisScript> get_;
  const std::shared_ptr<const RedisScript> update_;
  const std::shared_ptr<const RedisScript> destroy_;
  const std::shared_ptr<const RedisScript> reap_;
  const std::shared_ptr<const RedisScript> index_add_;
  const std::shared_ptr<const RedisScript> index_add_capped_;
  const std::shared_ptr<const RedisScript> index_page_;
  const std::shared_ptr<const RedisScript> epoch_advance_;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_SESSION_STORE_H_

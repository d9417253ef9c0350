// The sessions' near cache (STATESIDE_SESSION_NEAR_CACHE): session hashes
// read by this sidecar kept in its memory, coherent with Redis through
// client-side caching in default (key-based) tracking mode, RESP2 style:
//
//   - an invalidation connection (a RedisSubscriber named
//     "stateside-nc-<random>") asks its CLIENT ID in its handshake and
//     subscribes to __redis__:invalidate;
//   - a dedicated reader (a RedisClient of one connection) carries every read
//     whose answer may be cached, after `CLIENT TRACKING ON REDIRECT <that id>`
//     and a `CLIENT LIST ID <id>` in the same pipeline that proves the id
//     names our invalidation connection on the same server (client ids are
//     per server; after a Sentinel failover the two may briefly sit on
//     different nodes) and that it is subscribed already (`sub=1`: Redis
//     drops, and forgets, an invalidation whose redirect target has no
//     subscription; the handshake may complete before the SUBSCRIBE, so the
//     cache tries again when Redis confirms the channel). Until that answer, and from any loss of either
//     connection until the next such answer, the cache is not "armed": reads
//     go to the store's own client and nothing is cached.
//
// Under Sentinel the store's client, the reader and the invalidation
// connection each follow their own monitor: while the store's client
// (SetStoreClient) is on another master than the reader, nothing is served
// or filled. A failed arm is retried on a backoff and its reason reported
// (SetArmErrorListener, stats().arm_error).
//
// Every way tracking can be lost flushes everything and disarms: the reader's
// connection lost (CLIENT KILL, restart, failover: Sentinel moves it), the
// invalidation connection lost or moved, and an invalidation with no key list
// (FLUSHALL, FLUSHDB). The reply/invalidation race is closed per key: a fill
// records the key's generation when its read is sent, an invalidation of the
// key (or any flush) moves it, and the reply is cached only if it has not
// moved, so a reply fetched before an invalidation that came in before the
// reply is never cached. A local write that is acknowledged invalidates its
// key at once (before the invalidation message arrives), so this sidecar
// reads its own writes.
//
// The cache never decides liveness on its own: a hit is returned only when
// the plain read would have settled the Get (live at the caller's `now`, no
// touch due); anything else goes to Redis as before.
//
// Bounded by the bytes of the sessions held (their ids, sealed attribute
// envelopes and metadata); least recently used entries go first.
//
// Standalone and Sentinel only: on Cluster tracking is per node, and Create
// refuses it. Thread-safe.
#ifndef STATESIDE_SIDECAR_REDIS_NEAR_CACHE_H_
#define STATESIDE_SIDECAR_REDIS_NEAR_CACHE_H_

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_options.h"
#include "sidecar/redis/reply.h"
#include "sidecar/session/store.h"

namespace stateside::redis {

class RedisSubscriber;

class SessionNearCache {
 public:
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t fills = 0;          // reads whose answer was cached
    uint64_t fills_refused = 0;  // answers not cached: an invalidation or flush came first
    uint64_t invalidations = 0;  // keys invalidated (by Redis or by a local write)
    uint64_t flushes = 0;        // whole-cache flushes
    uint64_t evictions = 0;      // entries dropped for the byte bound
    size_t entries = 0;
    size_t bytes = 0;
    bool armed = false;
    uint64_t arm_failures = 0;  // answers that refused to arm (see arm_error)
    // Why the last attempt to arm failed ("" once armed): the failing reply
    // (NOPERM, an unknown command...) or the check that did not hold.
    std::string arm_error;
  };

  // A read that may fill the cache. `client` is where to send it: the
  // tracked reader, or null when the cache is not armed (send it with your
  // own client; nothing will be cached).
  struct Fill {
    std::string key;
    RedisClient* client = nullptr;
    uint64_t epoch = 0;
    uint64_t generation = 0;
  };

  // `options`: the sidecar's Redis options (the reader and the invalidation
  // connection are made from them). INVALID_ARGUMENT naming
  // STATESIDE_SESSION_NEAR_CACHE on Cluster, and for unusable options.
  // `subscribe`: tests only; false leaves the invalidation connection
  // without its subscription (a cache that must never arm).
  static absl::StatusOr<std::unique_ptr<SessionNearCache>> Create(RedisOptions options,
                                                                  size_t max_bytes,
                                                                  bool subscribe = true);
  // Close()s.
  ~SessionNearCache();
  // Closes the reader and the invalidation connection (their destructors
  // fail what is outstanding, running the store's callbacks: close the cache
  // before the session store and its client go). Afterwards the cache is
  // never armed. REQUIRES: no other call runs or starts.
  void Close();
  SessionNearCache(const SessionNearCache&) = delete;
  SessionNearCache& operator=(const SessionNearCache&) = delete;

  // The session cached under `key` if it answers `options` as a plain read
  // would settle it (see above); metadata_only: without its attributes.
  // Counts a hit or a miss.
  std::optional<session::StoredSession> Lookup(const std::string& key,
                                               const session::ReadOptions& options);
  // Before the read of `key` is sent; every Begin is followed by one End,
  // with the read's answer (null: nothing to cache: an error, a metadata
  // read, a session the store had to pass to its script).
  Fill BeginFill(std::string key);
  void EndFill(const Fill& fill, const session::StoredSession* read);
  // A write of `key` was acknowledged by Redis.
  void Invalidate(std::string_view key);

  // Sentinel: the client the store writes with (REQUIRES: outlives the
  // cache; null: none). It follows its own Sentinel monitor, so after a
  // failover it may write on the new master while the reader still reads
  // the old one: while their masters differ the cache answers no hit and
  // fills nothing (the reader's move then flushes it), so this sidecar
  // still reads its own writes. Call before the first read.
  void SetStoreClient(RedisClient* client);

  // Hears why arming failed, once per change of the reason (the failing
  // reply: NOPERM from an ACL without +client|list, an unknown command...),
  // and "" when the cache arms after a failure; on an I/O or the retry
  // thread, without the cache's lock. While both connections are up and the
  // cache is not armed it tries again on a backoff (0.1 s doubling to 30 s).
  void SetArmErrorListener(std::function<void(const std::string& error)> listener);

  // Armed: both connections are up and tracking is confirmed.
  bool armed() const;
  Stats stats() const;
  // Waits (up to `timeout`) for armed(); returns armed().
  bool WaitArmed(absl::Duration timeout) const;

  // Tests: runs in EndFill before the answer is judged (without the cache's
  // lock; on the reader's I/O thread for an asynchronous Get, on the
  // caller's thread for a synchronous one), to order an invalidation
  // between a read's reply and its fill deterministically.
  void SetFillHookForTest(std::function<void(const std::string& key)> hook);
  // Tests: the client ids (0 when unknown) of the invalidation connection
  // and of the reader's connection when it was last armed, to CLIENT KILL
  // them.
  int64_t invalidation_client_id() const;
  int64_t reader_client_id() const;

 private:
  struct Entry {
    // Immutable and shared: a hit is copied out of the lock.
    std::shared_ptr<const session::StoredSession> session;
    size_t bytes = 0;
    std::list<std::string>::iterator lru;
  };
  struct InFlight {
    int readers = 0;
    uint64_t generation = 0;
  };

  SessionNearCache(size_t max_bytes, std::string name);

  // Connection events (each on its connection's I/O thread).
  void OnClientId(int64_t id);
  void OnInvalidationUp();
  void OnInvalidationDown();
  void OnReaderState(bool connected);
  void OnInvalidation(const Reply& payload);
  // Sends CLIENT TRACKING + CLIENT LIST ID on the reader; arms on success.
  void Arm();
  // Why the replies to Arm's pipeline do not arm ("" when they do).
  std::string ArmRefusal(const std::vector<absl::StatusOr<Reply>>& replies) const;

  // Sentinel: the store's client and the reader use the same master (true
  // without a store client or outside Sentinel).
  bool SameMaster() const;

  // The retry thread: calls Arm() when retry_at_ is due.
  void RetryLoop();

  // Tracking lost: everything goes, nothing in flight may fill.
  void DisarmLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(std::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_bytes_;
  bool sentinel_ = false;
  RedisClient* store_client_ = nullptr;  // Sentinel only; set before use
  const std::string name_;  // the invalidation connection's CLIENT SETNAME

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
  absl::flat_hash_map<std::string, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;      // moved by every flush
  uint64_t tracking_ ABSL_GUARDED_BY(mu_) = 0;   // moved by every loss or gain of a connection
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  bool invalidation_up_ ABSL_GUARDED_BY(mu_) = false;
  int64_t pending_id_ ABSL_GUARDED_BY(mu_) = 0;  // from the handshake, until subscribed
  int64_t invalidation_id_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reader_id_ ABSL_GUARDED_BY(mu_) = 0;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::function<void(const std::string&)> fill_hook_ ABSL_GUARDED_BY(mu_);
  std::function<void(const std::string&)> arm_error_listener_ ABSL_GUARDED_BY(mu_);
  // The next retry of a failed Arm (InfiniteFuture: none due) and the wait
  // after the one after it.
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Duration retry_backoff_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Declared last: destroyed first, so no callback runs on a dead cache.
  std::unique_ptr<RedisClient> reader_;
  std::unique_ptr<RedisSubscriber> invalidations_;
  std::thread retry_thread_;  // joined first by the destructor
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_NEAR_CACHE_H_

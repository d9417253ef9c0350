// The rewrap sweep (`statesidectl keys rewrap`): moves every stored value
// sealed under an older key of the keyring to the primary key, so that the
// older key can leave the keyring without losing anything, and reseals the
// session values still in version-1 envelopes under the primary as version 2
// (crypto::Sealer::IsCurrent; an opt-out subject under the primary is left
// as it is: it opens, and its flag moves only when its tag does). It visits the
// session hashes ("<p>s:{id}": attribute envelopes, the sealed user id and the
// user index tag derived from it) and the opt-out flags ("<p>o:{tag}": a flag
// stored with its sealed subject is re-filed under the primary's tag).
//
// Only the sidecar holds keys, so the sweep runs here, on a thread of its
// own, and the admin listener starts it and reports its progress.
//
// - Never loses a concurrent write: each value is replaced inside a Lua
//   script only if it still holds the exact bytes the sweep read; otherwise
//   the writer (who sealed under its own primary) wins and the sweep counts a
//   conflict and moves on.
// - Resumable: the SCAN cursor and the counters are saved in "<p>rewrap"
//   after every batch; Start() after a restart continues a sweep that was
//   running for the same primary key. Running it again is harmless (values
//   already under the primary are only counted).
// - Rate-limited: at most `items_per_second` keys visited per second.
//
// Thread-safety: every public method may be called from any thread but the
// Redis client's I/O thread (they block on Redis). The destructor stops the
// sweep (its saved state lets the next Start continue).
#ifndef STATESIDE_SIDECAR_REDIS_REWRAP_SWEEP_H_
#define STATESIDE_SIDECAR_REDIS_REWRAP_SWEEP_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/redis/redis_client.h"

namespace stateside::redis {

struct RewrapOptions {
  std::string prefix = "stateside:";
  // Keys (sessions and opt-out flags) visited per second, at most.
  double items_per_second = 500;
  std::string owner;  // the instance running it (reported only)
};

// Counts per key id, over the values the sweep found.
struct RewrapKeyCounts {
  uint64_t found = 0;      // envelopes found under this key id
  uint64_t rewrapped = 0;  // moved to the primary
  // Found and still under this key: its id is not in the keyring, it did
  // not open, or Redis failed. Zero for every old key once a sweep is done
  // means nothing it saw still needs that key. Never counted for the
  // primary: a value under it needs no old key, whatever became of it.
  uint64_t left = 0;
  // Did not open under this key (tampered, or sealed under other bytes for
  // the same id): it reads as not found. Under an old key it is also left
  // (the right bytes for that id may still open it); under the primary it
  // is only counted here.
  uint64_t unopenable = 0;
};

struct RewrapProgress {
  // "idle" (never run here or in Redis), "running", "done", or "failed"
  // (stopped on an error: Start continues from the last saved batch).
  std::string state = "idle";
  std::string primary;      // the key id everything moves to
  std::string owner;        // instance that ran the last batch
  std::string cursor = "0";  // SCAN cursor of the next batch
  absl::Time started = absl::InfinitePast();
  absl::Time updated = absl::InfinitePast();
  uint64_t sessions = 0;    // session hashes visited (tombstones excluded)
  uint64_t opt_outs = 0;    // opt-out flags visited
  // Flags stored without a sealed subject (written before sealed subjects):
  // the sweep cannot re-file them; a read does (OptOutManager::Get).
  uint64_t unsealed_opt_outs = 0;
  uint64_t conflicts = 0;   // a value changed under the sweep: the writer won
  uint64_t errors = 0;      // Redis failures, malformed values, failed reseals
  std::string last_error;
  double items_per_second = 0;
  std::map<std::string, RewrapKeyCounts> keys;  // by key id
};

// The sweep's compare-and-set of one session hash (rewrap_sweep.cc says its
// arguments and reply); exposed for tests.
extern const char kRewrapSessionScript[];

// {"state":..., "keys": {"k1": {"found":..,"rewrapped":..,"left":..,
// "unopenable":..}}, ...}
std::string RewrapProgressJson(const RewrapProgress& progress);

class RewrapSweep {
 public:
  // REQUIRES: every pointer outlives the sweep; options.items_per_second > 0.
  RewrapSweep(RedisClient* client, const crypto::Sealer* sealer,
              const Clock* clock, RewrapOptions options);
  ~RewrapSweep();
  RewrapSweep(const RewrapSweep&) = delete;
  RewrapSweep& operator=(const RewrapSweep&) = delete;

  // Starts a sweep, or continues the saved one (running for the same
  // primary key), on the sweep's thread; a sweep already running here is
  // left alone. A finished one is started anew (from cursor 0). Returns the
  // progress at start. UNAVAILABLE if the saved state cannot be read.
  // `items_per_second` > 0 overrides options.items_per_second for this run.
  absl::StatusOr<RewrapProgress> Start(double items_per_second = 0);

  // The progress of this process's sweep, or else the saved one.
  absl::StatusOr<RewrapProgress> Progress();

  // Stops the thread (blocks until it has); the saved state stays.
  void Stop();

  // The saved state's key: "<prefix>rewrap".
  std::string StateKey() const;

 private:
  void Run();
  // One SCAN batch: visits its keys (paced) and saves the state. False when
  // the sweep must end (done, failed, or stopped).
  bool Batch();
  void VisitSession(const std::string& key, RewrapProgress& delta);
  void VisitOptOut(const std::string& key, RewrapProgress& delta);
  absl::Status Save(const RewrapProgress& progress);
  absl::StatusOr<RewrapProgress> Load();
  // Waits for the next rate slot; false if stopped meanwhile.
  bool Pace();

  RedisClient* const client_;
  const crypto::Sealer* const sealer_;
  const Clock* const clock_;
  const RewrapOptions options_;
  const std::shared_ptr<const RedisScript> rewrap_session_;
  const std::shared_ptr<const RedisScript> index_add_;

  absl::Mutex mu_;
  RewrapProgress progress_ ABSL_GUARDED_BY(mu_);
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;  // progress_ is meaningful
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // touched under start_mu_ only
  absl::Mutex start_mu_;  // serializes Start and Stop
  // The sweep thread's own; set by Start before it starts the thread.
  absl::Time next_slot_ = absl::InfinitePast();
  double rate_ = 0;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REWRAP_SWEEP_H_

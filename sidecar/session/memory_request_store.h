// The embedded request-id store: entries in this process's memory, each with
// its own expiry, at most `max_entries` of them (a Claim on a full store
// first drops the expired ones, then answers RESOURCE_EXHAUSTED). Thread-safe:
// one mutex; Replace completes inline.
#ifndef STATESIDE_SIDECAR_SESSION_MEMORY_REQUEST_STORE_H_
#define STATESIDE_SIDECAR_SESSION_MEMORY_REQUEST_STORE_H_

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/session/request_store.h"

namespace stateside::session {

class MemoryRequestStore final : public RequestStore {
 public:
  // REQUIRES: max_entries > 0.
  explicit MemoryRequestStore(size_t max_entries) : max_entries_(max_entries) {}

  MemoryRequestStore(const MemoryRequestStore&) = delete;
  MemoryRequestStore& operator=(const MemoryRequestStore&) = delete;

  absl::StatusOr<std::optional<std::string>> Claim(std::string_view key, std::string_view value,
                                                   absl::Time now, absl::Time until) override;
  void Replace(std::string_view key, std::string_view expected, std::string_view value,
               absl::Time now, absl::Time until, Done done) override;

  // Drops the entries expired at `now`; returns how many. O(entries).
  size_t Sweep(absl::Time now);
  // Entries held (including expired ones not yet swept).
  size_t size() const;

 private:
  struct Entry {
    std::string value;
    absl::Time until;
  };

  // Constant after construction.
  const size_t max_entries_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside::session

#endif  // STATESIDE_SIDECAR_SESSION_MEMORY_REQUEST_STORE_H_

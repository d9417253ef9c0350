// Watching a Sentinel deployment from a test: which data node was promoted
// and when (to within a poll), and whether a node has connections of a
// client (ours) rather than of the sentinels and replicas.
// PromotionWatch runs its own thread; the functions are stateless.
#ifndef STATESIDE_TESTS_INTEGRATION_REDIS_SENTINEL_WATCH_H_
#define STATESIDE_TESTS_INTEGRATION_REDIS_SENTINEL_WATCH_H_

#include <atomic>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tests/support/redis_sentinel.h"

namespace stateside::testing {

// Clients of a node other than the sentinels, its replicas and redis-cli
// itself: the connections our client holds there. A connection that has
// sent nothing yet (cmd=NULL) is a sentinel's before its CLIENT SETNAME:
// ours send their handshake at once.
inline int ForeignClients(RedisServer& node, std::string* list = nullptr) {
  RunResult r = node.Cli({"CLIENT", "LIST"});
  if (list != nullptr) *list = r.out;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    if (absl::StrContains(line, "name=sentinel-") || absl::StrContains(line, "cmd=client") ||
        absl::StrContains(line, "cmd=NULL") ||
        absl::StrContains(line, "flags=S") || absl::StrContains(line, "flags=M") ||
        absl::StrContains(line, "cmd=replconf") || absl::StrContains(line, "cmd=psync") ||
        absl::StrContains(line, "cmd=sync")) {
      continue;
    }
    ++n;
  }
  return n;
}

// Watches the data nodes (all but `old_master`) until one reports ROLE
// master: when the promotion happened, to within a poll.
class PromotionWatch {
 public:
  PromotionWatch(RedisSentinelSet* set, int old_master)
      : thread_([this, set, old_master] {
          while (!stop_.load()) {
            for (int i = 0; i < set->node_count(); ++i) {
              if (i == old_master || !set->node(i).running()) continue;
              if (set->Role(i) == "master") {
                absl::MutexLock lock(&mu_);
                promoted_at_ = absl::Now();
                promoted_ = i;
                return;
              }
            }
          }
        }) {}
  ~PromotionWatch() {
    stop_.store(true);
    thread_.join();
  }
  // The node promoted and when (-1 until then).
  int promoted(absl::Time* at) {
    absl::MutexLock lock(&mu_);
    *at = promoted_at_;
    return promoted_;
  }

 private:
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  int promoted_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Time promoted_at_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_INTEGRATION_REDIS_SENTINEL_WATCH_H_

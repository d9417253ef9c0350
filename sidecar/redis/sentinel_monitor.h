// Sentinel: which node is the master of options.sentinel_master, as the
// sentinels (options.nodes) say. The monitor asks them in turn SENTINEL
// GET-MASTER-ADDR-BY-NAME (after AUTH when sentinel_password is set, over TLS
// when the URL says rediss://), keeps a subscription to +switch-master (and
// +promoted-slave, which the failover's leader sends first) on one of them, and asks again when that subscription is lost, when its owner says
// a node turned out not to be the master (Refresh), and every
// refresh_interval. The listener hears every change of the master's address
// and of the monitor's error.
//
// The subscription outranks the questions: a push moves the master at once,
// the answer of a question asked before the latest push is dropped, and after
// a push naming old -> new an answer naming the old master again (a sentinel
// that has not switched yet) is passed over for `stale_grace` or until a
// sentinel names the new one; only another push moves back to it sooner.
//
// Thread-safety: Start, Refresh and Shutdown run on the io_context's single
// thread, where the listener is called too; master(), last_error(),
// changes() and subscribed_to() may be called from any thread.
#ifndef STATESIDE_SIDECAR_REDIS_SENTINEL_MONITOR_H_
#define STATESIDE_SIDECAR_REDIS_SENTINEL_MONITOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/redis/redis_options.h"
#include "sidecar/redis/reply.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace stateside::redis {

class TransportFactory;

class SentinelMonitor {
 public:
  // `master` is the address now in use (nullopt: none known); `error` is OK
  // while the sentinels answer and know the master. Errors (as statuses):
  // FAILED_PRECONDITION for a master name the sentinels do not know (naming
  // REDIS_SENTINEL_MASTER) or a refused sentinel AUTH (naming
  // REDIS_SENTINEL_PASSWORD), UNAVAILABLE when no sentinel answers (naming
  // REDIS_URL).
  using Listener =
      std::function<void(const std::optional<RedisNode>& master, const absl::Status& error)>;

  // REQUIRES: `io` and `factory` (which makes the transports to the
  // sentinels, TLS included) outlive the monitor; options.nodes is not empty.
  SentinelMonitor(boost::asio::io_context* io, TransportFactory* factory,
                  const RedisOptions& options, Listener listener,
                  absl::Duration refresh_interval = absl::Seconds(5),
                  absl::Duration stale_grace = absl::Seconds(60));
  ~SentinelMonitor();
  SentinelMonitor(const SentinelMonitor&) = delete;
  SentinelMonitor& operator=(const SentinelMonitor&) = delete;

  // I/O thread only.
  void Start();
  // Asks the sentinels again now (a node said it is not the master).
  void Refresh();
  // Closes every sentinel connection; the listener is not called again.
  void Shutdown();

  // Any thread.
  std::optional<RedisNode> master() const;
  absl::Status last_error() const;
  uint64_t changes() const;          // master address changes after the first
  std::string subscribed_to() const;  // "host:port" of the +switch-master link, "" if none
  // When a sentinel last named the master in use before the latest move
  // (InfinitePast before any move): the old master may have stopped being
  // the master at any moment since.
  absl::Time previous_master_confirmed_at() const;

 private:
  class Link;
  struct Outcome;

  void Resolve();
  void AskNext();
  void OnAnswer(Outcome outcome);
  void Subscribe();
  absl::Status OnSwitchMessage(const std::string& channel, const std::string& payload);
  void ArmTick();
  void Publish(std::optional<RedisNode> master, absl::Status error);

  // Constant after construction.
  boost::asio::io_context* const io_;
  TransportFactory* const factory_;
  const RedisOptions options_;
  const Listener listener_;
  const absl::Duration refresh_interval_;
  const absl::Duration stale_grace_;
  const std::string sentinels_;  // "h1:p1,h2:p2" for messages

  // I/O thread only.
  bool closed_ = false;
  bool resolving_ = false;
  bool again_ = false;          // a Refresh came during a resolve
  size_t asking_ = 0;           // index of the sentinel asked now
  size_t asked_ = 0;            // sentinels asked in this round
  size_t preferred_ = 0;        // where the next round starts (the last that answered)
  int unknown_answers_ = 0;     // this round: sentinels that do not know the name
  int stale_answers_ = 0;       // this round: sentinels naming superseded_
  absl::Status auth_error_;     // this round: a refused AUTH
  absl::Status unreachable_;    // this round: the last transport failure
  std::shared_ptr<Link> query_;
  std::shared_ptr<Link> subscription_;
  size_t subscription_index_ = 0;
  bool subscribed_ = false;     // the SUBSCRIBE was confirmed
  int pings_owed_ = 0;          // on the subscription
  uint64_t pushes_ = 0;         // master moves heard on the subscription
  uint64_t round_pushes_ = 0;   // pushes_ when this round began
  std::optional<RedisNode> superseded_;  // the old master of the latest push
  absl::Time superseded_until_;          // ... passed over in answers until then
  boost::asio::steady_timer tick_;

  // Shared with other threads.
  mutable absl::Mutex mu_;
  std::optional<RedisNode> master_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  uint64_t changes_ ABSL_GUARDED_BY(mu_) = 0;
  std::string subscribed_to_ ABSL_GUARDED_BY(mu_);
  absl::Time confirmed_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time previous_confirmed_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// "host:port".
std::string NodeName(const RedisNode& node);

// The first element of a ROLE reply ("master", "slave", "sentinel"), "" if
// the reply is not one.
std::string RoleOf(const Reply& role_reply);

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_SENTINEL_MONITOR_H_

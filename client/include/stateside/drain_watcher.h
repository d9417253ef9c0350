// stateside::DrainWatcher: tells the app when its sidecar starts to drain.
// Thread-safe: its methods may be called from any thread; the callback runs
// on the watcher's own thread.
//
// Contract
// - Start() spawns one thread that keeps a LifecycleService.WatchDrain
//   stream open on its own connection to the sidecar (the same socket as
//   the Client's options) and returns at once; it never waits for the
//   sidecar.
// - The callback runs once with kDraining (and the deadline by which the
//   app must call Client::ReportDrained) and once with kDrained (the
//   sidecar is shutting down), in that order; SERVING is not reported.
//   A stream that starts at DRAINED (the watcher attached late) reports
//   only kDrained.
// - A stream that breaks before DRAINED (sidecar restarted, UNAVAILABLE,
//   any error) is re-opened after a backoff (initial_backoff doubling up to
//   max_backoff); each new stream waits for the socket to come back.
//   Re-attaching never repeats a notice already given. After DRAINED, or
//   once the sidecar ends the stream normally, the watcher stops.
// - The destructor cancels the stream and joins the thread; it does not
//   wait for the sidecar. REQUIRES: not called from inside the callback.
// - The callback may block (it only delays later notices), but must not
//   destroy the watcher.
#ifndef STATESIDE_CLIENT_INCLUDE_STATESIDE_DRAIN_WATCHER_H_
#define STATESIDE_CLIENT_INCLUDE_STATESIDE_DRAIN_WATCHER_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stateside/client.h"
#include "stateside/types.h"

namespace stateside {

struct DrainWatcherOptions {
  // Wait before re-opening a broken stream: initial_backoff, doubling up to
  // max_backoff, each wait uniform in [cap/2, cap]. 0 < initial <= max.
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(2);
};

class DrainWatcher {
 public:
  using Callback = std::function<void(const DrainNotice&)>;

  // Watches the sidecar at client_options.socket_path (other client
  // options are not used). INVALID_ARGUMENT for bad options or an empty
  // callback.
  static absl::StatusOr<std::unique_ptr<DrainWatcher>> Start(
      const ClientOptions& client_options, Callback callback,
      DrainWatcherOptions options = {});
  // The same, for the sidecar `client` talks to.
  static absl::StatusOr<std::unique_ptr<DrainWatcher>> Start(
      const Client& client, Callback callback, DrainWatcherOptions options = {});

  ~DrainWatcher();
  DrainWatcher(const DrainWatcher&) = delete;
  DrainWatcher& operator=(const DrainWatcher&) = delete;

  // The last state the sidecar reported (kUnspecified before the first).
  DrainState state() const;
  // How many streams have delivered at least one event: 1 normally, more
  // after re-attaching (for monitoring and tests).
  int attached_count() const;
  // Whether the watcher has stopped (DRAINED seen or the stream ended).
  bool done() const;

 private:
  class Impl;
  explicit DrainWatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;  // constant after construction
};

}  // namespace stateside

#endif  // STATESIDE_CLIENT_INCLUDE_STATESIDE_DRAIN_WATCHER_H_

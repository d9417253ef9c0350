// WriteLane: one batch in flight, the rest queued behind it.
#include "sidecar/redis/write_lane.h"

#include <atomic>
#include <iterator>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace stateside::redis {

WriteLane::WriteLane(RedisClient* client, size_t max_commands, size_t max_bytes)
    : client_(client),
      max_commands_(max_commands),
      max_bytes_(max_bytes),
      inflight_(std::make_shared<InFlight>()),
      idle_(inflight_->idle.get_future()) {}

WriteLane::~WriteLane() {
  {
    // Once idle, nothing dispatches a batch (which copies inflight_) again.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](bool* busy) { return !*busy; }, &busy_));
  }
  inflight_.reset();
  idle_.wait();  // the last batch callback has let go of the lane
}

void WriteLane::Submit(std::vector<RedisCommand> commands, Done done) {
  const size_t n = commands.size();
  size_t bytes = 0;
  for (const RedisCommand& c : commands) {
    for (const std::string& arg : c.args) bytes += arg.size();
  }
  absl::Status refusal;
  if (!client_->connected()) {
    const absl::Status last = client_->last_error();
    refusal = absl::UnavailableError(absl::StrCat("redis: not connected",
                                                  last.ok() ? "" : " (", last.message(),
                                                  last.ok() ? "" : ")"));
  } else {
    absl::MutexLock lock(&mu_);
    if (commands_ + n > max_commands_ || bytes_ + bytes > max_bytes_) {
      refusal = absl::UnavailableError("redis: too many writes waiting for Redis");
    } else {
      queue_.push_back(Item{std::move(commands), std::move(done)});
      commands_ += n;
      bytes_ += bytes;
      if (busy_) return;  // the batch in flight sends it next
      busy_ = true;
    }
  }
  if (!refusal.ok()) return done(Results(n, refusal));
  Pump();
}

void WriteLane::Pump() {
  for (;;) {
    std::vector<Item> items;
    {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        busy_ = false;
        return;
      }
      items.swap(queue_);
      commands_ = 0;
      bytes_ = 0;
    }
    std::vector<RedisCommand> commands;
    std::vector<size_t> counts;
    for (Item& item : items) {
      counts.push_back(item.commands.size());
      for (RedisCommand& c : item.commands) commands.push_back(std::move(c));
    }
    // Whichever finishes second, this call or the batch's answer, sends the
    // next batch: no recursion when the client answers inline.
    auto turn = std::make_shared<std::atomic<int>>(0);
    client_->ExecuteBatch(
        std::move(commands), [this, guard = inflight_, turn, items = std::move(items),
                              counts = std::move(counts)](Results results) mutable {
          auto at = results.begin();
          for (size_t i = 0; i < items.size(); ++i) {
            Results mine(std::make_move_iterator(at), std::make_move_iterator(at + counts[i]));
            at += counts[i];
            items[i].done(std::move(mine));
          }
          if (turn->exchange(2) == 1) Pump();
          guard.reset();  // the lane may be destroyed from here on
        });
    if (turn->exchange(1) == 0) return;
  }
}

WriteLane::Results WriteLane::Call(std::vector<RedisCommand> commands) {
  struct Sync {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    Results results ABSL_GUARDED_BY(mu);
  };
  auto sync = std::make_shared<Sync>();
  const size_t n = commands.size();
  Submit(std::move(commands), [sync](Results results) {
    absl::MutexLock lock(&sync->mu);
    sync->results = std::move(results);
    sync->done = true;
  });
  // Every batch ahead answers by its command timeout; this bound is a
  // safety net, never the normal path.
  const absl::Duration bound = 4 * client_->options().command_timeout + absl::Seconds(5);
  absl::MutexLock lock(&sync->mu);
  if (!sync->mu.AwaitWithTimeout(absl::Condition(&sync->done), bound)) {
    return Results(n, absl::UnavailableError("redis: no answer within the safety bound"));
  }
  return std::move(sync->results);
}

}  // namespace stateside::redis

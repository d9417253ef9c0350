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
  Submit(Step{std::move(commands), std::move(done), nullptr});
}

void WriteLane::Submit(Step first) {
  const size_t n = first.commands.size();
  const size_t bytes = Bytes(first);
  absl::Status refusal;
  if (!client_->connected()) {
    const absl::Status last = client_->last_error();
    refusal = absl::UnavailableError(absl::StrCat("redis: not connected",
                                                  last.ok() ? "" : " (", last.message(),
                                                  last.ok() ? "" : ")"));
  } else if (n > 0) {
    absl::MutexLock lock(&mu_);
    if (commands_ + n > max_commands_ || bytes_ + bytes > max_bytes_) {
      refusal = absl::UnavailableError("redis: too many writes waiting for Redis");
    } else {
      queue_.push_back(std::move(first));
      commands_ += n;
      bytes_ += bytes;
      if (busy_) return;  // the batch in flight sends it next
      busy_ = true;
    }
  }
  if (n == 0 && refusal.ok()) {
    std::optional<Step> next = Answer(std::move(first), Results());
    if (next.has_value()) Submit(*std::move(next));
    return;
  }
  if (!refusal.ok()) {
    // Refused: every later step fails the same way, without Redis.
    std::optional<Step> step = Answer(std::move(first), Results(n, refusal));
    while (step.has_value()) {
      const size_t m = step->commands.size();
      step = Answer(*std::move(step), Results(m, refusal));
    }
    return;
  }
  Pump();
}

size_t WriteLane::Bytes(const RedisCommand& command) {
  size_t bytes = 0;
  for (const std::string& arg : command.args) bytes += arg.size();
  return bytes;
}

size_t WriteLane::Bytes(const Step& step) {
  size_t bytes = 0;
  for (const RedisCommand& c : step.commands) bytes += Bytes(c);
  return bytes;
}

std::vector<std::vector<RedisCommand>> WriteLane::Split(std::vector<RedisCommand> commands,
                                                        size_t max_commands, size_t max_bytes) {
  std::vector<std::vector<RedisCommand>> pieces;
  size_t bytes = 0;
  for (RedisCommand& c : commands) {
    const size_t b = Bytes(c);
    if (pieces.empty() || pieces.back().size() >= max_commands ||
        (!pieces.back().empty() && bytes + b > max_bytes)) {
      pieces.emplace_back();
      bytes = 0;
    }
    pieces.back().push_back(std::move(c));
    bytes += b;
  }
  return pieces;
}

void WriteLane::SendPieces(std::shared_ptr<std::deque<std::vector<RedisCommand>>> pieces,
                           std::shared_ptr<Results> results,
                           absl::AnyInvocable<void(Results)> done) {
  std::vector<RedisCommand> piece = std::move(pieces->front());
  pieces->pop_front();
  client_->ExecuteBatch(std::move(piece), [this, pieces, results, done = std::move(done)](
                                              Results answered) mutable {
    for (auto& r : answered) results->push_back(std::move(r));
    if (pieces->empty()) return done(std::move(*results));
    SendPieces(pieces, results, std::move(done));
  });
}

std::optional<WriteLane::Step> WriteLane::Answer(Step step, Results results) {
  for (;;) {
    if (!step.then) {
      if (step.done) step.done(std::move(results));
      return std::nullopt;
    }
    Step next;
    step.then(std::move(results), &next);
    if (!next.commands.empty()) return next;
    step = std::move(next);
    results.clear();
  }
}

void WriteLane::Pump() {
  for (;;) {
    std::vector<Step> items;
    {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        busy_ = false;
        return;
      }
      // Up to and including the first step that has a next one: that next
      // step must go out before anything queued behind it.
      // At most one piece's worth, unless a single step is larger.
      size_t n = 0, bytes = 0;
      while (!queue_.empty()) {
        const size_t next_n = queue_.front().commands.size();
        const size_t next_bytes = Bytes(queue_.front());
        if (!items.empty() &&
            (n + next_n > kMaxBatchCommands || bytes + next_bytes > kMaxBatchBytes)) {
          break;
        }
        n += next_n;
        bytes += next_bytes;
        items.push_back(std::move(queue_.front()));
        queue_.pop_front();
        commands_ -= items.back().commands.size();
        bytes_ -= Bytes(items.back());
        if (items.back().then) break;
      }
    }
    std::vector<RedisCommand> commands;
    std::vector<size_t> counts;
    for (Step& item : items) {
      counts.push_back(item.commands.size());
      for (RedisCommand& c : item.commands) commands.push_back(std::move(c));
    }
    // Whichever finishes second, this call or the batch's answer, sends the
    // next batch: no recursion when the client answers inline.
    auto turn = std::make_shared<std::atomic<int>>(0);
    auto pieces = std::make_shared<std::deque<std::vector<RedisCommand>>>();
    for (auto& piece : Split(std::move(commands))) pieces->push_back(std::move(piece));
    SendPieces(
        std::move(pieces), std::make_shared<Results>(),
        [this, guard = inflight_, turn, items = std::move(items),
         counts = std::move(counts)](Results results) mutable {
          auto at = results.begin();
          for (size_t i = 0; i < items.size(); ++i) {
            Results mine(std::make_move_iterator(at), std::make_move_iterator(at + counts[i]));
            at += counts[i];
            std::optional<Step> next = Answer(std::move(items[i]), std::move(mine));
            if (next.has_value()) {
              // Counted, never refused: its write was admitted.
              absl::MutexLock lock(&mu_);
              commands_ += next->commands.size();
              bytes_ += Bytes(*next);
              queue_.push_front(*std::move(next));
            }
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

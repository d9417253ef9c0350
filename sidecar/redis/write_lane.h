// WriteLane: Redis writes applied in the order they were submitted. The
// client spreads separate commands over its pool, where two of them may
// overtake each other; the lane keeps at most one batch in flight and sends
// everything submitted meanwhile as the next batch (pipelined on one
// connection), so order holds and throughput comes from batching. A batch
// goes to the client in pieces of at most kMaxBatchCommands commands and
// kMaxBatchBytes argument bytes, one piece after the other (a step larger
// than that too), far below what one connection accepts. Bounded:
// while the client is not connected, or past `max_commands` / `max_bytes`
// waiting, Submit fails at once with UNAVAILABLE.
//
// A write may take several steps, each needing the previous one's answer
// (read an index, then delete what it lists): such a step ends its batch,
// and its next step goes out first in the following one, so nothing
// submitted later overtakes it.
//
// Thread-safe. Each `done` runs once, in submission order, on the client's
// I/O thread (or inline when refused); it must not block.
#ifndef STATESIDE_SIDECAR_REDIS_WRITE_LANE_H_
#define STATESIDE_SIDECAR_REDIS_WRITE_LANE_H_

#include <cstddef>
#include <deque>
#include <future>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/redis/redis_client.h"

namespace stateside::redis {

class WriteLane {
 public:
  using Results = std::vector<absl::StatusOr<Reply>>;  // one per command
  using Done = absl::AnyInvocable<void(Results)>;

  // What one ExecuteBatch carries at most (a single larger command alone).
  static constexpr size_t kMaxBatchCommands = 1024;
  static constexpr size_t kMaxBatchBytes = 4u << 20;

  // `commands` cut, in order, into pieces within both bounds.
  static std::vector<std::vector<RedisCommand>> Split(std::vector<RedisCommand> commands,
                                                      size_t max_commands = kMaxBatchCommands,
                                                      size_t max_bytes = kMaxBatchBytes);

  // REQUIRES: client outlives the lane.
  WriteLane(RedisClient* client, size_t max_commands, size_t max_bytes);
  // Waits until everything submitted has answered.
  // REQUIRES: no Submit runs or starts; not on the client's I/O thread.
  ~WriteLane();
  WriteLane(const WriteLane&) = delete;
  WriteLane& operator=(const WriteLane&) = delete;

  // One step of a write: its commands, then exactly one of `done` (the
  // last step: it gets this step's results) or `then`, which gets them and
  // fills in the next step. A step without commands is answered at once
  // with no results.
  struct Step {
    std::vector<RedisCommand> commands;
    Done done;
    absl::AnyInvocable<void(Results, Step* next)> then;
  };

  void Submit(std::vector<RedisCommand> commands, Done done);
  // The first step is admitted (or refused) like Submit's commands; later
  // steps always go out (or fail with the client's own status).
  void Submit(Step first);
  // Blocking form. REQUIRES: not on the client's I/O thread.
  Results Call(std::vector<RedisCommand> commands);

 private:
  // Alive while a batch callback may still touch the lane.
  struct InFlight {
    std::promise<void> idle;
    ~InFlight() { idle.set_value(); }
  };

  static size_t Bytes(const Step& step);
  static size_t Bytes(const RedisCommand& command);
  // Sends `pieces` one after the other, then `done` gets every result.
  void SendPieces(std::shared_ptr<std::deque<std::vector<RedisCommand>>> pieces,
                  std::shared_ptr<Results> results, absl::AnyInvocable<void(Results)> done);
  // Runs `step`'s done, or its then and each next step without commands,
  // until a step with commands is left (returned) or the write is done.
  static std::optional<Step> Answer(Step step, Results results);
  // Sends queued items until none is left or a batch is out.
  // REQUIRES: busy_ was set by this caller (or handed over by a batch).
  void Pump();

  RedisClient* const client_;
  const size_t max_commands_;
  const size_t max_bytes_;
  std::shared_ptr<InFlight> inflight_;
  std::future<void> idle_;

  absl::Mutex mu_;
  std::deque<Step> queue_ ABSL_GUARDED_BY(mu_);
  size_t commands_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // someone is sending, or a batch is out
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_WRITE_LANE_H_

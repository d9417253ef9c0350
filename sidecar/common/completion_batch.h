// CompletionBatch: a scope on one thread inside which completions can leave
// the follow-up they share for the end of the scope. The Redis connection
// opens one around the replies of one socket read: a Pipe stream whose calls
// complete there queues every result and starts one write for all of them
// when the scope ends, instead of writing the first result alone and the rest
// after it (PipeReactor::Complete).
//
//   {
//     CompletionBatch batch;
//     ... callbacks that may call CompletionBatch::Defer ...
//   }  // the deferred actions run here, in the order they were deferred
//
// Scopes nest: only the outermost runs the actions. An action deferred while
// they run (by an action itself) runs in the same pass. Thread-local: a
// completion on another thread sees no scope and acts at once. An action
// must not throw (it runs in a destructor).
#ifndef STATESIDE_SIDECAR_COMMON_COMPLETION_BATCH_H_
#define STATESIDE_SIDECAR_COMMON_COMPLETION_BATCH_H_

#include <cassert>
#include <cstddef>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace stateside {

class CompletionBatch {
 public:
  CompletionBatch() { ++State().depth; }
  ~CompletionBatch() {
    ThreadState& state = State();
    if (state.depth > 1) {
      --state.depth;
      return;
    }
    // Still open while the actions run, so what they defer joins this pass.
    for (size_t i = 0; i < state.actions.size(); ++i) {
      absl::AnyInvocable<void()> action = std::move(state.actions[i]);
      std::move(action)();
    }
    state.actions.clear();
    --state.depth;
  }
  CompletionBatch(const CompletionBatch&) = delete;
  CompletionBatch& operator=(const CompletionBatch&) = delete;

  // Whether this thread is inside a scope: Defer would keep the action.
  static bool Open() { return State().depth > 0; }

  // Keeps `action` for the end of this thread's outermost scope.
  // REQUIRES: Open() (without a scope the action would wait for some later,
  // unrelated one).
  static void Defer(absl::AnyInvocable<void()> action) {
    assert(Open());
    State().actions.push_back(std::move(action));
  }

 private:
  struct ThreadState {
    int depth = 0;
    std::vector<absl::AnyInvocable<void()>> actions;
  };
  static ThreadState& State() {
    thread_local ThreadState state;
    return state;
  }
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_COMMON_COMPLETION_BATCH_H_

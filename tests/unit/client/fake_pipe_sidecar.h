// An in-process gRPC server on a Unix socket serving SessionService.Pipe (and
// unary Get, and grpc.health.v1 Check = SERVING) whose answers the test
// scripts: calls can be answered at once, held until the test answers them
// (in any order, with any code), or never read at all; a stream can be ended
// with any status while calls are held. Counts streams, calls and the largest
// batch, so the client's stream transport can be observed from outside.
// Thread-safe: the test thread scripts while gRPC threads serve.
#ifndef STATESIDE_TESTS_UNIT_CLIENT_FAKE_PIPE_SIDECAR_H_
#define STATESIDE_TESTS_UNIT_CLIENT_FAKE_PIPE_SIDECAR_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stateside/v1/session.pb.h"

namespace stateside::testing {

class FakePipeSidecar {
 public:
  enum class Mode {
    kAnswer,     // every call is answered OK as soon as it is read
    kHold,       // calls are recorded and wait for Answer() / EndStream()
    kNeverRead,  // streams stop reading (new ones never read at all)
  };

  // One call as the fake read it.
  struct ReceivedCall {
    int stream = 0;  // 0 for the first stream opened, then 1, ...
    uint64_t id = 0;
    v1::PipeCall::OpCase op = v1::PipeCall::OP_NOT_SET;
    absl::Duration timeout;  // PipeCall.timeout (zero when unset)
    std::string key;         // the session key's id or cookie, or the
                             // user id / subject of the other operations
  };

  // Listens on `socket_path` (created by gRPC). Starts in kAnswer mode.
  static absl::StatusOr<std::unique_ptr<FakePipeSidecar>> Start(
      const std::string& socket_path);
  // Ends open streams with CANCELLED and stops the server.
  ~FakePipeSidecar();
  FakePipeSidecar(const FakePipeSidecar&) = delete;
  FakePipeSidecar& operator=(const FakePipeSidecar&) = delete;

  // Applies to the calls read from now on (kNeverRead: a read already
  // started still delivers its message, whose calls are then held).
  void SetMode(Mode mode);

  // Answers a held call with `code` (OK: the canned response for its op,
  // see below). false if no such call is held (answered or its stream ended).
  bool Answer(const ReceivedCall& call, grpc::StatusCode code = grpc::StatusCode::OK,
              const std::string& message = "");
  // Ends stream `stream` with `status` once the answers given so far are
  // written; the calls still held on it are dropped unanswered.
  void EndStream(int stream, grpc::Status status);

  // Calls read and not answered yet, in the order read.
  std::vector<ReceivedCall> held() const;
  // Every call read, in the order read.
  std::vector<ReceivedCall> received() const;
  int streams_opened() const;
  int open_streams() const;
  // Calls read on stream `stream` (0 if it never opened).
  int calls_on_stream(int stream) const;
  // The most calls one PipeRequest carried.
  int max_calls_per_request() const;
  // The largest PipeRequest read, in bytes.
  size_t max_request_bytes() const;
  // What streams opened from now on announce as the largest message the
  // fake accepts (it does not enforce it: what the client sends is counted).
  void SetAnnouncedMaxMessageBytes(size_t bytes);
  // PipeRequests read on every stream.
  int requests_read() const;
  // Unary SessionService.Get calls received.
  int unary_gets() const;

  // What an OK answer carries, so that each caller can recognise its own:
  // a session (Get, Create, Regenerate) or metadata (Update, Touch) whose id
  // is `key` and, for a session, attributes {"key": key, "call": "<id>"};
  // Update's version is the number of attributes set. Destroy: existed;
  // ListUserSessions: one session of user `key`; DestroyUserSessions: 1;
  // GetOptOut: true.
  static v1::PipeResult CannedResult(const v1::PipeCall& call);

 private:
  class Stream;  // the reactor of one Pipe stream
  struct StreamState;
  struct Services;
  FakePipeSidecar();
  // A new stream's reactor (gRPC owns it; it deletes itself in OnDone).
  Stream* OpenStream();
  // Records (and, in kAnswer mode, answers) the calls of one message; true
  // if the stream should read again (the caller then starts the read and
  // calls ReadStarted). REQUIRES: mu_ not held.
  bool OnRead(const std::shared_ptr<StreamState>& state, const v1::PipeRequest& request);
  void ReadStarted(const std::shared_ptr<StreamState>& state);
  // Starts the write or the Finish the stream is ready for (none while a
  // write is in flight). REQUIRES: mu_ not held.
  void Pump(const std::shared_ptr<StreamState>& state);
  // Whether calls of `state`'s stream are held.
  bool Owes(const StreamState& state) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kAnswer;
  std::vector<std::shared_ptr<StreamState>> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<ReceivedCall> received_ ABSL_GUARDED_BY(mu_);
  std::vector<ReceivedCall> held_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::PipeCall> held_calls_ ABSL_GUARDED_BY(mu_);  // parallel to held_
  int open_streams_ ABSL_GUARDED_BY(mu_) = 0;
  int max_calls_per_request_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_request_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t announced_max_message_bytes_ ABSL_GUARDED_BY(mu_) = 4 << 20;
  int requests_read_ ABSL_GUARDED_BY(mu_) = 0;
  int unary_gets_ ABSL_GUARDED_BY(mu_) = 0;

  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_CLIENT_FAKE_PIPE_SIDECAR_H_

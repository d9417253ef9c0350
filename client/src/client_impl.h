// Client::Impl: what a stateside::Client holds (channels, stubs, the call
// transports, the timer) and the two ways a session or opt-out operation is
// run (Sync, Async). Shared by client.cc and session_calls.cc only.
// Thread-safe: constant after Connect, except the random generator (locked).
#ifndef STATESIDE_CLIENT_SRC_CLIENT_IMPL_H_
#define STATESIDE_CLIENT_SRC_CLIENT_IMPL_H_

#include <grpcpp/channel.h>

#include <memory>
#include <vector>
#include <utility>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/src/call_runner.h"
#include "client/src/frame_transport.h"
#include "client/src/pipe_transport.h"
#include "client/src/realtime_internal.h"
#include "client/src/retrying_call.h"
#include "client/src/timer.h"
#include "client/src/unary_transport.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "stateside/client.h"
#include "stateside/v1/lifecycle.grpc.pb.h"

namespace stateside {

struct Client::Impl {
  explicit Impl(ClientOptions o);
  // Ends the calls still running (CANCELLED), then the timer.
  ~Impl();

  ClientOptions options;
  std::shared_ptr<::grpc::Channel> channel;
  // One connection per Pipe stream (empty when options.streams is 0).
  std::vector<std::shared_ptr<::grpc::Channel>> stream_channels;
  std::unique_ptr<v1::LifecycleService::Stub> lifecycle;
  std::unique_ptr<::grpc::health::v1::Health::Stub> health;
  std::unique_ptr<client_internal::RealtimeCalls> realtime;

  // Session and opt-out calls: the runner uses the frame transport for Get
  // and Update when options.frames, then the Pipe transport when
  // options.streams > 0 (falling back to unary), else the unary one.
  client_internal::Timer timer;
  std::unique_ptr<client_internal::UnaryTransport> unary;
  std::unique_ptr<client_internal::PipeTransport> pipe;
  // options.frames: Get and Update on the frame socket, the rest (and the
  // fallback) on pipe or unary.
  std::unique_ptr<client_internal::FrameTransport> frames;
  std::unique_ptr<client_internal::CallRunner> runner;

  absl::Mutex rng_mu;
  absl::BitGen rng ABSL_GUARDED_BY(rng_mu);

  double Jitter() {
    absl::MutexLock lock(&rng_mu);
    return absl::Uniform(absl::IntervalClosed, rng, 0.0, 1.0);
  }

  // CallWithRetries (retrying_call.h) with this client's jitter: the
  // blocking unary calls (lifecycle and health).
  template <typename Attempt>
  absl::Status Call(client_internal::Rpc rpc, const Attempt& attempt) {
    return client_internal::CallWithRetries(rpc, options, [this] { return Jitter(); },
                                            attempt);
  }

  absl::Status WaitUntilReady();
  // The stream connections were started with the client, perhaps before the
  // sidecar listened: one that failed then waits out its reconnect backoff
  // (up to a second, MakeChannel), and a call on it fails at once with
  // UNAVAILABLE. Once the sidecar is SERVING, waits (until `deadline`) for
  // each to connect.
  absl::Status WaitForStreamChannels(absl::Time deadline);

  // Runs `call` (an argument error: returned as is) and turns its result
  // into a T with `parse`.
  template <typename T, typename Parse>
  absl::StatusOr<T> Sync(client_internal::Rpc rpc, absl::StatusOr<v1::PipeCall> call,
                         Parse parse) {
    if (!call.ok()) return call.status();
    client_internal::Outcome outcome = runner->RunAndWait(rpc, *std::move(call));
    if (!outcome.status.ok()) return outcome.status;
    return parse(outcome.result);
  }

  // The same, handing the result to `done` (an argument error: at once).
  template <typename T, typename Parse>
  void Async(client_internal::Rpc rpc, absl::StatusOr<v1::PipeCall> call, Parse parse,
             Callback<T> done) {
    if (!call.ok()) return done(call.status());
    runner->Run(rpc, *std::move(call),
                [parse, done = std::move(done)](client_internal::Outcome outcome) mutable {
                  if (!outcome.status.ok()) return done(outcome.status);
                  done(absl::StatusOr<T>(parse(outcome.result)));
                });
  }
};

}  // namespace stateside

#endif  // STATESIDE_CLIENT_SRC_CLIENT_IMPL_H_

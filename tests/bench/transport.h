// How the benchmark's calls travel to the sidecar. The load loop (LoadRunner)
// knows only this interface: it owns `slots` independent callers, each with at
// most one call outstanding, and a transport issues a slot's next call and
// reports its completion. Unary RPCs implement it (unary_transport.cc), and so
// does SessionService.Pipe (stream_transport.cc: Issue puts a call tagged with
// the slot into the stream; the result with that tag completes it), so both
// are measured by the same loop, with the same requests.
//
// Thread-safe: Issue may be called for different slots concurrently, from any
// thread, including from inside a CompletionSink callback.
#ifndef STATESIDE_TESTS_BENCH_TRANSPORT_H_
#define STATESIDE_TESTS_BENCH_TRANSPORT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/status_code_enum.h"
#include "tests/bench/bench_options.h"
#include "tests/bench/workload.h"

namespace stateside::bench {

// Receives completions. Called exactly once per Issue, on any thread (a call
// that fails at once may complete on the issuing thread before Issue returns:
// gRPC runs such callbacks at the end of its own entry point, from a queue, so
// re-issuing from the callback loops instead of recursing). May call Issue
// again for the same slot.
class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  virtual void OnCallDone(size_t slot, grpc::StatusCode code) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Starts one call of the workload's op for `slot` (< the slot count given at
  // creation). REQUIRES: the slot's previous call has completed.
  virtual void Issue(size_t slot) = 0;
};

struct TransportParams {
  const Workload* workload = nullptr;  // outlives the transport
  // The channels calls are spread over: slot i uses channel i % size.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  size_t slots = 1;
  absl::Duration call_timeout = absl::Seconds(10);
  CompletionSink* sink = nullptr;  // outlives the transport
  // For the client-* transports (own connections), and for frames: the
  // frame socket, with `connections` connections to it.
  std::string socket_path;
  size_t connections = 1;
};

// `count` channels to unix:`socket_path`, each with its own connection (gRPC
// would otherwise share one subchannel between channels to the same target).
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(
    const std::string& socket_path, size_t count);

// Connects every channel, waiting at most `timeout` in all. UNAVAILABLE with
// a message that says why when the sidecar cannot be reached (no socket file,
// not a socket, nothing listening).
absl::Status ConnectChannels(
    const std::string& socket_path,
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    absl::Duration timeout);

// The transport of `kind` (the stream refuses `ping`: UNIMPLEMENTED; frames
// refuses all but session-get and session-update, and is UNAVAILABLE when it
// cannot connect).
// REQUIRES (at destruction): no call outstanding.
absl::StatusOr<std::unique_ptr<Transport>> MakeTransport(
    TransportKind kind, TransportParams params);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_TRANSPORT_H_

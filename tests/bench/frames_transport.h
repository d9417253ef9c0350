// Calls over the frame socket's protocol itself (proto/frames.h), without the
// client library or gRPC: `connections` Unix-socket connections to
// params.socket_path (the sidecar's `<socket>.frames`, or
// stateside-frame-echo's socket); slot i's calls go on connection
// i % connections, each one frame of one PipeCall tagged with the slot.
// Batching as the client library's frame transport (client/src/
// frame_transport.cc): a call issued from another thread is sent at once;
// the calls issued by the completions of one read (a closed loop's next
// ones) are sent together, one write per connection, after those
// completions return. One reader thread reads every connection and runs the
// completions itself.
#ifndef STATESIDE_TESTS_BENCH_FRAMES_TRANSPORT_H_
#define STATESIDE_TESTS_BENCH_FRAMES_TRANSPORT_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/bench/transport.h"

namespace stateside::bench {

// UNAVAILABLE when a connection cannot be made (the message names the path);
// UNIMPLEMENTED for an op other than session-get and session-update (the
// frame socket carries only those).
absl::StatusOr<std::unique_ptr<Transport>> MakeFramesTransport(TransportParams params,
                                                               size_t connections);

// The gRPC socket on which the bench prepares (and afterwards removes) its
// session for a run on `frames_socket`: the sidecar's STATESIDE_SOCKET when
// `frames_socket` is its `<socket>.frames`; "" for any other path (a bare
// frame server such as stateside-frame-echo: nothing to prepare).
std::string FramesSetupSocket(const std::string& frames_socket);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_FRAMES_TRANSPORT_H_

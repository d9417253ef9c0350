// Calls through SessionService.Pipe: one stream per channel; slot i's calls
// go on stream i % channels, tagged with the slot. Each write carries every
// call issued while the previous write was in flight (the client half of the
// batching that the sidecar does on its side).
#ifndef STATESIDE_TESTS_BENCH_STREAM_TRANSPORT_H_
#define STATESIDE_TESTS_BENCH_STREAM_TRANSPORT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stateside/v1/session.pb.h"
#include "tests/bench/transport.h"
#include "tests/bench/workload.h"

namespace stateside::bench {

// The call every call of the workload's op sends on a Pipe stream or the
// frame socket (the id set per call), with `timeout`. UNIMPLEMENTED for
// `ping` and the realtime ops.
absl::StatusOr<stateside::v1::PipeCall> PipeCallPrototype(const Workload& w,
                                                          absl::Duration timeout);

// The code a result of `prototype` counts as: its own, except that the
// refusal a call without an operation (--op empty) gets is its success
// (INVALID_ARGUMENT on the Pipe, UNIMPLEMENTED on the frame socket, OK from
// a frame echo); any other code stays an error.
grpc::StatusCode ResultCode(const stateside::v1::PipeCall& prototype, int32_t code);

// UNIMPLEMENTED for `ping` (it has no stream form: the floor is the unary
// Health/Check).
absl::StatusOr<std::unique_ptr<Transport>> MakeStreamTransport(TransportParams params);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_STREAM_TRANSPORT_H_

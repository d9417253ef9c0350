// Calls through the client library (stateside::Client's Async forms), as an
// application makes them: the Pipe streams with the library's batching,
// deadlines and retries (client-stream, ClientOptions::streams = --channels),
// or its unary path (client-unary). Beside the bench's own minimal
// transports, it shows what the library adds on top of the wire.
#ifndef STATESIDE_TESTS_BENCH_CLIENT_TRANSPORT_H_
#define STATESIDE_TESTS_BENCH_CLIENT_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/bench/transport.h"

namespace stateside::bench {

// streams = 0: the library's unary path; frames: Get and Update on the
// sidecar's frame socket (ClientOptions::frames), else never. UNIMPLEMENTED
// for ping (the library has no async health check). Connects (waits for
// SERVING, within params.call_timeout); the channels of `params` are not
// used.
absl::StatusOr<std::unique_ptr<Transport>> MakeClientTransport(
    TransportParams params, const std::string& socket_path, int streams, bool frames);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_CLIENT_TRANSPORT_H_

// The unary transport: one gRPC unary call (callback API) per benchmark call,
// as the client library makes them today. Each slot owns its ClientContext,
// request copy and response, reused from call to call.
// Thread-safe as Transport says.
#ifndef STATESIDE_TESTS_BENCH_UNARY_TRANSPORT_H_
#define STATESIDE_TESTS_BENCH_UNARY_TRANSPORT_H_

#include <memory>

#include "tests/bench/transport.h"

namespace stateside::bench {

// REQUIRES: params.workload, params.sink non-null; params.channels non-empty.
std::unique_ptr<Transport> MakeUnaryTransport(TransportParams params);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_UNARY_TRANSPORT_H_

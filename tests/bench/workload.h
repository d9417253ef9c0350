// What every call of a run sends, prepared once before the run with plain
// blocking RPCs (whatever the transport measured): the session read or written
// by session-get/update (created by the bench unless --session names one), the
// opt-out flag read by optout-get, and the payload. Cleanup removes what
// Prepare created. Independent of the transport so that unary and stream
// measure exactly the same requests.
//
// Thread-compatible; after Prepare the Workload is read-only and may be read
// from any thread.
#ifndef STATESIDE_TESTS_BENCH_WORKLOAD_H_
#define STATESIDE_TESTS_BENCH_WORKLOAD_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpc/health/v1/health.pb.h"
#include "stateside/v1/analytics.pb.h"
#include "stateside/v1/session.pb.h"
#include "tests/bench/bench_options.h"

namespace stateside::bench {

// The attribute every session op reads or writes.
inline constexpr char kBenchAttribute[] = "bench";

struct Workload {
  Op op = Op::kPing;
  // One prototype request per op; each call sends a copy (only the one of
  // `op` is filled in).
  grpc::health::v1::HealthCheckRequest ping;
  stateside::v1::GetSessionRequest get;
  stateside::v1::UpdateSessionRequest update;
  stateside::v1::CreateSessionRequest create;
  stateside::v1::GetOptOutRequest opt_out_get;

  // What Prepare created and Cleanup removes.
  std::string created_session_id;
  std::string opt_out_subject;
  // Notes for the report (e.g. "health is NOT_SERVING").
  std::vector<std::string> warnings;
};

// `size` deterministic, non-repeating-looking bytes (not all zeros, so the
// payload is what a real attribute costs).
std::string MakePayload(size_t size);

// Builds the requests of options.op and creates what they need on the
// sidecar. UNAVAILABLE / DEADLINE_EXCEEDED when the sidecar does not answer,
// NOT_FOUND when --session names no session, the sidecar's status otherwise.
absl::StatusOr<Workload> PrepareWorkload(
    const BenchOptions& options, const std::shared_ptr<grpc::Channel>& channel);

// The requests of session-get/update for a bare frame server (--transport
// frames without a sidecar behind it, e.g. stateside-frame-echo): nothing is
// created; the key is --session, or a placeholder when none is given.
Workload FramesOnlyWorkload(const BenchOptions& options);

// Best effort: destroys the session / clears the opt-out Prepare created.
void CleanupWorkload(const Workload& workload,
                     const std::shared_ptr<grpc::Channel>& channel,
                     absl::Duration timeout);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_WORKLOAD_H_

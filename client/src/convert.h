// Conversions between the generated protobuf types and the plain types of the
// public API, and grpc::Status → absl::Status. Pure functions: thread-safe.
// Only the client's .cc files (and its tests) include this header.
#ifndef STATESIDE_CLIENT_SRC_CONVERT_H_
#define STATESIDE_CLIENT_SRC_CONVERT_H_

#include <grpcpp/support/status.h>

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "stateside/types.h"
#include "stateside/v1/error.pb.h"
#include "stateside/v1/lifecycle.pb.h"
#include "stateside/v1/session.pb.h"

// Returns the status of `expr` from the enclosing function unless it is OK.
#define STATESIDE_CLIENT_RETURN_IF_ERROR(expr)           \
  do {                                                   \
    ::absl::Status client_status_ = (expr);              \
    if (!client_status_.ok()) return client_status_;     \
  } while (0)

namespace stateside::client_internal {

// grpc::Status → absl::Status keeps the ErrorInfo of the status details as
// the kErrorInfoPayload payload (ErrorReasonOf reads it); so does the
// status of a PipeResult that is not OK.
absl::Status FromPipeResult(const v1::PipeResult& result);

// Debian's Abseil has its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0):
// std::string_view must be converted explicitly.
inline absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

// Keeps the code (gRPC and absl share the numbering) and the message.
absl::Status FromGrpcStatus(const grpc::Status& status);

absl::Time TimeFromProto(const google::protobuf::Timestamp& ts);
absl::Duration DurationFromProto(const google::protobuf::Duration& d);
// INVALID_ARGUMENT if `d` is infinite (not representable).
absl::Status DurationToProto(absl::Duration d, google::protobuf::Duration* out);

void SessionRefToProto(const SessionRef& ref, v1::SessionKey* out);
SessionInfo SessionInfoFromProto(const v1::SessionMetadata& m);
// Moves the attribute values and the cookie out of `s` (a response read
// once): a session's bytes are not copied on their way to the caller.
Session SessionFromProto(v1::Session&& s);
DrainState DrainStateFromProto(v1::DrainState s);
// deadline stays InfiniteFuture() when the event carries none.
DrainNotice DrainNoticeFromProto(const v1::DrainEvent& e);
InstanceInfo InstanceFromProto(const v1::Instance& i);
// The instance plus GetInstance's API revision and capabilities.
InstanceInfo InstanceFromProto(const v1::GetInstanceResponse& r);
ServingStatus ServingStatusFromProto(
    grpc::health::v1::HealthCheckResponse::ServingStatus s);

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_CONVERT_H_

// The one conversion from absl::Status (what every module returns) to
// grpc::Status (what a client sees). Codes map one to one. The messages of
// INTERNAL, UNKNOWN and DATA_LOSS are replaced by a fixed text (and logged):
// they come from deep inside and may describe things a client must not
// learn. Every error also carries its cause in the status details: an
// RpcStatus holding one ErrorInfo (stateside/v1/error.proto), whose reason
// comes from the status's WithReason payloads (sidecar/common/error_reason.h)
// or else from its code. Thread-safe (pure).
#ifndef STATESIDE_SIDECAR_RPC_STATUS_H_
#define STATESIDE_SIDECAR_RPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "stateside/v1/error.pb.h"

namespace stateside::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);

// The ErrorInfo of a status that is not OK (what ToGrpcStatus's details and
// a PipeResult carry).
void ErrorInfoOf(const absl::Status& status, v1::ErrorInfo* out);

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_STATUS_H_

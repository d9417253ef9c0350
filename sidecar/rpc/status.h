// The one conversion from absl::Status (what every module returns) to
// grpc::Status (what a client sees). Codes map one to one. The messages of
// INTERNAL, UNKNOWN and DATA_LOSS are replaced by a fixed text (and logged):
// they come from deep inside and may describe things a client must not
// learn. Thread-safe (pure).
#ifndef STATESIDE_SIDECAR_RPC_STATUS_H_
#define STATESIDE_SIDECAR_RPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace stateside::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_STATUS_H_

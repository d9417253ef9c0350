// The gRPC channel to the sidecar's Unix socket, with the client's channel
// arguments (fast local reconnects, own connection, large replies).
// Thread-safe (a free function; channels are thread-safe).
#ifndef STATESIDE_CLIENT_SRC_CHANNEL_H_
#define STATESIDE_CLIENT_SRC_CHANNEL_H_

#include <grpcpp/channel.h>

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "stateside/client.h"
#include "stateside/v1/lifecycle.grpc.pb.h"

namespace grpc {
class ClientContext;
}

namespace stateside::client_internal {

// REQUIRES: options validated (socket_path non-empty).
std::shared_ptr<::grpc::Channel> MakeChannel(const ClientOptions& options);

// Runs one WatchDrain stream on `context` (set up by the caller: deadline,
// wait_for_ready, cancellation), calling `on_event` for each event in order.
// `on_event` returning false cancels the stream; the result is then OK.
// An observer is not waited for by the sidecar's drain (see lifecycle.proto).
// Otherwise the stream's final status (OK: the sidecar ended it).
absl::Status RunDrainStream(v1::LifecycleService::StubInterface& stub, bool observer,
                            ::grpc::ClientContext& context,
                            const std::function<bool(const DrainNotice&)>& on_event);

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_CHANNEL_H_

// MakeChannel and RunDrainStream (see channel.h).
#include "client/src/channel.h"

#include <grpcpp/grpcpp.h>

#include "client/src/convert.h"

namespace stateside::client_internal {
namespace {

// Replies above gRPC's 4 MiB default are legitimate (a large session, a long
// ListUserSessions); the sidecar's limits are what bound them.
constexpr int kMaxReceiveBytes = 64 << 20;

}  // namespace

std::shared_ptr<::grpc::Channel> MakeChannel(const ClientOptions& options) {
  ::grpc::ChannelArguments args;
  // A local socket is cheap to retry: reconnect within 50 ms..1 s instead of
  // gRPC's 1 s..120 s (tuned for remote servers), so a restarted sidecar is
  // found again quickly.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Each Client owns its connection (no process-wide sharing of reconnect
  // state between clients).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  return ::grpc::CreateCustomChannel("unix:" + options.socket_path,
                                     ::grpc::InsecureChannelCredentials(), args);
}

absl::Status RunDrainStream(v1::LifecycleService::StubInterface& stub, bool observer,
                            ::grpc::ClientContext& context,
                            const std::function<bool(const DrainNotice&)>& on_event) {
  v1::WatchDrainRequest request;
  request.set_observer(observer);
  std::unique_ptr<::grpc::ClientReaderInterface<v1::DrainEvent>> reader =
      stub.WatchDrain(&context, request);
  v1::DrainEvent event;
  bool stopped = false;
  while (reader->Read(&event)) {
    if (!on_event(DrainNoticeFromProto(event))) {
      stopped = true;
      context.TryCancel();
      break;
    }
  }
  // Finish after TryCancel drains the stream and answers CANCELLED, which is
  // our own doing, not a failure.
  const absl::Status status = FromGrpcStatus(reader->Finish());
  return stopped ? absl::OkStatus() : status;
}

}  // namespace stateside::client_internal

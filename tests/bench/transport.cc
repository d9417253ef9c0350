// Channels to the sidecar's socket and the choice of transport.
#include "tests/bench/transport.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "tests/bench/client_transport.h"
#include "tests/bench/frames_transport.h"
#include "tests/bench/stream_transport.h"
#include "tests/bench/unary_transport.h"

namespace stateside::bench {
namespace {

// Responses carry whole sessions: allow more than the largest --size.
constexpr int kMaxReceiveBytes = 16 << 20;

// Why a socket path cannot be connected to, for the error message.
std::string DescribeSocket(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::StrCat(path, ": ", strerror(errno),
                        " (is the sidecar running with --socket ", path, "?)");
  }
  if (!S_ISSOCK(st.st_mode)) return absl::StrCat(path, ": not a socket");
  return absl::StrCat(path, ": nothing accepts connections on it");
}

}  // namespace

std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(
    const std::string& socket_path, size_t count) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (size_t i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // Differing arguments also keep channels from sharing a connection.
    args.SetInt("stateside.bench.channel", static_cast<int>(i));
    args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
    // Reconnect quickly to a local socket (gRPC's defaults suit remote hosts).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    channels.push_back(grpc::CreateCustomChannel(
        "unix:" + socket_path, grpc::InsecureChannelCredentials(), args));
  }
  return channels;
}

absl::Status ConnectChannels(
    const std::string& socket_path,
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (const auto& channel : channels) {
    if (!channel->WaitForConnected(absl::ToChronoTime(deadline))) {
      return absl::UnavailableError(absl::StrCat(
          "cannot reach the sidecar at unix:", DescribeSocket(socket_path),
          "; gave up after ", absl::FormatDuration(timeout)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Transport>> MakeTransport(
    TransportKind kind, TransportParams params) {
  switch (kind) {
    case TransportKind::kStream:
      return MakeStreamTransport(std::move(params));
    case TransportKind::kClientStream:
    case TransportKind::kClientUnary:
    case TransportKind::kClientFrames: {
      const std::string socket = params.socket_path;
      const int streams =
          kind == TransportKind::kClientUnary ? 0 : static_cast<int>(params.channels.size());
      return MakeClientTransport(std::move(params), socket, streams,
                                 kind == TransportKind::kClientFrames);
    }
    case TransportKind::kFrames: {
      const size_t connections = params.connections;
      return MakeFramesTransport(std::move(params), connections);
    }
    case TransportKind::kUnary:
      break;
  }
  return MakeUnaryTransport(std::move(params));
}

}  // namespace stateside::bench

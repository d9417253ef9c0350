// stateside::Client over gRPC: options, what the Client holds, the readiness
// wait, and the lifecycle, health and realtime methods (the session and
// opt-out ones are in session_calls.cc). The contract is in
// stateside/client.h.
#include "stateside/client.h"

#include <grpcpp/grpcpp.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/src/channel.h"
#include "client/src/client_impl.h"
#include "client/src/convert.h"
#include "client/src/realtime_internal.h"
#include "client/src/retry.h"
#include "client/src/utf8.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "stateside/v1/lifecycle.grpc.pb.h"

namespace stateside {

using client_internal::Rpc;
using client_internal::Sv;

namespace {

// Readiness is polled (Health.Check) rather than watched, because a sidecar
// need not implement Health.Watch; this caps the polling interval so that a
// sidecar becoming ready is noticed within ~200 ms.
constexpr absl::Duration kMaxReadyPoll = absl::Milliseconds(200);
// Each stream is a connection of its own; more than this helps nobody.
constexpr int kMaxStreams = 64;

bool Finite(absl::Duration d) {
  return d != absl::InfiniteDuration() && d != -absl::InfiniteDuration();
}

absl::Status ValidateOptions(const ClientOptions& o) {
  if (o.socket_path.empty()) {
    return absl::InvalidArgumentError("socket_path: empty");
  }
  if (o.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket_path: longer than ", sizeof(sockaddr_un{}.sun_path) - 1,
        " bytes (the Unix socket limit)"));
  }
  if (o.call_timeout <= absl::ZeroDuration() || !Finite(o.call_timeout)) {
    return absl::InvalidArgumentError("call_timeout: must be positive and finite");
  }
  if (o.ready_timeout < absl::ZeroDuration() || !Finite(o.ready_timeout)) {
    return absl::InvalidArgumentError("ready_timeout: must be >= 0 and finite");
  }
  if (o.max_retries < 0) {
    return absl::InvalidArgumentError("max_retries: must be >= 0");
  }
  if (o.initial_backoff <= absl::ZeroDuration() || !Finite(o.max_backoff) ||
      o.max_backoff < o.initial_backoff) {
    return absl::InvalidArgumentError(
        "initial_backoff/max_backoff: need 0 < initial_backoff <= max_backoff");
  }
  if (o.streams < 0 || o.streams > kMaxStreams) {
    return absl::InvalidArgumentError(
        absl::StrCat("streams: must be in [0, ", kMaxStreams, "]"));
  }
  if (o.max_calls_per_stream < 1) {
    return absl::InvalidArgumentError("max_calls_per_stream: must be >= 1");
  }
  return absl::OkStatus();
}

}  // namespace

std::string DefaultSocketPath() {
  const char* env = std::getenv("STATESIDE_SOCKET");
  if (env != nullptr && *env != '\0') return env;
  return "/tmp/stateside/stateside.sock";
}

Client::Impl::Impl(ClientOptions o) : options(std::move(o)) {
  channel = client_internal::MakeChannel(options);
  lifecycle = v1::LifecycleService::NewStub(channel);
  health = ::grpc::health::v1::Health::NewStub(channel);
  realtime = std::make_unique<client_internal::RealtimeCalls>(channel, options, &timer);
  unary = std::make_unique<client_internal::UnaryTransport>(channel);
  client_internal::CallTransport* sessions = unary.get();
  if (options.streams > 0) {
    // Each stream on a connection of its own (MakeChannel does not share
    // subchannels), so that one busy stream does not queue behind another.
    for (int i = 0; i < options.streams; ++i) {
      stream_channels.push_back(client_internal::MakeChannel(options));
      // Start connecting now, in the background, so that the first call does
      // not pay for the connection (WaitUntilReady waits for all of them).
      stream_channels.back()->GetState(/*try_to_connect=*/true);
    }
    pipe = std::make_unique<client_internal::PipeTransport>(
        stream_channels, static_cast<size_t>(options.max_calls_per_stream), unary.get(), &timer);
    sessions = pipe.get();
  }
  if (options.frames) {
    frames = std::make_unique<client_internal::FrameTransport>(
        options.socket_path + ".frames", static_cast<size_t>(options.max_calls_per_stream),
        sessions, &timer);
    sessions = frames.get();
  }
  runner = std::make_unique<client_internal::CallRunner>(&options, sessions, &timer,
                                                         [this] { return Jitter(); });
}

Client::Impl::~Impl() {
  // The frame socket and the streams first (they hand calls to the
  // transports after them: a stream refused UNIMPLEMENTED its calls to the
  // unary transport). The timer last: it runs the retries still waiting, which
  // the transports now end with CANCELLED.
  if (frames != nullptr) frames->Shutdown();
  if (pipe != nullptr) pipe->Shutdown();
  unary->Shutdown();
  realtime->Shutdown();
  timer.Stop();
}

absl::Status Client::Impl::WaitUntilReady() {
  const absl::Time deadline = absl::Now() + options.ready_timeout;
  absl::Status last = absl::UnavailableError("no health check completed");
  bool answered = false;  // the sidecar answered at least once
  for (int attempt = 1; absl::Now() < deadline; ++attempt) {
    ::grpc::ClientContext context;
    // Wait for the connection (the socket may not exist yet) instead of
    // failing at once; bounded by the deadline.
    context.set_wait_for_ready(true);
    context.set_deadline(
        absl::ToChronoTime(std::min(deadline, absl::Now() + options.call_timeout)));
    ::grpc::health::v1::HealthCheckRequest request;
    ::grpc::health::v1::HealthCheckResponse response;
    absl::Status status = client_internal::FromGrpcStatus(
        health->Check(&context, request, &response));
    if (status.ok()) {
      const ServingStatus serving =
          client_internal::ServingStatusFromProto(response.status());
      if (serving == ServingStatus::kServing) return WaitForStreamChannels(deadline);
      answered = true;
      last = absl::UnavailableError(
          absl::StrCat("health is ", Sv(ServingStatusName(serving))));
    } else if (status.code() == absl::StatusCode::kUnavailable) {
      last = status;
    } else if (status.code() == absl::StatusCode::kDeadlineExceeded) {
      // An attempt cut short by the overall deadline says less than an
      // earlier answer (e.g. NOT_SERVING): keep that one.
      if (!answered) last = status;
    } else {
      return status;  // e.g. UNIMPLEMENTED: waiting longer cannot help
    }
    const absl::Duration delay = client_internal::BackoffDelay(
        attempt, options.initial_backoff,
        std::min(options.max_backoff, kMaxReadyPoll), Jitter());
    absl::SleepFor(std::min(delay, deadline - absl::Now()));
  }
  return absl::UnavailableError(absl::StrCat(
      "sidecar at unix:", options.socket_path, " not ready within ",
      absl::FormatDuration(options.ready_timeout), ": ",
      absl::StatusCodeToString(last.code()), ": ", last.message()));
}

absl::Status Client::Impl::WaitForStreamChannels(absl::Time deadline) {
  for (size_t i = 0; i < stream_channels.size(); ++i) {
    if (!stream_channels[i]->WaitForConnected(absl::ToChronoTime(deadline))) {
      return absl::UnavailableError(absl::StrCat(
          "sidecar at unix:", options.socket_path, " is SERVING but stream connection ",
          i + 1, " of ", stream_channels.size(), " did not connect within ",
          absl::FormatDuration(options.ready_timeout)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(ValidateOptions(options));
  auto impl = std::make_unique<Impl>(std::move(options));
  if (impl->options.wait_until_ready) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(impl->WaitUntilReady());
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

const ClientOptions& Client::options() const { return impl_->options; }

// --- SessionService and AnalyticsService: in session_calls.cc ---

absl::StatusOr<InstanceInfo> Client::GetInstance() {
  v1::GetInstanceRequest request;
  v1::GetInstanceResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kGetInstance, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->lifecycle->GetInstance(context, request, &response);
      }));
  return client_internal::InstanceFromProto(response);
}

absl::StatusOr<ServingStatus> Client::CheckHealth(std::string_view service) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(client_internal::CheckText("service", service));
  ::grpc::health::v1::HealthCheckRequest request;
  request.set_service(std::string(service));
  ::grpc::health::v1::HealthCheckResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kCheckHealth, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->health->Check(context, request, &response);
      }));
  return client_internal::ServingStatusFromProto(response.status());
}

absl::StatusOr<std::vector<InstanceInfo>> Client::ListInstances() {
  v1::ListInstancesRequest request;
  v1::ListInstancesResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kListInstances, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->lifecycle->ListInstances(context, request, &response);
      }));
  std::vector<InstanceInfo> instances;
  instances.reserve(response.instances_size());
  for (const auto& i : response.instances()) {
    instances.push_back(client_internal::InstanceFromProto(i));
  }
  return instances;
}

absl::Status Client::Drain(AfterDrain after) {
  v1::DrainRequest request;
  request.set_hold_until_signal(after == AfterDrain::kHoldUntilSignal);
  v1::DrainResponse response;
  return impl_->Call(Rpc::kDrain, [&](::grpc::ClientContext* context) {
    response.Clear();
    return impl_->lifecycle->Drain(context, request, &response);
  });
}

absl::Status Client::ReportDrained(std::string_view drain_token) {
  v1::ReportDrainedRequest request;
  request.set_drain_token(std::string(drain_token));
  v1::ReportDrainedResponse response;
  return impl_->Call(Rpc::kReportDrained, [&](::grpc::ClientContext* context) {
    response.Clear();
    return impl_->lifecycle->ReportDrained(context, request, &response);
  });
}

absl::Status Client::WatchDrain(
    const std::function<bool(const DrainNotice&)>& on_event, WatchRole role) {
  // No deadline: the stream lasts as long as the sidecar runs. Not
  // wait_for_ready: a missing sidecar is UNAVAILABLE at once.
  ::grpc::ClientContext context;
  return client_internal::RunDrainStream(*impl_->lifecycle,
                                         role == WatchRole::kObserver, context,
                                         on_event);
}

// --- RealtimeService: implemented in realtime.cc ---

absl::Status Client::RegisterConnection(std::string_view conn_id,
                                        std::string_view user_id,
                                        const std::vector<std::string>& rooms) {
  return impl_->realtime->RegisterConnection(conn_id, user_id, rooms);
}

absl::StatusOr<bool> Client::UnregisterConnection(std::string_view conn_id) {
  return impl_->realtime->UnregisterConnection(conn_id);
}

absl::Status Client::Join(std::string_view conn_id, const std::vector<std::string>& rooms) {
  return impl_->realtime->Join(conn_id, rooms);
}

absl::Status Client::Leave(std::string_view conn_id, const std::vector<std::string>& rooms) {
  return impl_->realtime->Leave(conn_id, rooms);
}

absl::StatusOr<PublishResult> Client::Publish(const PublishTarget& target,
                                              std::string_view event,
                                              std::string_view payload,
                                              const std::vector<ConnectionRef>& except,
                                              std::string_view sender_user_id,
                                              std::string_view request_id) {
  return impl_->realtime->Publish(target, event, payload, except, sender_user_id, request_id);
}

using Operation = client_internal::RealtimeCalls::Operation;

absl::StatusOr<int64_t> Client::JoinConnections(const PublishTarget& of,
                                                const std::vector<std::string>& rooms,
                                                const std::vector<ConnectionRef>& except) {
  return impl_->realtime->ConnectionsCall(Operation::kJoin, of, &rooms, except);
}

absl::StatusOr<int64_t> Client::LeaveConnections(const PublishTarget& of,
                                                 const std::vector<std::string>& rooms,
                                                 const std::vector<ConnectionRef>& except) {
  return impl_->realtime->ConnectionsCall(Operation::kLeave, of, &rooms, except);
}

absl::StatusOr<int64_t> Client::DisconnectConnections(const PublishTarget& of,
                                                      const std::vector<ConnectionRef>& except) {
  return impl_->realtime->ConnectionsCall(Operation::kDisconnect, of, nullptr, except);
}

absl::StatusOr<std::unique_ptr<Subscription>> Client::Subscribe(
    const std::vector<ConnectionRegistration>& connections,
    const std::vector<StreamPosition>& resume) {
  return impl_->realtime->Subscribe(connections, resume);
}

absl::StatusOr<RoomMembersPage> Client::RoomMembers(std::string_view room, int page_size,
                                                    std::string_view page_token) {
  return impl_->realtime->RoomMembers(room, page_size, page_token);
}

absl::StatusOr<std::vector<ConnectionRef>> Client::UserConnections(
    std::string_view user_id) {
  return impl_->realtime->UserConnections(user_id);
}

void Client::RegisterConnectionAsync(std::string_view conn_id, std::string_view user_id,
                                     const std::vector<std::string>& rooms,
                                     StatusCallback done) {
  impl_->realtime->RegisterConnectionAsync(conn_id, user_id, rooms, std::move(done));
}

void Client::UnregisterConnectionAsync(std::string_view conn_id, Callback<bool> done) {
  impl_->realtime->UnregisterConnectionAsync(conn_id, std::move(done));
}

void Client::JoinAsync(std::string_view conn_id, const std::vector<std::string>& rooms,
                       StatusCallback done) {
  impl_->realtime->JoinAsync(conn_id, rooms, std::move(done));
}

void Client::LeaveAsync(std::string_view conn_id, const std::vector<std::string>& rooms,
                        StatusCallback done) {
  impl_->realtime->LeaveAsync(conn_id, rooms, std::move(done));
}

void Client::PublishAsync(const PublishTarget& target, std::string_view event,
                          std::string_view payload, const std::vector<ConnectionRef>& except,
                          std::string_view sender_user_id, Callback<PublishResult> done) {
  impl_->realtime->PublishAsync(target, event, payload, except, sender_user_id,
                                std::move(done));
}

void Client::RoomMembersAsync(std::string_view room, int page_size,
                              std::string_view page_token, Callback<RoomMembersPage> done) {
  impl_->realtime->RoomMembersAsync(room, page_size, page_token, std::move(done));
}

void Client::UserConnectionsAsync(std::string_view user_id,
                                  Callback<std::vector<ConnectionRef>> done) {
  impl_->realtime->UserConnectionsAsync(user_id, std::move(done));
}

absl::StatusOr<RoomHistory> Client::History(std::string_view room,
                                            uint64_t after_sequence, int limit) {
  return impl_->realtime->History(room, after_sequence, limit);
}

}  // namespace stateside

// stateside::Client over gRPC: options, readiness wait, the retry loop and
// one small method per RPC. The contract is in stateside/client.h.
#include "stateside/client.h"

#include <grpcpp/grpcpp.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/src/channel.h"
#include "client/src/convert.h"
#include "client/src/realtime_internal.h"
#include "client/src/retry.h"
#include "client/src/retrying_call.h"
#include "client/src/utf8.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside {

using client_internal::Rpc;
using client_internal::Sv;

namespace {

// Readiness is polled (Health.Check) rather than watched, because a sidecar
// need not implement Health.Watch; this caps the polling interval so that a
// sidecar becoming ready is noticed within ~200 ms.
constexpr absl::Duration kMaxReadyPoll = absl::Milliseconds(200);

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
  return absl::OkStatus();
}

// Text fields travel as protobuf `string`, which must be UTF-8; checking here
// gives a clear INVALID_ARGUMENT instead of a request the sidecar cannot parse.
absl::Status CheckText(std::string_view field, std::string_view text) {
  if (client_internal::IsValidUtf8(text)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(Sv(field), " is not valid UTF-8"));
}

absl::Status CheckRef(const SessionRef& ref) {
  return CheckText(ref.kind == SessionRef::Kind::kCookie ? "cookie" : "session id",
                   ref.value);
}

absl::Status CheckNames(const Attributes& attributes) {
  for (const auto& [name, value] : attributes) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("attribute name", name));
  }
  return absl::OkStatus();
}

}  // namespace

std::string DefaultSocketPath() {
  const char* env = std::getenv("STATESIDE_SOCKET");
  if (env != nullptr && *env != '\0') return env;
  return "/tmp/stateside/stateside.sock";
}

struct Client::Impl {
  // Constant after construction. gRPC channels and stubs are thread-safe.
  ClientOptions options;
  std::shared_ptr<::grpc::Channel> channel;
  std::unique_ptr<v1::SessionService::Stub> sessions;
  std::unique_ptr<v1::AnalyticsService::Stub> analytics;
  std::unique_ptr<v1::LifecycleService::Stub> lifecycle;
  std::unique_ptr<::grpc::health::v1::Health::Stub> health;
  std::unique_ptr<client_internal::RealtimeCalls> realtime;

  absl::Mutex rng_mu;
  absl::BitGen rng ABSL_GUARDED_BY(rng_mu);

  double Jitter() {
    absl::MutexLock lock(&rng_mu);
    return absl::Uniform(absl::IntervalClosed, rng, 0.0, 1.0);
  }

  // CallWithRetries (retrying_call.h) with this client's jitter.
  template <typename Attempt>
  absl::Status Call(Rpc rpc, const Attempt& attempt) {
    return client_internal::CallWithRetries(rpc, options, [this] { return Jitter(); }, attempt);
  }

  absl::Status WaitUntilReady() {
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
        if (serving == ServingStatus::kServing) return absl::OkStatus();
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
};

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(ValidateOptions(options));
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);

  impl->channel = client_internal::MakeChannel(impl->options);
  impl->sessions = v1::SessionService::NewStub(impl->channel);
  impl->analytics = v1::AnalyticsService::NewStub(impl->channel);
  impl->lifecycle = v1::LifecycleService::NewStub(impl->channel);
  impl->health = ::grpc::health::v1::Health::NewStub(impl->channel);
  impl->realtime =
      std::make_unique<client_internal::RealtimeCalls>(impl->channel, impl->options);

  if (impl->options.wait_until_ready) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(impl->WaitUntilReady());
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

const ClientOptions& Client::options() const { return impl_->options; }

absl::StatusOr<Session> Client::CreateSession(std::string_view user_id,
                                              const Attributes& attributes,
                                              const SessionTtls& ttls) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("user_id", user_id));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckNames(attributes));
  v1::CreateSessionRequest request;
  request.set_user_id(std::string(user_id));
  for (const auto& [name, value] : attributes) {
    (*request.mutable_attributes())[name] = value;
  }
  if (ttls.idle) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(
        client_internal::DurationToProto(*ttls.idle, request.mutable_idle_ttl()));
  }
  if (ttls.absolute) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(client_internal::DurationToProto(
        *ttls.absolute, request.mutable_absolute_ttl()));
  }
  v1::CreateSessionResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kCreateSession, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->sessions->Create(context, request, &response);
      }));
  return client_internal::SessionFromProto(response.session());
}

absl::StatusOr<Session> Client::GetSession(const SessionRef& ref, bool touch) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  v1::GetSessionRequest request;
  client_internal::SessionRefToProto(ref, request.mutable_key());
  request.set_no_touch(!touch);
  v1::GetSessionResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kGetSession, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->sessions->Get(context, request, &response);
      }));
  return client_internal::SessionFromProto(response.session());
}

absl::StatusOr<SessionInfo> Client::UpdateSession(
    const SessionRef& ref, const Attributes& set,
    const std::vector<std::string>& remove,
    std::optional<uint64_t> expected_version) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckNames(set));
  v1::UpdateSessionRequest request;
  client_internal::SessionRefToProto(ref, request.mutable_key());
  for (const auto& [name, value] : set) (*request.mutable_set())[name] = value;
  for (const std::string& name : remove) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("attribute name", name));
    request.add_delete_(name);
  }
  if (expected_version) request.set_expected_version(*expected_version);
  v1::UpdateSessionResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kUpdateSession, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->sessions->Update(context, request, &response);
      }));
  return client_internal::SessionInfoFromProto(response.metadata());
}

absl::StatusOr<SessionInfo> Client::TouchSession(const SessionRef& ref) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  v1::TouchSessionRequest request;
  client_internal::SessionRefToProto(ref, request.mutable_key());
  v1::TouchSessionResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kTouchSession, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->sessions->Touch(context, request, &response);
      }));
  return client_internal::SessionInfoFromProto(response.metadata());
}

absl::StatusOr<bool> Client::DestroySession(const SessionRef& ref) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  v1::DestroySessionRequest request;
  client_internal::SessionRefToProto(ref, request.mutable_key());
  v1::DestroySessionResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kDestroySession, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->sessions->Destroy(context, request, &response);
      }));
  return response.existed();
}

absl::StatusOr<Session> Client::RegenerateSession(const SessionRef& ref) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  v1::RegenerateSessionRequest request;
  client_internal::SessionRefToProto(ref, request.mutable_key());
  v1::RegenerateSessionResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kRegenerateSession, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->sessions->Regenerate(context, request, &response);
      }));
  return client_internal::SessionFromProto(response.session());
}

absl::StatusOr<std::vector<SessionInfo>> Client::ListUserSessions(
    std::string_view user_id) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("user_id", user_id));
  v1::ListUserSessionsRequest request;
  request.set_user_id(std::string(user_id));
  v1::ListUserSessionsResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kListUserSessions, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->sessions->ListUserSessions(context, request, &response);
      }));
  std::vector<SessionInfo> sessions;
  sessions.reserve(response.sessions_size());
  for (const auto& m : response.sessions()) {
    sessions.push_back(client_internal::SessionInfoFromProto(m));
  }
  return sessions;
}

absl::StatusOr<uint32_t> Client::DestroyUserSessions(
    std::string_view user_id, const std::optional<SessionRef>& keep) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("user_id", user_id));
  v1::DestroyUserSessionsRequest request;
  request.set_user_id(std::string(user_id));
  if (keep) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(*keep));
    client_internal::SessionRefToProto(*keep, request.mutable_keep());
  }
  v1::DestroyUserSessionsResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kDestroyUserSessions, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->sessions->DestroyUserSessions(context, request, &response);
      }));
  return response.destroyed();
}

absl::Status Client::SetOptOut(std::string_view subject, bool opted_out,
                               std::optional<absl::Duration> ttl) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("subject", subject));
  v1::SetOptOutRequest request;
  request.set_subject(std::string(subject));
  request.set_opted_out(opted_out);
  if (ttl) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(
        client_internal::DurationToProto(*ttl, request.mutable_ttl()));
  }
  v1::SetOptOutResponse response;
  return impl_->Call(Rpc::kSetOptOut, [&](::grpc::ClientContext* context) {
    response.Clear();
    return impl_->analytics->SetOptOut(context, request, &response);
  });
}

absl::StatusOr<bool> Client::GetOptOut(std::string_view subject) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("subject", subject));
  v1::GetOptOutRequest request;
  request.set_subject(std::string(subject));
  v1::GetOptOutResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kGetOptOut, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->analytics->GetOptOut(context, request, &response);
      }));
  return response.opted_out();
}

absl::StatusOr<InstanceInfo> Client::GetInstance() {
  v1::GetInstanceRequest request;
  v1::GetInstanceResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      impl_->Call(Rpc::kGetInstance, [&](::grpc::ClientContext* context) {
        response.Clear();
        return impl_->lifecycle->GetInstance(context, request, &response);
      }));
  return client_internal::InstanceFromProto(response.instance());
}

absl::StatusOr<ServingStatus> Client::CheckHealth(std::string_view service) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("service", service));
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

absl::Status Client::Drain() {
  v1::DrainRequest request;
  v1::DrainResponse response;
  return impl_->Call(Rpc::kDrain, [&](::grpc::ClientContext* context) {
    response.Clear();
    return impl_->lifecycle->Drain(context, request, &response);
  });
}

absl::Status Client::ReportDrained() {
  v1::ReportDrainedRequest request;
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
                                              const std::vector<ConnectionRef>& except) {
  return impl_->realtime->Publish(target, event, payload, except);
}

absl::StatusOr<std::unique_ptr<Subscription>> Client::Subscribe(
    const std::vector<ConnectionRegistration>& connections) {
  return impl_->realtime->Subscribe(connections);
}

absl::StatusOr<RoomMembersPage> Client::RoomMembers(std::string_view room, int page_size,
                                                    std::string_view page_token) {
  return impl_->realtime->RoomMembers(room, page_size, page_token);
}

absl::StatusOr<std::vector<ConnectionRef>> Client::UserConnections(
    std::string_view user_id) {
  return impl_->realtime->UserConnections(user_id);
}

absl::StatusOr<RoomHistory> Client::History(std::string_view room,
                                            uint64_t after_sequence, int limit) {
  return impl_->realtime->History(room, after_sequence, limit);
}

}  // namespace stateside

// Protobuf ⇄ public types (see convert.h).
#include "client/src/convert.h"

#include <string>
#include <utility>

namespace stateside::client_internal {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  // grpc::StatusCode and absl::StatusCode use the canonical numbering 0..16.
  const int code = static_cast<int>(status.error_code());
  const auto absl_code = (code >= 0 && code <= 16)
                             ? static_cast<absl::StatusCode>(code)
                             : absl::StatusCode::kUnknown;
  absl::Status result(absl_code, status.error_message());
  v1::RpcStatus details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const google::protobuf::Any& any : details.details()) {
      if (any.type_url() == Sv(kErrorInfoPayload)) {
        result.SetPayload(Sv(kErrorInfoPayload), absl::Cord(any.value()));
        break;
      }
    }
  }
  return result;
}

absl::Status FromPipeResult(const v1::PipeResult& result) {
  absl::Status status(static_cast<absl::StatusCode>(result.code()), Sv(result.message()));
  if (result.has_error_info()) {
    status.SetPayload(Sv(kErrorInfoPayload), absl::Cord(result.error_info().SerializeAsString()));
  }
  return status;
}

absl::Time TimeFromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

absl::Duration DurationFromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status DurationToProto(absl::Duration d, google::protobuf::Duration* out) {
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("duration must be finite");
  }
  // Truncation toward zero keeps seconds and nanos of the same sign, as
  // google.protobuf.Duration requires.
  const int64_t seconds = absl::ToInt64Seconds(d);
  out->set_seconds(seconds);
  out->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(d - absl::Seconds(seconds))));
  return absl::OkStatus();
}

void SessionRefToProto(const SessionRef& ref, v1::SessionKey* out) {
  if (ref.kind == SessionRef::Kind::kCookie) {
    out->set_cookie(ref.value);
  } else {
    out->set_id(ref.value);
  }
}

SessionInfo SessionInfoFromProto(const v1::SessionMetadata& m) {
  SessionInfo info;
  info.id = m.id();
  info.user_id = m.user_id();
  info.created = TimeFromProto(m.created());
  info.last_access = TimeFromProto(m.last_access());
  info.idle_expiry = TimeFromProto(m.idle_expiry());
  info.absolute_expiry = TimeFromProto(m.absolute_expiry());
  info.version = m.version();
  return info;
}

Session SessionFromProto(v1::Session&& s) {
  Session session;
  session.info = SessionInfoFromProto(s.metadata());
  for (auto& [name, value] : *s.mutable_attributes()) {
    session.attributes.emplace(name, std::move(value));
  }
  session.cookie = std::move(*s.mutable_cookie());
  return session;
}

DrainState DrainStateFromProto(v1::DrainState s) {
  switch (s) {
    case v1::DRAIN_STATE_SERVING: return DrainState::kServing;
    case v1::DRAIN_STATE_DRAINING: return DrainState::kDraining;
    case v1::DRAIN_STATE_DRAINED: return DrainState::kDrained;
    default: return DrainState::kUnspecified;
  }
}

DrainNotice DrainNoticeFromProto(const v1::DrainEvent& e) {
  DrainNotice notice;
  notice.state = DrainStateFromProto(e.state());
  if (e.has_deadline()) notice.deadline = TimeFromProto(e.deadline());
  notice.drain_token = e.drain_token();
  return notice;
}

InstanceInfo InstanceFromProto(const v1::Instance& i) {
  InstanceInfo info;
  info.id = i.id();
  info.hostname = i.hostname();
  info.pid = i.pid();
  info.start_time = TimeFromProto(i.start_time());
  info.uptime = DurationFromProto(i.uptime());
  info.version = i.version();
  info.drain_state = DrainStateFromProto(i.drain_state());
  info.backend = i.backend();
  info.admin_address = i.admin_address();
  info.ready = i.ready();
  if (i.has_prestop_delay()) info.prestop_delay = DurationFromProto(i.prestop_delay());
  return info;
}

InstanceInfo InstanceFromProto(const v1::GetInstanceResponse& r) {
  InstanceInfo info = InstanceFromProto(r.instance());
  info.api_revision = r.api_revision();
  const v1::Capabilities& c = r.capabilities();
  info.capabilities.pipe = c.pipe();
  info.capabilities.session_events = c.session_events();
  info.capabilities.reflection = c.reflection();
  info.capabilities.request_ids = c.request_ids();
  info.capabilities.realtime_resume = c.realtime_resume();
  switch (c.topology()) {
    case v1::TOPOLOGY_MEMORY: info.capabilities.topology = StoreTopology::kMemory; break;
    case v1::TOPOLOGY_STANDALONE: info.capabilities.topology = StoreTopology::kStandalone; break;
    case v1::TOPOLOGY_SENTINEL: info.capabilities.topology = StoreTopology::kSentinel; break;
    case v1::TOPOLOGY_CLUSTER: info.capabilities.topology = StoreTopology::kCluster; break;
    default: break;  // unspecified, or a topology newer than this client
  }
  return info;
}

ServingStatus ServingStatusFromProto(
    grpc::health::v1::HealthCheckResponse::ServingStatus s) {
  using R = grpc::health::v1::HealthCheckResponse;
  switch (s) {
    case R::SERVING: return ServingStatus::kServing;
    case R::NOT_SERVING: return ServingStatus::kNotServing;
    case R::SERVICE_UNKNOWN: return ServingStatus::kServiceUnknown;
    default: return ServingStatus::kUnknown;
  }
}

}  // namespace stateside::client_internal

// Proto <-> SessionManager types.
#include "sidecar/rpc/convert.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/common/string_view.h"

namespace stateside::rpc {
namespace {

// A TTL beyond a century is a bug in the caller; the managers have their own,
// tighter bounds.
constexpr int64_t kMaxDurationSeconds = int64_t{100} * 365 * 24 * 3600;

absl::Status BadField(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(Sv(field), ": ", Sv(problem)));
}

}  // namespace

void ToProto(absl::Time time, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(time);  // rounds down
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(
      (time - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
}

void ToProto(absl::Duration duration, google::protobuf::Duration* out) {
  const int64_t seconds = absl::IDivDuration(duration, absl::Seconds(1), &duration);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(duration / absl::Nanoseconds(1)));
}

absl::StatusOr<absl::Duration> NonNegativeDurationFromProto(
    const google::protobuf::Duration& duration, std::string_view field) {
  if (duration.seconds() < 0 || duration.nanos() < 0 ||
      duration.nanos() >= 1'000'000'000 ||
      duration.seconds() > kMaxDurationSeconds) {
    return BadField(field, "malformed or out-of-range duration");
  }
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

absl::StatusOr<absl::Duration> PositiveDurationFromProto(
    const google::protobuf::Duration& duration, std::string_view field) {
  auto d = NonNegativeDurationFromProto(duration, field);
  if (d.ok() && *d <= absl::ZeroDuration()) return BadField(field, "must be positive");
  return d;
}

absl::StatusOr<session::SessionKey> KeyFromProto(bool present,
                                        const v1::SessionKey& key,
                                        std::string_view field) {
  switch (present ? key.kind_case() : v1::SessionKey::KIND_NOT_SET) {
    case v1::SessionKey::kId:
      if (key.id().empty()) return BadField(field, "id is empty");
      if (key.id().size() > kMaxKeyBytes) {
        return BadField(field, absl::StrCat("id is longer than ", kMaxKeyBytes,
                                            " bytes"));
      }
      return session::SessionKey::Id(key.id());
    case v1::SessionKey::kCookie:
      if (key.cookie().empty()) return BadField(field, "cookie is empty");
      if (key.cookie().size() > kMaxKeyBytes) {
        return BadField(field, absl::StrCat("cookie is longer than ",
                                            kMaxKeyBytes, " bytes"));
      }
      return session::SessionKey::Cookie(key.cookie());
    case v1::SessionKey::KIND_NOT_SET:
      break;
  }
  return BadField(field, "required: set id or cookie");
}

// The session limit fields Create and Regenerate share, into `params`.
template <typename Request, typename Params>
absl::Status SessionLimitFromProto(const Request& request, Params* params) {
  if (request.has_max_sessions_per_user()) {
    params->max_sessions_per_user = request.max_sessions_per_user();
  }
  switch (request.session_limit_policy()) {
    case v1::SESSION_LIMIT_POLICY_UNSPECIFIED:
      return absl::OkStatus();
    case v1::SESSION_LIMIT_POLICY_REFUSE:
      params->session_limit_policy = session::SessionLimitPolicy::kRefuse;
      return absl::OkStatus();
    case v1::SESSION_LIMIT_POLICY_END_OLDEST:
      params->session_limit_policy = session::SessionLimitPolicy::kEndOldest;
      return absl::OkStatus();
    default:
      break;
  }
  return BadField("session_limit_policy", "unknown value");
}

absl::StatusOr<session::RegenerateParams> RegenerateParamsFromProto(
    const v1::RegenerateSessionRequest& request) {
  session::RegenerateParams params;
  if (request.has_user_id()) params.user_id = request.user_id();
  if (absl::Status s = SessionLimitFromProto(request, &params); !s.ok()) return s;
  return params;
}

absl::StatusOr<session::CreateParams> CreateParamsFromProto(
    const v1::CreateSessionRequest& request) {
  session::CreateParams params;
  params.user_id = request.user_id();
  params.attributes.reserve(request.attributes_size());
  for (const auto& [name, value] : request.attributes()) {
    params.attributes.emplace(name, value);
  }
  if (request.has_idle_ttl()) {
    auto ttl = PositiveDurationFromProto(request.idle_ttl(), "idle_ttl");
    if (!ttl.ok()) return ttl.status();
    params.idle_ttl = *ttl;
  }
  if (request.has_absolute_ttl()) {
    auto ttl = PositiveDurationFromProto(request.absolute_ttl(), "absolute_ttl");
    if (!ttl.ok()) return ttl.status();
    params.absolute_ttl = *ttl;
  }
  if (absl::Status s = SessionLimitFromProto(request, &params); !s.ok()) return s;
  return params;
}

session::UpdateParams UpdateParamsFromProto(const v1::UpdateSessionRequest& request) {
  session::UpdateParams params;
  params.set.reserve(request.set_size());
  for (const auto& [name, value] : request.set()) params.set.emplace(name, value);
  params.remove.assign(request.remove().begin(), request.remove().end());
  if (request.has_expected_version()) {
    params.expected_version = request.expected_version();
  }
  return params;
}

void ToProto(const session::SessionInfo& info, v1::SessionMetadata* out) {
  out->set_id(info.id);
  out->set_user_id(info.user_id);
  ToProto(info.created, out->mutable_created());
  ToProto(info.last_access, out->mutable_last_access());
  ToProto(info.idle_expiry, out->mutable_idle_expiry());
  ToProto(info.absolute_expiry, out->mutable_absolute_expiry());
  out->set_version(info.version);
}

void ToProto(session::Session session, v1::Session* out) {
  ToProto(session.info, out->mutable_metadata());
  auto& attributes = *out->mutable_attributes();
  for (auto& [name, value] : session.attributes) attributes[name] = std::move(value);
  out->set_cookie(std::move(session.cookie));
}

}  // namespace stateside::rpc

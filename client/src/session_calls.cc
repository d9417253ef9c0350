// The session and opt-out methods of stateside::Client, synchronous and
// asynchronous: each builds its operation as a PipeCall (checking the
// arguments), runs it through Client::Impl (Sync or Async, over the Pipe or
// the unary transport) and turns the result into the public type.
#include <utility>

#include "client/src/client_impl.h"
#include "client/src/convert.h"
#include "client/src/utf8.h"
#include "stateside/client.h"

namespace stateside {

using client_internal::CheckText;
using client_internal::Rpc;

namespace {

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

// --- Building the operations ---

absl::StatusOr<v1::PipeCall> CreateCall(std::string_view user_id,
                                        const Attributes& attributes,
                                        const SessionTtls& ttls) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("user_id", user_id));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckNames(attributes));
  v1::PipeCall call;
  v1::CreateSessionRequest& request = *call.mutable_create();
  request.set_user_id(std::string(user_id));
  for (const auto& [name, value] : attributes) {
    (*request.mutable_attributes())[name] = value;
  }
  if (ttls.idle) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(
        client_internal::DurationToProto(*ttls.idle, request.mutable_idle_ttl()));
  }
  if (ttls.absolute) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(
        client_internal::DurationToProto(*ttls.absolute, request.mutable_absolute_ttl()));
  }
  return call;
}

absl::StatusOr<v1::PipeCall> GetCall(const SessionRef& ref, bool touch) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  v1::PipeCall call;
  client_internal::SessionRefToProto(ref, call.mutable_get()->mutable_key());
  call.mutable_get()->set_no_touch(!touch);
  return call;
}

absl::StatusOr<v1::PipeCall> UpdateCall(const SessionRef& ref, const Attributes& set,
                                        const std::vector<std::string>& remove,
                                        std::optional<uint64_t> expected_version) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckNames(set));
  v1::PipeCall call;
  v1::UpdateSessionRequest& request = *call.mutable_update();
  client_internal::SessionRefToProto(ref, request.mutable_key());
  for (const auto& [name, value] : set) (*request.mutable_set())[name] = value;
  for (const std::string& name : remove) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("attribute name", name));
    request.add_delete_(name);
  }
  if (expected_version) request.set_expected_version(*expected_version);
  return call;
}

// Touch, Destroy and Regenerate take a session key alone.
template <auto kMutable>
absl::StatusOr<v1::PipeCall> KeyCall(const SessionRef& ref) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  v1::PipeCall call;
  client_internal::SessionRefToProto(ref, (call.*kMutable)()->mutable_key());
  return call;
}

absl::StatusOr<v1::PipeCall> ListUserCall(std::string_view user_id) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("user_id", user_id));
  v1::PipeCall call;
  call.mutable_list_user_sessions()->set_user_id(std::string(user_id));
  return call;
}

absl::StatusOr<v1::PipeCall> DestroyUserCall(std::string_view user_id,
                                             const std::optional<SessionRef>& keep) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("user_id", user_id));
  v1::PipeCall call;
  v1::DestroyUserSessionsRequest& request = *call.mutable_destroy_user_sessions();
  request.set_user_id(std::string(user_id));
  if (keep) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(*keep));
    client_internal::SessionRefToProto(*keep, request.mutable_keep());
  }
  return call;
}

absl::StatusOr<v1::PipeCall> SetOptOutCall(std::string_view subject, bool opted_out,
                                           std::optional<absl::Duration> ttl) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("subject", subject));
  v1::PipeCall call;
  v1::SetOptOutRequest& request = *call.mutable_set_opt_out();
  request.set_subject(std::string(subject));
  request.set_opted_out(opted_out);
  if (ttl) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(
        client_internal::DurationToProto(*ttl, request.mutable_ttl()));
  }
  return call;
}

absl::StatusOr<v1::PipeCall> GetOptOutCall(std::string_view subject) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("subject", subject));
  v1::PipeCall call;
  call.mutable_get_opt_out()->set_subject(std::string(subject));
  return call;
}

// --- Reading the results ---

Session CreatedSession(const v1::PipeResult& r) {
  return client_internal::SessionFromProto(r.create().session());
}
Session GotSession(const v1::PipeResult& r) {
  return client_internal::SessionFromProto(r.get().session());
}
Session RegeneratedSession(const v1::PipeResult& r) {
  return client_internal::SessionFromProto(r.regenerate().session());
}
SessionInfo UpdatedInfo(const v1::PipeResult& r) {
  return client_internal::SessionInfoFromProto(r.update().metadata());
}
SessionInfo TouchedInfo(const v1::PipeResult& r) {
  return client_internal::SessionInfoFromProto(r.touch().metadata());
}
bool Existed(const v1::PipeResult& r) { return r.destroy().existed(); }
std::vector<SessionInfo> UserSessions(const v1::PipeResult& r) {
  std::vector<SessionInfo> sessions;
  sessions.reserve(r.list_user_sessions().sessions_size());
  for (const auto& m : r.list_user_sessions().sessions()) {
    sessions.push_back(client_internal::SessionInfoFromProto(m));
  }
  return sessions;
}
uint32_t Destroyed(const v1::PipeResult& r) { return r.destroy_user_sessions().destroyed(); }
bool OptedOut(const v1::PipeResult& r) { return r.get_opt_out().opted_out(); }
// SetOptOut answers nothing but its status.
bool Nothing(const v1::PipeResult&) { return true; }

}  // namespace

// --- Synchronous ---

absl::StatusOr<Session> Client::CreateSession(std::string_view user_id,
                                              const Attributes& attributes,
                                              const SessionTtls& ttls) {
  return impl_->Sync<Session>(Rpc::kCreateSession, CreateCall(user_id, attributes, ttls),
                              CreatedSession);
}

absl::StatusOr<Session> Client::GetSession(const SessionRef& ref, bool touch) {
  return impl_->Sync<Session>(Rpc::kGetSession, GetCall(ref, touch), GotSession);
}

absl::StatusOr<SessionInfo> Client::UpdateSession(const SessionRef& ref,
                                                  const Attributes& set,
                                                  const std::vector<std::string>& remove,
                                                  std::optional<uint64_t> expected_version) {
  return impl_->Sync<SessionInfo>(Rpc::kUpdateSession,
                                  UpdateCall(ref, set, remove, expected_version),
                                  UpdatedInfo);
}

absl::StatusOr<SessionInfo> Client::TouchSession(const SessionRef& ref) {
  return impl_->Sync<SessionInfo>(Rpc::kTouchSession,
                                  KeyCall<&v1::PipeCall::mutable_touch>(ref), TouchedInfo);
}

absl::StatusOr<bool> Client::DestroySession(const SessionRef& ref) {
  return impl_->Sync<bool>(Rpc::kDestroySession,
                           KeyCall<&v1::PipeCall::mutable_destroy>(ref), Existed);
}

absl::StatusOr<Session> Client::RegenerateSession(const SessionRef& ref) {
  return impl_->Sync<Session>(Rpc::kRegenerateSession,
                              KeyCall<&v1::PipeCall::mutable_regenerate>(ref),
                              RegeneratedSession);
}

absl::StatusOr<std::vector<SessionInfo>> Client::ListUserSessions(std::string_view user_id) {
  return impl_->Sync<std::vector<SessionInfo>>(Rpc::kListUserSessions,
                                               ListUserCall(user_id), UserSessions);
}

absl::StatusOr<uint32_t> Client::DestroyUserSessions(std::string_view user_id,
                                                     const std::optional<SessionRef>& keep) {
  return impl_->Sync<uint32_t>(Rpc::kDestroyUserSessions, DestroyUserCall(user_id, keep),
                               Destroyed);
}

absl::Status Client::SetOptOut(std::string_view subject, bool opted_out,
                               std::optional<absl::Duration> ttl) {
  return impl_->Sync<bool>(Rpc::kSetOptOut, SetOptOutCall(subject, opted_out, ttl), Nothing)
      .status();
}

absl::StatusOr<bool> Client::GetOptOut(std::string_view subject) {
  return impl_->Sync<bool>(Rpc::kGetOptOut, GetOptOutCall(subject), OptedOut);
}

// --- Asynchronous ---

void Client::CreateSessionAsync(std::string_view user_id, const Attributes& attributes,
                                const SessionTtls& ttls, Callback<Session> done) {
  impl_->Async<Session>(Rpc::kCreateSession, CreateCall(user_id, attributes, ttls),
                        CreatedSession, std::move(done));
}

void Client::GetSessionAsync(const SessionRef& ref, bool touch, Callback<Session> done) {
  impl_->Async<Session>(Rpc::kGetSession, GetCall(ref, touch), GotSession, std::move(done));
}

void Client::UpdateSessionAsync(const SessionRef& ref, const Attributes& set,
                                const std::vector<std::string>& remove,
                                std::optional<uint64_t> expected_version,
                                Callback<SessionInfo> done) {
  impl_->Async<SessionInfo>(Rpc::kUpdateSession,
                            UpdateCall(ref, set, remove, expected_version), UpdatedInfo,
                            std::move(done));
}

void Client::TouchSessionAsync(const SessionRef& ref, Callback<SessionInfo> done) {
  impl_->Async<SessionInfo>(Rpc::kTouchSession, KeyCall<&v1::PipeCall::mutable_touch>(ref),
                            TouchedInfo, std::move(done));
}

void Client::DestroySessionAsync(const SessionRef& ref, Callback<bool> done) {
  impl_->Async<bool>(Rpc::kDestroySession, KeyCall<&v1::PipeCall::mutable_destroy>(ref),
                     Existed, std::move(done));
}

void Client::RegenerateSessionAsync(const SessionRef& ref, Callback<Session> done) {
  impl_->Async<Session>(Rpc::kRegenerateSession,
                        KeyCall<&v1::PipeCall::mutable_regenerate>(ref), RegeneratedSession,
                        std::move(done));
}

void Client::ListUserSessionsAsync(std::string_view user_id,
                                   Callback<std::vector<SessionInfo>> done) {
  impl_->Async<std::vector<SessionInfo>>(Rpc::kListUserSessions, ListUserCall(user_id),
                                         UserSessions, std::move(done));
}

void Client::DestroyUserSessionsAsync(std::string_view user_id,
                                      const std::optional<SessionRef>& keep,
                                      Callback<uint32_t> done) {
  impl_->Async<uint32_t>(Rpc::kDestroyUserSessions, DestroyUserCall(user_id, keep),
                         Destroyed, std::move(done));
}

void Client::SetOptOutAsync(std::string_view subject, bool opted_out,
                            std::optional<absl::Duration> ttl, StatusCallback done) {
  impl_->Async<bool>(Rpc::kSetOptOut, SetOptOutCall(subject, opted_out, ttl), Nothing,
                     [done = std::move(done)](absl::StatusOr<bool> result) mutable {
                       done(result.status());
                     });
}

void Client::GetOptOutAsync(std::string_view subject, Callback<bool> done) {
  impl_->Async<bool>(Rpc::kGetOptOut, GetOptOutCall(subject), OptedOut, std::move(done));
}

}  // namespace stateside

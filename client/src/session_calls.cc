// The session and opt-out methods of stateside::Client, synchronous and
// asynchronous: each builds its operation as a PipeCall (checking the
// arguments), runs it through Client::Impl (Sync or Async, over the Pipe or
// the unary transport) and turns the result into the public type.
#include <memory>
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

v1::SessionLimitPolicy LimitPolicyToProto(SessionLimitPolicy policy) {
  switch (policy) {
    case SessionLimitPolicy::kRefuse:
      return v1::SESSION_LIMIT_POLICY_REFUSE;
    case SessionLimitPolicy::kEndOldest:
      return v1::SESSION_LIMIT_POLICY_END_OLDEST;
    case SessionLimitPolicy::kDefault:
      break;
  }
  return v1::SESSION_LIMIT_POLICY_UNSPECIFIED;
}

absl::StatusOr<v1::PipeCall> CreateCall(std::string_view user_id,
                                        const Attributes& attributes,
                                        const SessionTtls& ttls,
                                        const SessionLimit& limit,
                                        std::string_view request_id = "") {
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
  if (limit.max_sessions_per_user) {
    request.set_max_sessions_per_user(*limit.max_sessions_per_user);
  }
  request.set_session_limit_policy(LimitPolicyToProto(limit.policy));
  // One per call: every attempt of it carries the same (retries apply once).
  request.set_request_id(request_id.empty() ? client_internal::NewRequestId()
                                            : std::string(request_id));
  return call;
}

absl::StatusOr<v1::PipeCall> RegenerateCall(const SessionRef& ref,
                                            const RegenerateOptions& options) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  v1::PipeCall call;
  v1::RegenerateSessionRequest& request = *call.mutable_regenerate();
  client_internal::SessionRefToProto(ref, request.mutable_key());
  if (options.user_id) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("user_id", *options.user_id));
    request.set_user_id(*options.user_id);
  }
  if (options.limit.max_sessions_per_user) {
    request.set_max_sessions_per_user(*options.limit.max_sessions_per_user);
  }
  request.set_session_limit_policy(LimitPolicyToProto(options.limit.policy));
  request.set_request_id(options.request_id.empty() ? client_internal::NewRequestId()
                                                    : options.request_id);
  return call;
}

absl::StatusOr<v1::PipeCall> GetCall(const SessionRef& ref, bool touch) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  v1::PipeCall call;
  client_internal::SessionRefToProto(ref, call.mutable_get()->mutable_key());
  call.mutable_get()->set_touch(touch);
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
    request.add_remove(name);
  }
  if (expected_version) request.set_expected_version(*expected_version);
  return call;
}

// Touch and Destroy take a session key alone.
template <auto kMutable>
absl::StatusOr<v1::PipeCall> KeyCall(const SessionRef& ref) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef(ref));
  v1::PipeCall call;
  client_internal::SessionRefToProto(ref, (call.*kMutable)()->mutable_key());
  return call;
}

// The page size of ListUserSessions' walk: the sidecar's largest.
constexpr uint32_t kWalkPageSize = 1000;

absl::StatusOr<v1::PipeCall> ListUserCall(std::string_view user_id,
                                          std::string_view page_token, uint32_t page_size) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("user_id", user_id));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("page_token", page_token));
  v1::PipeCall call;
  v1::ListUserSessionsRequest& request = *call.mutable_list_user_sessions();
  request.set_user_id(std::string(user_id));
  request.set_page_token(std::string(page_token));
  request.set_page_size(page_size);
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

absl::StatusOr<v1::PipeCall> LogoutCall(std::string_view user_id,
                                        const LogoutOptions& options) {
  absl::StatusOr<v1::PipeCall> call = DestroyUserCall(user_id, options.keep);
  if (call.ok()) {
    call->mutable_destroy_user_sessions()->set_close_connections(options.close_connections);
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

// A result is read once: its session's bytes are moved out, not copied.
Session CreatedSession(v1::PipeResult& r) {
  return client_internal::SessionFromProto(std::move(*r.mutable_create()->mutable_session()));
}
Session GotSession(v1::PipeResult& r) {
  return client_internal::SessionFromProto(std::move(*r.mutable_get()->mutable_session()));
}
Session RegeneratedSession(v1::PipeResult& r) {
  return client_internal::SessionFromProto(
      std::move(*r.mutable_regenerate()->mutable_session()));
}
// A Regenerate asked to set the owner: a sidecar before API revision 2
// ignores the field and answers with the owner unchanged, which must not
// pass for a login.
auto RegeneratedFor(std::optional<std::string> owner) {
  return [owner = std::move(owner)](v1::PipeResult& r) -> absl::StatusOr<Session> {
    Session session = RegeneratedSession(r);
    if (owner && session.info.user_id != *owner) {
      return absl::FailedPreconditionError(
          "the sidecar did not give the session the user_id asked for (it predates "
          "API revision 2); the old id is gone, the new one keeps its owner");
    }
    return session;
  };
}
SessionInfo UpdatedInfo(const v1::PipeResult& r) {
  return client_internal::SessionInfoFromProto(r.update().metadata());
}
SessionInfo TouchedInfo(const v1::PipeResult& r) {
  return client_internal::SessionInfoFromProto(r.touch().metadata());
}
bool Existed(const v1::PipeResult& r) { return r.destroy().existed(); }
UserSessionsPage UserSessions(const v1::PipeResult& r) {
  UserSessionsPage page;
  page.sessions.reserve(r.list_user_sessions().sessions_size());
  for (const auto& m : r.list_user_sessions().sessions()) {
    page.sessions.push_back(client_internal::SessionInfoFromProto(m));
  }
  page.next_page_token = r.list_user_sessions().next_page_token();
  return page;
}

// ListUserSessionsAsync's walk: the pages so far and where it reports.
struct UserWalk {
  Client* client;
  std::string user_id;
  std::vector<SessionInfo> sessions;
  Callback<std::vector<SessionInfo>> done;
};

void WalkNextPage(std::shared_ptr<UserWalk> walk, std::string token) {
  Client* client = walk->client;
  const std::string user_id = walk->user_id;
  client->ListUserSessionsPageAsync(
      user_id, token, kWalkPageSize,
      [walk = std::move(walk)](absl::StatusOr<UserSessionsPage> page) mutable {
        if (!page.ok()) return walk->done(page.status());
        for (SessionInfo& info : page->sessions) walk->sessions.push_back(std::move(info));
        if (page->next_page_token.empty()) return walk->done(std::move(walk->sessions));
        WalkNextPage(std::move(walk), std::move(page->next_page_token));
      });
}
uint32_t Destroyed(const v1::PipeResult& r) { return r.destroy_user_sessions().destroyed(); }
bool OptedOut(const v1::PipeResult& r) { return r.get_opt_out().opted_out(); }
// SetOptOut answers nothing but its status.
bool Nothing(const v1::PipeResult&) { return true; }

}  // namespace

// --- Synchronous ---

absl::StatusOr<Session> Client::CreateSession(std::string_view user_id,
                                              const Attributes& attributes,
                                              const SessionTtls& ttls,
                                              const SessionLimit& limit,
                                              std::string_view request_id) {
  return impl_->Sync<Session>(Rpc::kCreateSession,
                              CreateCall(user_id, attributes, ttls, limit, request_id),
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
                              RegenerateCall(ref, RegenerateOptions()),
                              RegeneratedSession);
}

absl::StatusOr<Session> Client::RegenerateSession(const SessionRef& ref,
                                                  const RegenerateOptions& options) {
  return impl_->Sync<Session>(Rpc::kRegenerateSession, RegenerateCall(ref, options),
                              RegeneratedFor(options.user_id));
}

absl::StatusOr<UserSessionsPage> Client::ListUserSessionsPage(std::string_view user_id,
                                                              std::string_view page_token,
                                                              uint32_t page_size) {
  return impl_->Sync<UserSessionsPage>(Rpc::kListUserSessions,
                                       ListUserCall(user_id, page_token, page_size),
                                       UserSessions);
}

absl::StatusOr<std::vector<SessionInfo>> Client::ListUserSessions(std::string_view user_id) {
  std::vector<SessionInfo> sessions;
  std::string token;
  do {
    absl::StatusOr<UserSessionsPage> page = ListUserSessionsPage(user_id, token, kWalkPageSize);
    if (!page.ok()) return page.status();
    for (SessionInfo& info : page->sessions) sessions.push_back(std::move(info));
    token = std::move(page->next_page_token);
  } while (!token.empty());
  return sessions;
}

absl::StatusOr<uint32_t> Client::DestroyUserSessions(std::string_view user_id,
                                                     const std::optional<SessionRef>& keep) {
  return impl_->Sync<uint32_t>(Rpc::kDestroyUserSessions, DestroyUserCall(user_id, keep),
                               Destroyed);
}

absl::StatusOr<uint32_t> Client::DestroyUserSessions(std::string_view user_id,
                                                     const LogoutOptions& options) {
  return impl_->Sync<uint32_t>(Rpc::kDestroyUserSessions, LogoutCall(user_id, options),
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
  CreateSessionAsync(user_id, attributes, ttls, SessionLimit{}, std::move(done));
}

void Client::CreateSessionAsync(std::string_view user_id, const Attributes& attributes,
                                const SessionTtls& ttls, const SessionLimit& limit,
                                Callback<Session> done) {
  impl_->Async<Session>(Rpc::kCreateSession, CreateCall(user_id, attributes, ttls, limit),
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
                        RegenerateCall(ref, RegenerateOptions()), RegeneratedSession,
                        std::move(done));
}

void Client::RegenerateSessionAsync(const SessionRef& ref, const RegenerateOptions& options,
                                    Callback<Session> done) {
  impl_->Async<Session>(Rpc::kRegenerateSession, RegenerateCall(ref, options),
                        RegeneratedFor(options.user_id), std::move(done));
}

void Client::ListUserSessionsPageAsync(std::string_view user_id, std::string_view page_token,
                                       uint32_t page_size, Callback<UserSessionsPage> done) {
  impl_->Async<UserSessionsPage>(Rpc::kListUserSessions,
                                 ListUserCall(user_id, page_token, page_size), UserSessions,
                                 std::move(done));
}

void Client::ListUserSessionsAsync(std::string_view user_id,
                                   Callback<std::vector<SessionInfo>> done) {
  WalkNextPage(std::make_shared<UserWalk>(UserWalk{this, std::string(user_id), {}, std::move(done)}),
               "");
}

void Client::DestroyUserSessionsAsync(std::string_view user_id,
                                      const std::optional<SessionRef>& keep,
                                      Callback<uint32_t> done) {
  impl_->Async<uint32_t>(Rpc::kDestroyUserSessions, DestroyUserCall(user_id, keep),
                         Destroyed, std::move(done));
}

void Client::DestroyUserSessionsAsync(std::string_view user_id,
                                      const LogoutOptions& options,
                                      Callback<uint32_t> done) {
  impl_->Async<uint32_t>(Rpc::kDestroyUserSessions, LogoutCall(user_id, options), Destroyed,
                         std::move(done));
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

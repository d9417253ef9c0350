#include "sidecar/rpc/operations.h"

#include <optional>
#include <utility>
#include <vector>

#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/request_once.h"

namespace stateside::rpc {
namespace {

absl::Status MissingUserId() { return absl::InvalidArgumentError("user_id: required"); }

absl::Status NoManager() {
  return absl::UnimplementedError("this server does not serve this operation");
}

// The key of a request that names one session.
template <typename Request>
absl::StatusOr<session::SessionKey> KeyOf(const Request& request) {
  return KeyFromProto(request.has_key(), request.key(), "key");
}

// Runs `fill` on the value and reports OK, or reports the error.
template <typename T, typename Fill>
void Answer(absl::StatusOr<T> result, Fill&& fill, Operations::Done done) {
  if (!result.ok()) return std::move(done)(result.status());
  std::forward<Fill>(fill)(*std::move(result));
  std::move(done)(absl::OkStatus());
}

}  // namespace

void Operations::Offloaded(absl::AnyInvocable<void(Done) &&> work, Done done,
                           Offload::Probe probe) const {
  if (offload_ == nullptr) return std::move(work)(std::move(done));
  offload_->Run(
      [work = std::move(work), done = std::move(done)](absl::Status admitted) mutable {
        if (!admitted.ok()) return std::move(done)(std::move(admitted));
        std::move(work)(std::move(done));
      },
      std::move(probe));
}

template <typename Response>
void Operations::OffloadedOnce(std::optional<OnceClaim> claim, Response* response,
                               absl::AnyInvocable<void(Done) &&> run, Done done,
                               Offload::Probe probe) const {
  Offloaded(
      [this, claim = std::move(claim), response, run = std::move(run)](Done offloaded) mutable {
        RunOnce(requests_, claim, response, std::move(run), std::move(offloaded));
      },
      std::move(done), std::move(probe));
}

void Operations::Create(const v1::CreateSessionRequest& request,
                        v1::CreateSessionResponse* response, Done done,
        Offload::Probe probe) const {
  if (sessions_ == nullptr) return std::move(done)(NoManager());
  auto params = CreateParamsFromProto(request);
  if (!params.ok()) return std::move(done)(params.status());
  // Before admission: a malformed request_id is INVALID_ARGUMENT even on a
  // full pool.
  if (absl::Status id = CheckRequestId(requests_, request); !id.ok()) {
    return std::move(done)(std::move(id));
  }
  std::optional<OnceClaim> claim =
      ClaimOf(requests_, "SessionService/Create", request.user_id(), request);
  if (params->user_id.empty() && !claim.has_value()) {
    // Async: an anonymous Create is one store write.
    return sessions_->CreateAsync(
        *params, [response, done = std::move(done)](absl::StatusOr<session::Session> s) mutable {
          Answer(std::move(s),
                 [response](session::Session v) { ToProto(std::move(v), response->mutable_session()); },
                 std::move(done));
        });
  }
  // Offloaded: a user's Create reads the revocation epoch, counts the user's
  // sessions and writes (several round trips), and a ledger claim is more.
  OffloadedOnce(
      std::move(claim), response,
      [this, response, params = *std::move(params)](Done ran) {
        Answer(sessions_->Create(params),
               [response](session::Session s) { ToProto(std::move(s), response->mutable_session()); },
               std::move(ran));
      },
      std::move(done), std::move(probe));
}

class Operations::AloneCall final : public Call {
 public:
  explicit AloneCall(Done done) : done_(std::move(done)) {}

  void OperationDone(absl::Status status) override {
    Done done = std::move(done_);
    delete this;
    std::move(done)(std::move(status));
  }

 private:
  Done done_;
};

void Operations::Call::SessionRead(absl::StatusOr<session::Session> session) {
  v1::GetSessionResponse* response = get_;
  Answer(std::move(session),
         [response](session::Session v) { ToProto(std::move(v), response->mutable_session()); },
         [this](absl::Status status) { OperationDone(std::move(status)); });
}

void Operations::Call::SessionUpdated(absl::StatusOr<session::SessionInfo> info) {
  v1::UpdateSessionResponse* response = update_;
  Answer(std::move(info),
         [response](const session::SessionInfo& i) { ToProto(i, response->mutable_metadata()); },
         [this](absl::Status status) { OperationDone(std::move(status)); });
}

void Operations::Get(const v1::GetSessionRequest& request, v1::GetSessionResponse* response,
                     Done done,
        Offload::Probe /*probe: not offloaded*/) const {
  GetOn(request, response, new AloneCall(std::move(done)));
}

void Operations::GetOn(const v1::GetSessionRequest& request, v1::GetSessionResponse* response,
                       Call* call) const {
  if (sessions_ == nullptr) return call->OperationDone(NoManager());
  auto key = KeyOf(request);
  if (!key.ok()) return call->OperationDone(key.status());
  call->get_ = response;
  // Async: no gRPC thread waits for the store (there are two).
  sessions_->GetAsync(*key, /*touch=*/!request.has_touch() || request.touch(), call);
}

void Operations::Update(const v1::UpdateSessionRequest& request,
                        v1::UpdateSessionResponse* response, Done done,
        Offload::Probe /*probe: not offloaded*/) const {
  UpdateOn(request, response, new AloneCall(std::move(done)));
}

void Operations::UpdateOn(const v1::UpdateSessionRequest& request,
                          v1::UpdateSessionResponse* response, Call* call) const {
  if (sessions_ == nullptr) return call->OperationDone(NoManager());
  auto key = KeyOf(request);
  if (!key.ok()) return call->OperationDone(key.status());
  call->update_ = response;
  sessions_->UpdateAsync(*key, UpdateParamsFromProto(request), call);
}

void Operations::Touch(const v1::TouchSessionRequest& request,
                       v1::TouchSessionResponse* response, Done done,
        Offload::Probe /*probe: not offloaded*/) const {
  if (sessions_ == nullptr) return std::move(done)(NoManager());
  auto key = KeyOf(request);
  if (!key.ok()) return std::move(done)(key.status());
  sessions_->TouchAsync(
      *key, [response, done = std::move(done)](absl::StatusOr<session::SessionInfo> info) mutable {
        Answer(std::move(info),
               [response](const session::SessionInfo& i) { ToProto(i, response->mutable_metadata()); },
               std::move(done));
      });
}

void Operations::Destroy(const v1::DestroySessionRequest& request,
                         v1::DestroySessionResponse* response, Done done,
        Offload::Probe /*probe: not offloaded*/) const {
  if (sessions_ == nullptr) return std::move(done)(NoManager());
  auto key = KeyOf(request);
  if (!key.ok()) return std::move(done)(key.status());
  sessions_->DestroyAsync(
      *key, [response, done = std::move(done)](absl::StatusOr<bool> existed) mutable {
        Answer(std::move(existed), [response](bool e) { response->set_existed(e); },
               std::move(done));
      });
}

void Operations::Regenerate(const v1::RegenerateSessionRequest& request,
                            v1::RegenerateSessionResponse* response, Done done,
        Offload::Probe probe) const {
  if (sessions_ == nullptr) return std::move(done)(NoManager());
  auto key = KeyOf(request);
  if (!key.ok()) return std::move(done)(key.status());
  auto params = RegenerateParamsFromProto(request);
  if (!params.ok()) return std::move(done)(params.status());
  // Scoped by the session: its id, whether the key is the id or the cookie
  // "id.signature" (a bad signature fails the call itself).
  const std::string scope = key->value.substr(0, key->value.find('.'));
  if (absl::Status id = CheckRequestId(requests_, request); !id.ok()) {
    return std::move(done)(std::move(id));
  }
  // Offloaded: read, copy, retire (and the ledger's claim) are several round trips.
  OffloadedOnce(
      ClaimOf(requests_, "SessionService/Regenerate", scope, request), response,
      [this, response, key = *std::move(key), params = *std::move(params)](Done ran) {
        Answer(sessions_->Regenerate(key, params),
               [response](session::Session s) { ToProto(std::move(s), response->mutable_session()); },
               std::move(ran));
      },
      std::move(done), std::move(probe));
}

void Operations::ListUserSessions(const v1::ListUserSessionsRequest& request,
                                  v1::ListUserSessionsResponse* response, Done done,
        Offload::Probe probe) const {
  if (sessions_ == nullptr) return std::move(done)(NoManager());
  if (request.user_id().empty()) return std::move(done)(MissingUserId());
  // Offloaded: a page reads the index under every key's tag, then the sessions.
  Offloaded(
      [this, response, user_id = request.user_id(), page_token = request.page_token(),
       page_size = request.page_size()](Done offloaded) mutable {
        Answer(sessions_->ListUserSessionsPage(user_id, page_token, page_size),
               [response](const session::UserSessionsPage& page) {
                 for (const session::SessionInfo& info : page.sessions) {
                   ToProto(info, response->add_sessions());
                 }
                 response->set_next_page_token(page.next_page_token);
               },
               std::move(offloaded));
      },
      std::move(done), std::move(probe));
}

void Operations::DestroyUserSessions(const v1::DestroyUserSessionsRequest& request,
                                     v1::DestroyUserSessionsResponse* response,
                                     Done done,
        Offload::Probe probe) const {
  if (sessions_ == nullptr) return std::move(done)(NoManager());
  if (request.user_id().empty()) return std::move(done)(MissingUserId());
  // An empty `keep` message (neither id nor cookie) is no keep at all, which
  // is also what the manager makes of a keep naming no session.
  std::optional<session::SessionKey> keep;
  if (request.has_keep() && request.keep().kind_case() != v1::SessionKey::KIND_NOT_SET) {
    auto key = KeyFromProto(true, request.keep(), "keep");
    if (!key.ok()) return std::move(done)(key.status());
    keep = *std::move(key);
  }
  if (request.close_connections() && hub_ == nullptr) {
    return std::move(done)(absl::UnimplementedError("close_connections: no realtime here"));
  }
  // Offloaded: advance the epoch, walk the index, destroy each session.
  Offloaded(
      [this, response, user_id = request.user_id(), keep = std::move(keep),
       close_connections = request.close_connections()](Done offloaded) mutable {
        absl::StatusOr<uint32_t> destroyed = sessions_->DestroyUserSessions(user_id, keep);
        // A user id realtime would refuse names no connection: nothing to close.
        if (!destroyed.ok() || !close_connections ||
            !realtime::ValidateName("user_id", user_id, 1, realtime::kMaxNameBytes).ok()) {
          return Answer(std::move(destroyed),
                        [response](uint32_t n) { response->set_destroyed(n); },
                        std::move(offloaded));
        }
        response->set_destroyed(*destroyed);
        realtime::Event close;
        close.target = realtime::TargetKind::kUser;
        close.to = std::move(user_id);
        close.name = kCloseConnectionsEvent;
        close.payload = kCloseConnectionsPayload;
        // Not in the user's log: a later resume must not close newer sockets.
        close.transient = true;
        hub_->Publish(std::move(close),
                      [done = std::move(offloaded)](absl::StatusOr<realtime::PublishResult> r) mutable {
                        std::move(done)(r.status());
                      });
      },
      std::move(done), std::move(probe));
}

void Operations::SetOptOut(const v1::SetOptOutRequest& request, v1::SetOptOutResponse* response,
                           Done done,
        Offload::Probe probe) const {
  if (opt_outs_ == nullptr) return std::move(done)(NoManager());
  std::optional<absl::Duration> ttl;
  if (request.has_ttl()) {
    auto parsed = PositiveDurationFromProto(request.ttl(), "ttl");
    if (!parsed.ok()) return std::move(done)(parsed.status());
    ttl = *parsed;
  }
  // Offloaded, as GetOptOut: the opt-out store answers synchronously.
  Offloaded(
      [this, subject = request.subject(), opted_out = request.opted_out(), ttl](
          Done offloaded) mutable {
        std::move(offloaded)(opt_outs_->Set(subject, opted_out, ttl));
      },
      std::move(done), std::move(probe));
}

void Operations::GetOptOut(const v1::GetOptOutRequest& request, v1::GetOptOutResponse* response,
                           Done done,
        Offload::Probe probe) const {
  if (opt_outs_ == nullptr) return std::move(done)(NoManager());
  Offloaded(
      [this, response, subject = request.subject()](Done offloaded) mutable {
        Answer(opt_outs_->Get(subject),
               [response](bool opted_out) { response->set_opted_out(opted_out); },
               std::move(offloaded));
      },
      std::move(done), std::move(probe));
}

}  // namespace stateside::rpc

// FakeSidecar: scripted implementations of the Stateside gRPC services.
#include "tests/unit/client/fake_sidecar.h"

#include "grpc/health/v1/health.grpc.pb.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside::testing {
namespace {

using grpc::ServerContext;
using grpc::Status;
using HealthResponse = grpc::health::v1::HealthCheckResponse;

void SetTime(int64_t seconds, google::protobuf::Timestamp* ts) {
  ts->set_seconds(seconds);
  ts->set_nanos(250'000'000);
}

v1::SessionMetadata CannedMetadata(uint64_t version) {
  v1::SessionMetadata m;
  m.set_id(FakeSidecar::kSessionId);
  m.set_user_id("alice");
  SetTime(1'700'000'000, m.mutable_created());
  SetTime(1'700'000'100, m.mutable_last_access());
  SetTime(1'700'086'500, m.mutable_idle_expiry());
  SetTime(1'700'604'800, m.mutable_absolute_expiry());
  m.set_version(version);
  return m;
}

class SessionImpl final : public v1::SessionService::Service {
 public:
  explicit SessionImpl(FakeSidecar* fake) : fake_(fake) {}
  Status Create(ServerContext* c, const v1::CreateSessionRequest* req,
                v1::CreateSessionResponse* resp) override {
    fake_->RecordCreate(*req);
    Status s = fake_->Enter(Rpc::kCreateSession, c);
    if (!s.ok()) return s;
    *resp->mutable_session() = FakeSidecar::CannedSession();
    resp->mutable_session()->mutable_metadata()->set_user_id(req->user_id());
    *resp->mutable_session()->mutable_attributes() = req->attributes();
    resp->mutable_session()->mutable_metadata()->set_version(1);
    return Status::OK;
  }
  Status Get(ServerContext* c, const v1::GetSessionRequest*,
             v1::GetSessionResponse* resp) override {
    Status s = fake_->Enter(Rpc::kGetSession, c);
    if (s.ok()) *resp->mutable_session() = FakeSidecar::CannedSession();
    return s;
  }
  Status Update(ServerContext* c, const v1::UpdateSessionRequest* req,
                v1::UpdateSessionResponse* resp) override {
    fake_->RecordUpdate(*req);
    Status s = fake_->Enter(Rpc::kUpdateSession, c);
    if (s.ok()) *resp->mutable_metadata() = CannedMetadata(8);
    return s;
  }
  Status Touch(ServerContext* c, const v1::TouchSessionRequest*,
               v1::TouchSessionResponse* resp) override {
    Status s = fake_->Enter(Rpc::kTouchSession, c);
    if (s.ok()) *resp->mutable_metadata() = CannedMetadata(7);
    return s;
  }
  Status Destroy(ServerContext* c, const v1::DestroySessionRequest*,
                 v1::DestroySessionResponse* resp) override {
    Status s = fake_->Enter(Rpc::kDestroySession, c);
    resp->set_existed(true);
    return s;
  }
  Status Regenerate(ServerContext* c, const v1::RegenerateSessionRequest* req,
                    v1::RegenerateSessionResponse* resp) override {
    fake_->RecordRegenerate(*req);
    Status s = fake_->Enter(Rpc::kRegenerateSession, c);
    if (s.ok()) *resp->mutable_session() = FakeSidecar::CannedSession();
    return s;
  }
  Status ListUserSessions(ServerContext* c, const v1::ListUserSessionsRequest*,
                          v1::ListUserSessionsResponse* resp) override {
    Status s = fake_->Enter(Rpc::kListUserSessions, c);
    if (s.ok()) {
      *resp->add_sessions() = CannedMetadata(7);
      *resp->add_sessions() = CannedMetadata(2);
    }
    return s;
  }
  Status DestroyUserSessions(ServerContext* c, const v1::DestroyUserSessionsRequest*,
                             v1::DestroyUserSessionsResponse* resp) override {
    Status s = fake_->Enter(Rpc::kDestroyUserSessions, c);
    resp->set_destroyed(3);
    return s;
  }

 private:
  FakeSidecar* const fake_;
};

class AnalyticsImpl final : public v1::AnalyticsService::Service {
 public:
  explicit AnalyticsImpl(FakeSidecar* fake) : fake_(fake) {}
  Status SetOptOut(ServerContext* c, const v1::SetOptOutRequest*,
                   v1::SetOptOutResponse*) override {
    return fake_->Enter(Rpc::kSetOptOut, c);
  }
  Status GetOptOut(ServerContext* c, const v1::GetOptOutRequest*,
                   v1::GetOptOutResponse* resp) override {
    resp->set_opted_out(true);
    return fake_->Enter(Rpc::kGetOptOut, c);
  }

 private:
  FakeSidecar* const fake_;
};

class LifecycleImpl final : public v1::LifecycleService::Service {
 public:
  explicit LifecycleImpl(FakeSidecar* fake) : fake_(fake) {}
  Status GetInstance(ServerContext* c, const v1::GetInstanceRequest*,
                     v1::GetInstanceResponse* resp) override {
    Status s = fake_->Enter(Rpc::kGetInstance, c);
    v1::Instance* i = resp->mutable_instance();
    i->set_id("fake-1");
    i->set_hostname("host");
    i->set_pid(42);
    SetTime(1'700'000'000, i->mutable_start_time());
    i->mutable_uptime()->set_seconds(90);
    i->set_version("0.1.0");
    i->set_drain_state(v1::DRAIN_STATE_DRAINING);
    i->set_backend("memory");
    i->set_admin_address("127.0.0.1:9464");
    i->set_ready(false);
    resp->set_api_revision(1);
    resp->mutable_capabilities()->set_pipe(true);
    resp->mutable_capabilities()->set_request_ids(true);
    resp->mutable_capabilities()->set_topology(v1::TOPOLOGY_CLUSTER);
    return s;
  }
  Status ListInstances(ServerContext* c, const v1::ListInstancesRequest*,
                       v1::ListInstancesResponse* resp) override {
    Status s = fake_->Enter(Rpc::kListInstances, c);
    for (const char* id : {"fake-1", "fake-2"}) {
      v1::Instance* i = resp->add_instances();
      i->set_id(id);
      i->set_drain_state(v1::DRAIN_STATE_SERVING);
      i->set_ready(true);
      i->set_backend("redis");
      i->set_version("0.1.0");
      i->set_admin_address("10.0.0.1:9464");
    }
    return s;
  }
  Status WatchDrain(ServerContext* c, const v1::WatchDrainRequest*,
                    grpc::ServerWriter<v1::DrainEvent>* writer) override {
    return fake_->ServeWatchDrain(c, writer);
  }
  Status Drain(ServerContext* c, const v1::DrainRequest* request,
               v1::DrainResponse*) override {
    Status s = fake_->Enter(Rpc::kDrain, c);
    if (s.ok()) fake_->OnDrain(*request);
    return s;
  }
  Status ReportDrained(ServerContext* c, const v1::ReportDrainedRequest*,
                       v1::ReportDrainedResponse*) override {
    return fake_->Enter(Rpc::kReportDrained, c);
  }

 private:
  FakeSidecar* const fake_;
};

class HealthImpl final : public grpc::health::v1::Health::Service {
 public:
  explicit HealthImpl(FakeSidecar* fake) : fake_(fake) {}
  Status Check(ServerContext* c, const grpc::health::v1::HealthCheckRequest*,
               HealthResponse* resp) override {
    Status s = fake_->Enter(Rpc::kCheckHealth, c);
    resp->set_status(fake_->health());
    return s;
  }

 private:
  FakeSidecar* const fake_;
};

}  // namespace

struct FakeSidecar::Services {
  explicit Services(FakeSidecar* fake)
      : session(fake), analytics(fake), lifecycle(fake), health(fake) {}
  SessionImpl session;
  AnalyticsImpl analytics;
  LifecycleImpl lifecycle;
  HealthImpl health;
};

FakeSidecar::FakeSidecar() {
  v1::DrainEvent serving;
  serving.set_state(v1::DRAIN_STATE_SERVING);
  drain_events_.push_back(serving);
}

absl::StatusOr<std::unique_ptr<FakeSidecar>> FakeSidecar::Start(
    const std::string& socket_path) {
  std::unique_ptr<FakeSidecar> fake(new FakeSidecar());
  fake->services_ = std::make_unique<Services>(fake.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&fake->services_->session);
  builder.RegisterService(&fake->services_->analytics);
  builder.RegisterService(&fake->services_->lifecycle);
  builder.RegisterService(&fake->services_->health);
  fake->server_ = builder.BuildAndStart();
  if (fake->server_ == nullptr) {
    return absl::InternalError("fake sidecar failed to start on " + socket_path);
  }
  return fake;
}

FakeSidecar::~FakeSidecar() {
  Unblock();
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

void FakeSidecar::FailNext(Rpc rpc, int n, grpc::Status status) {
  absl::MutexLock lock(&mu_);
  failures_[rpc] = {n, std::move(status)};
}

void FakeSidecar::Block(Rpc rpc) {
  absl::MutexLock lock(&mu_);
  blocked_[rpc] = true;
}

void FakeSidecar::Unblock() {
  absl::MutexLock lock(&mu_);
  unblocked_ = true;
}

void FakeSidecar::SetHealth(HealthResponse::ServingStatus status) {
  absl::MutexLock lock(&mu_);
  health_ = status;
}

int FakeSidecar::calls(Rpc rpc) const {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(rpc);
  return it == calls_.end() ? 0 : it->second;
}

v1::UpdateSessionRequest FakeSidecar::last_update() const {
  absl::MutexLock lock(&mu_);
  return last_update_;
}

v1::CreateSessionRequest FakeSidecar::last_create() const {
  absl::MutexLock lock(&mu_);
  return last_create_;
}

HealthResponse::ServingStatus FakeSidecar::health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

void FakeSidecar::RecordUpdate(const v1::UpdateSessionRequest& request) {
  absl::MutexLock lock(&mu_);
  last_update_ = request;
}

void FakeSidecar::RecordCreate(const v1::CreateSessionRequest& request) {
  absl::MutexLock lock(&mu_);
  last_create_ = request;
  request_ids_.push_back(request.request_id());
}

void FakeSidecar::RecordRegenerate(const v1::RegenerateSessionRequest& request) {
  absl::MutexLock lock(&mu_);
  last_regenerate_ = request;
  request_ids_.push_back(request.request_id());
}

std::vector<std::string> FakeSidecar::request_ids() const {
  absl::MutexLock lock(&mu_);
  return request_ids_;
}

v1::RegenerateSessionRequest FakeSidecar::last_regenerate() const {
  absl::MutexLock lock(&mu_);
  return last_regenerate_;
}

grpc::Status FakeSidecar::Enter(Rpc rpc, grpc::ServerContext* context) {
  absl::MutexLock lock(&mu_);
  ++calls_[rpc];
  if (blocked_[rpc]) {
    // Wake every 10 ms to notice a cancelled (deadline-exceeded) caller:
    // gRPC's cancellation cannot signal our condition.
    while (!unblocked_ && !context->IsCancelled()) {
      mu_.AwaitWithTimeout(absl::Condition(&unblocked_), absl::Milliseconds(10));
    }
    if (!unblocked_) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }
  auto it = failures_.find(rpc);
  if (it != failures_.end() && it->second.first > 0) {
    --it->second.first;
    return it->second.second;
  }
  return grpc::Status::OK;
}

v1::Session FakeSidecar::CannedSession() {
  v1::Session s;
  *s.mutable_metadata() = CannedMetadata(7);
  (*s.mutable_attributes())["cart"] = "[]";
  (*s.mutable_attributes())["blob"] = std::string("\0\xff\n", 3);
  s.set_cookie(kCookie);
  return s;
}

void FakeSidecar::PushDrainEvent(v1::DrainState state, int64_t deadline_seconds) {
  absl::MutexLock lock(&mu_);
  v1::DrainEvent event;
  event.set_state(state);
  if (deadline_seconds != 0) event.mutable_deadline()->set_seconds(deadline_seconds);
  drain_events_.push_back(event);
  drain_cv_.SignalAll();
}

void FakeSidecar::EndDrainStreams(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  drain_end_ = std::move(status);
  drain_cv_.SignalAll();
}

void FakeSidecar::DrainImmediatelyOnRequest(int64_t deadline_seconds) {
  absl::MutexLock lock(&mu_);
  drain_on_request_ = deadline_seconds;
}

void FakeSidecar::OnDrain(const v1::DrainRequest& request) {
  std::optional<int64_t> deadline;
  {
    absl::MutexLock lock(&mu_);
    last_drain_ = request;
    deadline = drain_on_request_;
  }
  if (!deadline) return;
  PushDrainEvent(v1::DRAIN_STATE_DRAINING, *deadline);
  PushDrainEvent(v1::DRAIN_STATE_DRAINED);
  EndDrainStreams();
}

v1::DrainRequest FakeSidecar::last_drain() const {
  absl::MutexLock lock(&mu_);
  return last_drain_;
}

int FakeSidecar::watch_calls() const {
  absl::MutexLock lock(&mu_);
  return watch_calls_;
}

int FakeSidecar::watchers() const {
  absl::MutexLock lock(&mu_);
  return watchers_;
}

grpc::Status FakeSidecar::ServeWatchDrain(grpc::ServerContext* context,
                                          grpc::ServerWriter<v1::DrainEvent>* writer) {
  absl::MutexLock lock(&mu_);
  ++watch_calls_;
  ++watchers_;
  grpc::Status result = grpc::Status::OK;
  for (size_t next = 0;;) {
    if (context->IsCancelled()) {
      result = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      break;
    }
    if (next < drain_events_.size()) {
      const v1::DrainEvent event = drain_events_[next++];
      mu_.Unlock();
      const bool written = writer->Write(event);
      mu_.Lock();
      if (!written) {
        result = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
        break;
      }
      continue;
    }
    if (drain_end_) {
      result = *drain_end_;
      break;
    }
    // Wake every 10 ms to notice a cancelled caller (gRPC cannot signal us).
    drain_cv_.WaitWithTimeout(&mu_, absl::Milliseconds(10));
  }
  --watchers_;
  return result;
}

}  // namespace stateside::testing

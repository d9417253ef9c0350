// FakeRealtimeService: a scripted RealtimeService (see the header).
#include "tests/unit/client/fake_realtime_service.h"

#include <algorithm>

#include <grpc/grpc.h>

#include "absl/strings/numbers.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "stateside/v1/realtime.grpc.pb.h"

namespace stateside::testing {
namespace {

// Keeps the gRPC library initialized for the whole test binary. Otherwise
// each test's last gRPC object shuts the library down, and that clean-up
// "can happen in another thread" (grpc.h): after heavy streaming through
// the in-process sync server it may wait out its 10 s deadline while the
// next tests already re-initialize the library, which made later tests
// fail now and then (calls not reaching the fake).
class GrpcLibraryEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { grpc_init(); }
  void TearDown() override { grpc_shutdown(); }
};
[[maybe_unused]] ::testing::Environment* const kGrpcLibrary =
    ::testing::AddGlobalTestEnvironment(new GrpcLibraryEnvironment);

using grpc::ServerContext;
using grpc::Status;

class RealtimeImpl final : public v1::RealtimeService::Service {
 public:
  explicit RealtimeImpl(FakeRealtimeService* fake) : fake_(fake) {}

  Status RegisterConnection(ServerContext* c, const v1::RegisterConnectionRequest* req,
                            v1::RegisterConnectionResponse*) override {
    fake_->Record(*req);
    return fake_->Enter(Rpc::kRegisterConnection, c);
  }
  Status UnregisterConnection(ServerContext* c, const v1::UnregisterConnectionRequest* req,
                              v1::UnregisterConnectionResponse* resp) override {
    fake_->Record(*req);
    Status s = fake_->Enter(Rpc::kUnregisterConnection, c);
    if (s.ok()) resp->set_found(fake_->Unregister(req->conn_id()));
    return s;
  }
  Status Join(ServerContext* c, const v1::JoinRequest* req, v1::JoinResponse*) override {
    fake_->Record(*req);
    return fake_->Enter(Rpc::kJoin, c);
  }
  Status Leave(ServerContext* c, const v1::LeaveRequest* req, v1::LeaveResponse*) override {
    fake_->Record(*req);
    return fake_->Enter(Rpc::kLeave, c);
  }
  Status Publish(ServerContext* c, const v1::PublishRequest* req,
                 v1::PublishResponse* resp) override {
    fake_->Record(*req);
    Status s = fake_->Enter(Rpc::kPublish, c);
    resp->set_sequence(req->has_room() ? 12 : 0);
    resp->set_instances(2);
    return s;
  }
  Status Subscribe(ServerContext* c, const v1::SubscribeRequest* req,
                   grpc::ServerWriter<v1::RealtimeEvent>* writer) override {
    fake_->Record(*req);
    Status s = fake_->Enter(Rpc::kSubscribe, c);
    if (!s.ok()) return s;
    return fake_->ServeSubscribe(c, writer);
  }
  Status RoomMembers(ServerContext* c, const v1::RoomMembersRequest* req,
                     v1::RoomMembersResponse* resp) override {
    fake_->Record(*req);
    Status s = fake_->Enter(Rpc::kRoomMembers, c);
    if (s.ok()) fake_->FillRoomMembers(*req, resp);
    return s;
  }
  Status UserConnections(ServerContext* c, const v1::UserConnectionsRequest* req,
                         v1::UserConnectionsResponse* resp) override {
    fake_->Record(*req);
    Status s = fake_->Enter(Rpc::kUserConnections, c);
    for (const auto& ref : fake_->user_connections()) *resp->add_connections() = ref;
    return s;
  }
  Status History(ServerContext* c, const v1::HistoryRequest* req,
                 v1::HistoryResponse* resp) override {
    fake_->Record(*req);
    Status s = fake_->Enter(Rpc::kHistory, c);
    if (s.ok()) *resp = fake_->history();
    return s;
  }

 private:
  FakeRealtimeService* const fake_;
};

class HealthImpl final : public grpc::health::v1::Health::Service {
 public:
  Status Check(ServerContext*, const grpc::health::v1::HealthCheckRequest*,
               grpc::health::v1::HealthCheckResponse* resp) override {
    resp->set_status(grpc::health::v1::HealthCheckResponse::SERVING);
    return Status::OK;
  }
};

}  // namespace

struct FakeRealtimeService::Services {
  explicit Services(FakeRealtimeService* fake) : realtime(fake) {}
  RealtimeImpl realtime;
  HealthImpl health;
};

absl::StatusOr<std::unique_ptr<FakeRealtimeService>> FakeRealtimeService::Start(
    const std::string& socket_path) {
  std::unique_ptr<FakeRealtimeService> fake(new FakeRealtimeService());
  fake->services_ = std::make_unique<Services>(fake.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&fake->services_->realtime);
  builder.RegisterService(&fake->services_->health);
  fake->server_ = builder.BuildAndStart();
  if (fake->server_ == nullptr) {
    return absl::InternalError("fake realtime service failed to start on " + socket_path);
  }
  return fake;
}

FakeRealtimeService::~FakeRealtimeService() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

void FakeRealtimeService::FailNext(Rpc rpc, int n, grpc::Status status) {
  absl::MutexLock lock(&mu_);
  failures_[rpc] = {n, std::move(status)};
}

int FakeRealtimeService::calls(Rpc rpc) const {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(rpc);
  return it == calls_.end() ? 0 : it->second;
}

grpc::Status FakeRealtimeService::Enter(Rpc rpc, grpc::ServerContext*) {
  absl::MutexLock lock(&mu_);
  ++calls_[rpc];
  auto it = failures_.find(rpc);
  if (it != failures_.end() && it->second.first > 0) {
    --it->second.first;
    return it->second.second;
  }
  return grpc::Status::OK;
}

void FakeRealtimeService::Record(const google::protobuf::Message& request) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  last_[request.GetDescriptor()->full_name()] = std::move(copy);
  if (const auto* reg = dynamic_cast<const v1::RegisterConnectionRequest*>(&request)) {
    registered_.insert(reg->conn_id());
  }
  if (const auto* publish = dynamic_cast<const v1::PublishRequest*>(&request)) {
    publish_request_ids_.push_back(publish->request_id());
  }
}

namespace {
template <typename T>
T Last(const std::map<std::string, std::unique_ptr<google::protobuf::Message>>& last) {
  T message;
  auto it = last.find(T::descriptor()->full_name());
  if (it != last.end()) message.CopyFrom(*it->second);
  return message;
}
}  // namespace

#define STATESIDE_FAKE_LAST(Type, name)             \
  v1::Type FakeRealtimeService::name() const {      \
    absl::MutexLock lock(&mu_);                     \
    return Last<v1::Type>(last_);                   \
  }
STATESIDE_FAKE_LAST(RegisterConnectionRequest, last_register)
STATESIDE_FAKE_LAST(UnregisterConnectionRequest, last_unregister)
STATESIDE_FAKE_LAST(JoinRequest, last_join)
STATESIDE_FAKE_LAST(LeaveRequest, last_leave)
STATESIDE_FAKE_LAST(PublishRequest, last_publish)

std::vector<std::string> FakeRealtimeService::publish_request_ids() const {
  absl::MutexLock lock(&mu_);
  return publish_request_ids_;
}
STATESIDE_FAKE_LAST(SubscribeRequest, last_subscribe)
STATESIDE_FAKE_LAST(RoomMembersRequest, last_room_members)
STATESIDE_FAKE_LAST(UserConnectionsRequest, last_user_connections)
STATESIDE_FAKE_LAST(HistoryRequest, last_history)
#undef STATESIDE_FAKE_LAST

bool FakeRealtimeService::Unregister(const std::string& conn_id) {
  absl::MutexLock lock(&mu_);
  return registered_.erase(conn_id) > 0;
}

void FakeRealtimeService::SetRoomMembers(std::vector<v1::ConnectionRef> members,
                                         int max_page_size) {
  absl::MutexLock lock(&mu_);
  members_ = std::move(members);
  max_page_size_ = max_page_size;
}

void FakeRealtimeService::SetStuckPageToken(std::string token) {
  absl::MutexLock lock(&mu_);
  stuck_token_ = std::move(token);
}

void FakeRealtimeService::FillRoomMembers(const v1::RoomMembersRequest& request,
                                          v1::RoomMembersResponse* out) const {
  absl::MutexLock lock(&mu_);
  size_t start = 0;
  if (!request.page_token().empty() && !absl::SimpleAtoi(request.page_token(), &start)) {
    start = members_.size();
  }
  const int asked = request.page_size() > 0 ? request.page_size() : 100;
  const size_t size = static_cast<size_t>(std::min(asked, max_page_size_));
  out->set_count(static_cast<int64_t>(members_.size()));
  size_t i = start;
  for (; i < members_.size() && i < start + size; ++i) *out->add_members() = members_[i];
  if (i < members_.size()) out->set_next_page_token(std::to_string(i));
  if (stuck_token_) out->set_next_page_token(*stuck_token_);
}

void FakeRealtimeService::SetUserConnections(std::vector<v1::ConnectionRef> connections) {
  absl::MutexLock lock(&mu_);
  user_connections_ = std::move(connections);
}

std::vector<v1::ConnectionRef> FakeRealtimeService::user_connections() const {
  absl::MutexLock lock(&mu_);
  return user_connections_;
}

void FakeRealtimeService::SetHistory(v1::HistoryResponse response) {
  absl::MutexLock lock(&mu_);
  history_ = std::move(response);
}

v1::HistoryResponse FakeRealtimeService::history() const {
  absl::MutexLock lock(&mu_);
  return history_;
}

void FakeRealtimeService::HoldSubscribed(bool hold) {
  absl::MutexLock lock(&mu_);
  hold_subscribed_ = hold;
}

void FakeRealtimeService::BreakProtocol() {
  absl::MutexLock lock(&mu_);
  break_protocol_ = true;
}

void FakeRealtimeService::PushEvent(const v1::RealtimeEvent& event) {
  absl::MutexLock lock(&mu_);
  for (auto* queue : queues_) queue->push_back(event);
}

void FakeRealtimeService::EndStreams(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  end_ = std::move(status);
}

int FakeRealtimeService::streams() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queues_.size());
}

int FakeRealtimeService::written() const {
  absl::MutexLock lock(&mu_);
  return written_;
}

grpc::Status FakeRealtimeService::ServeSubscribe(
    grpc::ServerContext* context, grpc::ServerWriter<v1::RealtimeEvent>* writer) {
  const grpc::Status cancelled(grpc::StatusCode::CANCELLED, "cancelled");
  std::deque<v1::RealtimeEvent> queue;
  absl::MutexLock lock(&mu_);
  // Wake every 10 ms to notice a cancelled caller (gRPC cannot signal us).
  while (hold_subscribed_ && !stopping_ && !context->IsCancelled()) {
    mu_.AwaitWithTimeout(absl::Condition(+[](bool* held) { return !*held; },
                                         &hold_subscribed_),
                         absl::Milliseconds(10));
  }
  if (stopping_ || context->IsCancelled()) return cancelled;
  queues_.insert(&queue);
  v1::RealtimeEvent first;
  if (break_protocol_) {
    first = RoomDelivery("lobby", 1, "chat", "too early", {"c1"});
  } else {
    first.set_subscribed(true);
  }
  queue.push_front(first);
  grpc::Status result = grpc::Status::OK;
  for (;;) {
    if (stopping_ || context->IsCancelled()) {
      result = cancelled;
      break;
    }
    if (!queue.empty()) {
      const v1::RealtimeEvent event = std::move(queue.front());
      queue.pop_front();
      mu_.Unlock();
      const bool ok = writer->Write(event);  // blocks while the client reads nothing
      mu_.Lock();
      if (!ok) {
        result = cancelled;
        break;
      }
      ++written_;
      continue;
    }
    if (end_) {
      result = *end_;
      break;
    }
    mu_.AwaitWithTimeout(absl::Condition(+[](std::deque<v1::RealtimeEvent>* q) {
                           return !q->empty();
                         }, &queue),
                         absl::Milliseconds(10));
  }
  queues_.erase(&queue);
  return result;
}

v1::RealtimeEvent RoomDelivery(const std::string& room, uint64_t sequence,
                               const std::string& event, const std::string& payload,
                               std::vector<std::string> conn_ids) {
  v1::RealtimeEvent e;
  v1::Delivery* d = e.mutable_delivery();
  d->set_target(v1::TARGET_ROOM);
  d->set_to(room);
  d->set_event(event);
  d->set_payload(payload);
  for (auto& id : conn_ids) d->add_conn_ids(std::move(id));
  d->set_sequence(sequence);
  d->mutable_published_at()->set_seconds(1'700'000'000);
  d->mutable_published_at()->set_nanos(250'000'000);
  d->set_origin_instance("inst-2");
  return e;
}

v1::RealtimeEvent OverflowGap(uint64_t dropped) {
  v1::RealtimeEvent e;
  e.mutable_gap()->set_reason(v1::Gap::REASON_SUBSCRIBER_OVERFLOW);
  e.mutable_gap()->set_dropped(dropped);
  return e;
}

v1::RealtimeEvent RedisGap(int64_t from_seconds, int64_t to_seconds) {
  v1::RealtimeEvent e;
  e.mutable_gap()->set_reason(v1::Gap::REASON_REDIS_DISCONNECTED);
  e.mutable_gap()->mutable_from_time()->set_seconds(from_seconds);
  e.mutable_gap()->mutable_to_time()->set_seconds(to_seconds);
  return e;
}

v1::ConnectionRef Ref(const std::string& instance, const std::string& conn) {
  v1::ConnectionRef ref;
  ref.set_instance_id(instance);
  ref.set_conn_id(conn);
  return ref;
}

}  // namespace stateside::testing

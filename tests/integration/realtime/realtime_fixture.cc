// The realtime process fixture: sidecars, streams, metrics, helpers.
#include "tests/integration/realtime/realtime_fixture.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"
#include "tests/unit/admin/http_test_client.h"

namespace stateside::testing {
namespace {

constexpr const char* kKeyHex = ::stateside::testing::kTestKeyHex;
constexpr const char* kSecret = ::stateside::testing::kTestSecret;
// A stream outlives any test; the deadline only guarantees no hang forever.
constexpr absl::Duration kStreamDeadline = absl::Minutes(5);

}  // namespace

// ---- EventStream ---------------------------------------------------------------

EventStream::EventStream(v1::RealtimeService::Stub* stub, const v1::SubscribeRequest& request,
                         bool paused)
    : paused_(paused) {
  context_.set_deadline(absl::ToChronoTime(absl::Now() + kStreamDeadline));
  reader_ = stub->Subscribe(&context_, request);
  thread_ = std::thread([this] { ReadLoop(); });
}

EventStream::~EventStream() {
  context_.TryCancel();
  {
    absl::MutexLock lock(&mu_);
    paused_ = false;  // the loop sees the cancellation on its next Read
  }
  thread_.join();
}

void EventStream::ReadLoop() {
  while (true) {
    v1::RealtimeEvent event;
    if (!reader_->Read(&event)) break;
    absl::MutexLock lock(&mu_);
    if (!subscribed_) {
      subscribed_ = event.kind_case() == v1::RealtimeEvent::kSubscribed && event.subscribed();
      if (!subscribed_) events_.push_back(std::move(event));  // a test will see it
    } else {
      events_.push_back(std::move(event));
    }
    mu_.Await(absl::Condition(
        +[](bool* paused) { return !*paused; }, &paused_));
  }
  grpc::Status status = reader_->Finish();
  absl::MutexLock lock(&mu_);
  status_ = std::move(status);
  ended_ = true;
}

bool EventStream::WaitSubscribed(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return subscribed_ || ended_ || !events_.empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  return subscribed_;
}

std::optional<v1::RealtimeEvent> EventStream::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ended_ || !events_.empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (events_.empty()) return std::nullopt;
  v1::RealtimeEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

std::optional<v1::Delivery> EventStream::NextDelivery(absl::Duration timeout,
                                                      std::vector<v1::RealtimeEvent>* skipped) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::optional<v1::RealtimeEvent> event = Next(deadline - absl::Now());
    if (!event.has_value()) return std::nullopt;
    if (event->has_delivery()) return event->delivery();
    if (skipped != nullptr) skipped->push_back(*std::move(event));
  }
}

void EventStream::Resume() {
  absl::MutexLock lock(&mu_);
  paused_ = false;
}

std::optional<grpc::Status> EventStream::WaitEnded(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&ended_), timeout);
  if (!ended_) return std::nullopt;
  return status_;
}

size_t EventStream::buffered() const {
  absl::MutexLock lock(&mu_);
  return events_.size();
}

// ---- Pod, metrics ------------------------------------------------------------------

std::string Pod::Scrape() const {
  absl::StatusOr<RawConnection> conn = RawConnection::Connect(admin_port);
  if (!conn.ok()) return "";
  if (!conn->Send(GetRequest("/metrics"))) return "";
  std::optional<RawResponse> response = conn->ReadResponse(absl::Seconds(10));
  if (!response.has_value() || response->status != 200) return "";
  return response->body;
}

double Pod::Metric(const std::string& series) const {
  const std::string text = Scrape();
  EXPECT_FALSE(text.empty()) << "no /metrics from " << name;
  return MetricIn(text, series).value_or(0);
}

std::optional<double> MetricIn(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, series) || line.size() <= series.size() ||
        line[series.size()] != ' ') {
      continue;
    }
    double value = 0;
    if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
  }
  return std::nullopt;
}

std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

// ---- RealtimeClusterTest -------------------------------------------------------------

void RealtimeClusterTest::SetUp() {
  auto redis = RedisServer::Start({});
  ASSERT_TRUE(redis.ok()) << redis.status();
  redis_ = *std::move(redis);
}

void RealtimeClusterTest::TearDown() {
  for (const std::string& path : logs_) {
    std::ifstream in(path);
    std::stringstream log;
    log << in.rdbuf();
    for (const char* report : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                               "runtime error:", "WARNING: ThreadSanitizer"}) {
      EXPECT_FALSE(absl::StrContains(log.str(), report)) << path << ":\n" << log.str();
    }
  }
}

void RealtimeClusterTest::StartPod(Pod& pod, const std::string& name,
                                   const std::map<std::string, std::string>& extra_env,
                                   bool realtime_probe) {
  pod.name = name;
  // A pod started again under the same name gets its own socket and log.
  const std::string files = absl::StrCat(name, "-", ++starts_);
  pod.socket = dir_.File(files + "/api.sock");
  SidecarProcessOptions options;
  options.socket_path = pod.socket;
  options.log_path = dir_.File(files + ".log");
  options.start_timeout = absl::Seconds(20);
  options.env = {{"INSTANCE_ID", name},
                 {"REDIS_URL", redis_->url()},
                 {"SESSION_ENCRYPTION_KEY", kKeyHex},
                 {"SESSION_SECRET", kSecret},
                 {"STATESIDE_DRAIN_TIMEOUT", "5s"}};
  for (const auto& [k, v] : extra_env) options.env[k] = v;
  logs_.push_back(options.log_path);
  auto sidecar = StartSidecarProcess(std::move(options));
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  pod.process.emplace(std::move(sidecar->process));
  pod.admin_port = sidecar->admin_port;
  pod.rt = v1::RealtimeService::NewStub(
      grpc::CreateChannel("unix:" + pod.socket, grpc::InsecureChannelCredentials()));
  if (!realtime_probe) return;
  // The broker's first subscription reports the window since it was made
  // (redis_broker.h) to the streams open at that moment. Make sure it has
  // happened before the test opens any: a probe connection's event arrives
  // on the subscriber's thread after that report, so once a probe stream
  // has it, no later stream can see a start-up gap.
  {
    EventStream probe(pod.rt.get(), v1::SubscribeRequest());
    ASSERT_TRUE(probe.WaitSubscribed()) << pod.process->ReadLog();
    // Registering answers UNAVAILABLE until the subscription connection is
    // up, even once the sidecar is ready (see RealtimeReadinessTest); a
    // retry is safe.
    ASSERT_TRUE(WaitFor([&] { return Register(pod, "probe", "").ok(); }, absl::Seconds(15),
                        absl::Milliseconds(20)))
        << pod.process->ReadLog();
    ASSERT_TRUE(Publish(pod, ToConn("", "probe", "probe")).ok());
    ASSERT_TRUE(probe.NextDelivery(absl::Seconds(15)).has_value()) << pod.process->ReadLog();
    ASSERT_TRUE(Unregister(pod, "probe").ok());
  }
  // The probe's stream is gone on the sidecar's side too.
  ASSERT_TRUE(WaitFor([&] { return pod.Metric("stateside_realtime_subscribers") == 0; }))
      << pod.Scrape();
}

std::unique_ptr<EventStream> RealtimeClusterTest::OpenStream(const Pod& pod, bool paused,
                                                             const v1::SubscribeRequest& request) {
  auto stream = std::make_unique<EventStream>(pod.rt.get(), request, paused);
  EXPECT_TRUE(stream->WaitSubscribed()) << pod.name << ": no `subscribed`";
  return stream;
}

grpc::Status RealtimeClusterTest::Register(const Pod& pod, const std::string& conn,
                                           const std::string& user,
                                           const std::vector<std::string>& rooms) {
  v1::RegisterConnectionRequest request;
  request.set_conn_id(conn);
  request.set_user_id(user);
  for (const std::string& room : rooms) request.add_rooms(room);
  v1::RegisterConnectionResponse response;
  return pod.rt->RegisterConnection(Ctx().get(), request, &response);
}

grpc::Status RealtimeClusterTest::Unregister(const Pod& pod, const std::string& conn) {
  v1::UnregisterConnectionRequest request;
  request.set_conn_id(conn);
  v1::UnregisterConnectionResponse response;
  return pod.rt->UnregisterConnection(Ctx().get(), request, &response);
}

grpc::Status RealtimeClusterTest::Join(const Pod& pod, const std::string& conn,
                                       const std::vector<std::string>& rooms) {
  v1::JoinRequest request;
  request.set_conn_id(conn);
  for (const std::string& room : rooms) request.add_rooms(room);
  v1::JoinResponse response;
  return pod.rt->Join(Ctx().get(), request, &response);
}

grpc::Status RealtimeClusterTest::Leave(const Pod& pod, const std::string& conn,
                                        const std::vector<std::string>& rooms) {
  v1::LeaveRequest request;
  request.set_conn_id(conn);
  for (const std::string& room : rooms) request.add_rooms(room);
  v1::LeaveResponse response;
  return pod.rt->Leave(Ctx().get(), request, &response);
}

grpc::Status RealtimeClusterTest::Publish(const Pod& pod, const v1::PublishRequest& request,
                                          v1::PublishResponse* response) {
  v1::PublishResponse ignored;
  return pod.rt->Publish(Ctx().get(), request, response != nullptr ? response : &ignored);
}

v1::PublishRequest RealtimeClusterTest::ToRoom(const std::string& room,
                                               const std::string& payload,
                                               const std::string& event) {
  v1::PublishRequest request;
  request.set_room(room);
  request.set_event(event);
  request.set_payload(payload);
  return request;
}

v1::PublishRequest RealtimeClusterTest::ToUser(const std::string& user,
                                               const std::string& payload) {
  v1::PublishRequest request;
  request.set_user_id(user);
  request.set_event("msg");
  request.set_payload(payload);
  return request;
}

v1::PublishRequest RealtimeClusterTest::ToConn(const std::string& instance,
                                               const std::string& conn,
                                               const std::string& payload) {
  v1::PublishRequest request;
  request.mutable_connection()->set_instance_id(instance);
  request.mutable_connection()->set_conn_id(conn);
  request.set_event("msg");
  request.set_payload(payload);
  return request;
}

v1::PublishRequest RealtimeClusterTest::ToAll(const std::string& payload) {
  v1::PublishRequest request;
  request.set_all(true);
  request.set_event("msg");
  request.set_payload(payload);
  return request;
}

void RealtimeClusterTest::AddExcept(v1::PublishRequest& request, const std::string& instance,
                                    const std::string& conn) {
  v1::ConnectionRef* ref = request.add_exclude();
  ref->set_instance_id(instance);
  ref->set_conn_id(conn);
}

std::optional<std::vector<Ref>> RealtimeClusterTest::Members(const Pod& pod,
                                                             const std::string& room,
                                                             int page_size, int64_t* count) {
  std::vector<Ref> members;
  v1::RoomMembersRequest request;
  request.set_room(room);
  request.set_page_size(page_size);
  // A page token that never ends would be a bug; bound the pages.
  for (int page = 0; page < 10000; ++page) {
    v1::RoomMembersResponse response;
    if (!pod.rt->RoomMembers(Ctx().get(), request, &response).ok()) return std::nullopt;
    if (count != nullptr && page == 0) *count = response.count();
    for (const v1::ConnectionRef& m : response.members()) {
      members.emplace_back(m.instance_id(), m.conn_id());
    }
    if (response.next_page_token().empty()) return members;
    request.set_page_token(response.next_page_token());
  }
  ADD_FAILURE() << "RoomMembers pages never end";
  return std::nullopt;
}

std::optional<std::set<Ref>> RealtimeClusterTest::MemberSet(const Pod& pod,
                                                            const std::string& room) {
  std::optional<std::vector<Ref>> members = Members(pod, room);
  if (!members.has_value()) return std::nullopt;
  return std::set<Ref>(members->begin(), members->end());
}

std::optional<std::set<Ref>> RealtimeClusterTest::UserConns(const Pod& pod,
                                                            const std::string& user) {
  v1::UserConnectionsRequest request;
  request.set_user_id(user);
  v1::UserConnectionsResponse response;
  if (!pod.rt->UserConnections(Ctx().get(), request, &response).ok()) return std::nullopt;
  std::set<Ref> conns;
  for (const v1::ConnectionRef& c : response.connections()) {
    conns.emplace(c.instance_id(), c.conn_id());
  }
  return conns;
}

void RealtimeClusterTest::Fence(const Pod& pod, const std::string& conn) {
  ASSERT_TRUE(Join(pod, conn, {absl::StrCat("fence-", ++fences_)}).ok());
}

void RealtimeClusterTest::ExpectNothingBeforeMarker(const Pod& from, const Pod& pod,
                                                    EventStream& stream,
                                                    const std::string& conn) {
  const std::string marker = absl::StrCat("marker-", ++markers_);
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(from, ToConn(pod.name, conn, marker), &published).ok());
  EXPECT_EQ(published.instances(), 1);
  std::optional<v1::RealtimeEvent> next = stream.Next();
  ASSERT_TRUE(next.has_value()) << pod.name << ": the marker never came";
  ASSERT_TRUE(next->has_delivery()) << pod.name << " got " << next->ShortDebugString();
  EXPECT_EQ(next->delivery().payload(), marker)
      << pod.name << " received something before the marker: " << next->ShortDebugString();
  EXPECT_THAT(next->delivery().conn_ids(), ::testing::ElementsAre(conn));
}

}  // namespace stateside::testing

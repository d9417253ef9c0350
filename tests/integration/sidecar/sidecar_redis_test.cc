// The sidecar binary on a real redis-server: sessions shared by two sidecar
// processes, the backend modes (fail closed, memory fallback), Redis going
// away and coming back under a running sidecar (readiness debounced), and the
// whole flow as the least-privilege ACL user of deploy/k8s.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/error.pb.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/realtime.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/support/admin_port.h"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/support/web_client.h"
#include "tests/support/test_secrets.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using testing::Subprocess;

testing::RedisServerOptions PasswordProtected(std::string password) {
  testing::RedisServerOptions options;
  options.requirepass = std::move(password);
  return options;
}

namespace v1 = ::stateside::v1;
namespace health = ::grpc::health::v1;

constexpr const char* kKeyHex = ::stateside::testing::kTestKeyHex;
constexpr const char* kSecret = ::stateside::testing::kTestSecret;

std::unique_ptr<grpc::ClientContext> Context(int seconds = 5) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return context;
}

// One sidecar process and a channel to its socket.
class Sidecar {
 public:
  Sidecar(const testing::TempDir& dir, const std::string& name,
          std::map<std::string, std::string> env)
      : socket_(dir.File(name + ".sock")) {
    env["STATESIDE_SOCKET"] = socket_;
    env["STATESIDE_ADMIN_ADDR"] = "127.0.0.1:0";
    env.emplace("SESSION_ENCRYPTION_KEY", kKeyHex);  // unless the test gives one
    env["SESSION_SECRET"] = kSecret;
    env["INSTANCE_ID"] = name;
    testing::SubprocessOptions options;
    options.argv = {testing::BinPath("stateside")};
    options.env = std::move(env);
    options.clear_env = true;
    options.log_path = dir.File(name + ".log");
    auto process = Subprocess::Start(options);
    EXPECT_TRUE(process.ok()) << process.status();
    process_ = std::make_unique<Subprocess>(*std::move(process));
    channel_ = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  }

  // Waits until the sidecar answers gRPC at all (ready or not).
  bool WaitAnswering() {
    return testing::WaitFor([&] {
      v1::GetInstanceResponse response;
      return process_->running() &&
             v1::LifecycleService::NewStub(channel_)
                 ->GetInstance(Context(1).get(), {}, &response)
                 .ok();
    }, absl::Seconds(20));
  }

  health::HealthCheckResponse::ServingStatus Health() {
    health::HealthCheckResponse response;
    if (!health::Health::NewStub(channel_)->Check(Context(1).get(), {}, &response).ok()) {
      return health::HealthCheckResponse::UNKNOWN;
    }
    return response.status();
  }

  bool WaitHealth(health::HealthCheckResponse::ServingStatus want) {
    return testing::WaitFor([&] { return Health() == want; }, absl::Seconds(20));
  }

  v1::GetInstanceResponse Describe() {
    v1::GetInstanceResponse response;
    EXPECT_TRUE(v1::LifecycleService::NewStub(channel_)
                    ->GetInstance(Context().get(), {}, &response)
                    .ok());
    return response;
  }
  v1::Instance Instance() { return Describe().instance(); }

  std::unique_ptr<v1::SessionService::Stub> Sessions() {
    return v1::SessionService::NewStub(channel_);
  }
  std::unique_ptr<v1::AnalyticsService::Stub> Analytics() {
    return v1::AnalyticsService::NewStub(channel_);
  }
  std::unique_ptr<v1::RealtimeService::Stub> Realtime() {
    return v1::RealtimeService::NewStub(channel_);
  }
  std::unique_ptr<v1::LifecycleService::Stub> Lifecycle() {
    return v1::LifecycleService::NewStub(channel_);
  }

  Subprocess& process() { return *process_; }

 private:
  std::string socket_;
  std::unique_ptr<Subprocess> process_;
  std::shared_ptr<grpc::Channel> channel_;
};

grpc::Status Create(Sidecar& sidecar, const std::string& user, v1::Session* out,
                    int deadline_seconds = 5) {
  v1::CreateSessionRequest request;
  request.set_user_id(user);
  (*request.mutable_attributes())["cart"] = "[]";
  v1::CreateSessionResponse response;
  grpc::Status status =
      sidecar.Sessions()->Create(Context(deadline_seconds).get(), request, &response);
  if (out != nullptr) *out = response.session();
  return status;
}

// A session of `user` created on `a`, updated through `b` and read back
// through `a` (the cart attribute the update set is there): sessions live in
// Redis, shared by the pods.
v1::Session ShareASession(Sidecar& a, Sidecar& b, const std::string& user) {
  v1::Session created;
  EXPECT_TRUE(Create(a, user, &created).ok()) << a.process().ReadLog();
  v1::UpdateSessionRequest update;
  update.mutable_key()->set_cookie(created.cookie());
  (*update.mutable_set())["cart"] = R"(["book"])";
  v1::UpdateSessionResponse updated;
  EXPECT_TRUE(b.Sessions()->Update(Context().get(), update, &updated).ok());
  v1::GetSessionRequest get;
  get.mutable_key()->set_cookie(created.cookie());
  v1::GetSessionResponse got;
  EXPECT_TRUE(a.Sessions()->Get(Context().get(), get, &got).ok());
  const auto& attributes = got.session().attributes();
  EXPECT_TRUE(attributes.contains("cart") && attributes.at("cart") == R"(["book"])");
  EXPECT_EQ(got.session().metadata().user_id(), user);
  return created;
}

// A WatchSessionEvents stream, its `watching` read.
struct EventWatch {
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientReader<v1::SessionEvent>> reader;

  // The next change whose session is `id`, skipping others (and gaps: the
  // first subscription after start reports one).
  v1::SessionChange ChangeOf(const std::string& id) {
    v1::SessionEvent event;
    while (reader->Read(&event)) {
      if (event.has_change() && event.change().session_id() == id) return event.change();
    }
    ADD_FAILURE() << "the stream ended before a change of " << id;
    return {};
  }
};

EventWatch WatchEvents(Sidecar& sidecar, std::vector<v1::SessionEventKind> kinds = {}) {
  EventWatch watch{Context(30), nullptr};
  v1::WatchSessionEventsRequest request;
  for (v1::SessionEventKind kind : kinds) request.add_kinds(kind);
  watch.reader = sidecar.Sessions()->WatchSessionEvents(watch.context.get(), request);
  v1::SessionEvent first;
  EXPECT_TRUE(watch.reader->Read(&first) && first.watching()) << sidecar.process().ReadLog();
  return watch;
}

// A session of `user` created on `a` whose CREATED reaches `watch` (on
// another sidecar): made again until one does, since the watcher's
// sidecar subscribes to the channel in the background (when a watcher is
// added to a sidecar that had none), and `a`, while nobody was subscribed, holds its publishes
// off for a while: the gap that reports that window says until when, and a
// session made after it is seen. `creates`, if set, counts the sessions
// made.
v1::Session CreateSeenBy(Sidecar& a, EventWatch& watch, const std::string& user,
                         int* creates = nullptr) {
  v1::Session created;
  const bool seen = testing::WaitFor([&] {
    if (!Create(a, user, &created).ok()) return false;
    if (creates != nullptr) ++*creates;
    v1::SessionEvent event;
    // The change comes at once or not at all; anything else read first
    // (a gap, an earlier probe's change) is skipped.
    while (watch.reader->Read(&event)) {
      if (event.has_change() && event.change().session_id() == created.metadata().id()) {
        return true;
      }
      if (event.has_gap()) {
        // Changes made within the window may be lost without another
        // event: the next session is made after it.
        const absl::Time to = absl::FromUnixSeconds(event.gap().to_time().seconds()) +
                              absl::Nanoseconds(event.gap().to_time().nanos());
        absl::SleepFor(to - absl::Now());
        return false;
      }
    }
    return false;
  }, absl::Seconds(20));
  EXPECT_TRUE(seen) << a.process().ReadLog();
  return created;
}

class SidecarRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
  }

  std::map<std::string, std::string> RedisEnv() {
    return {{"REDIS_URL", redis_->url()}, {"STATESIDE_REDIS_CONNECT_TIMEOUT", "1s"}};
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> redis_;
};

TEST_F(SidecarRedisTest, TwoSidecarsShareSessionsThroughRedis) {
  Sidecar a(dir_, "a", RedisEnv());
  Sidecar b(dir_, "b", RedisEnv());
  ASSERT_TRUE(a.WaitHealth(health::HealthCheckResponse::SERVING)) << a.process().ReadLog();
  ASSERT_TRUE(b.WaitHealth(health::HealthCheckResponse::SERVING)) << b.process().ReadLog();
  EXPECT_EQ(a.Instance().backend(), "redis");
  EXPECT_EQ(a.Describe().capabilities().topology(), v1::TOPOLOGY_STANDALONE);

  const v1::Session created = ShareASession(a, b, "alice");
  v1::GetSessionRequest get;
  get.mutable_key()->set_cookie(created.cookie());
  v1::GetSessionResponse got;

  v1::DestroySessionRequest destroy;
  destroy.mutable_key()->set_id(created.metadata().id());
  v1::DestroySessionResponse destroyed;
  ASSERT_TRUE(b.Sessions()->Destroy(Context().get(), destroy, &destroyed).ok());
  EXPECT_TRUE(destroyed.existed());
  const grpc::Status after = a.Sessions()->Get(Context().get(), get, &got);
  EXPECT_EQ(after.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SidecarRedisTest, SessionEventsOfEverySidecarReachEveryWatcher) {
  Sidecar a(dir_, "a", RedisEnv());
  Sidecar b(dir_, "b", RedisEnv());
  ASSERT_TRUE(a.WaitHealth(health::HealthCheckResponse::SERVING)) << a.process().ReadLog();
  ASSERT_TRUE(b.WaitHealth(health::HealthCheckResponse::SERVING)) << b.process().ReadLog();
  EXPECT_TRUE(b.Describe().capabilities().session_events());
  EventWatch on_b = WatchEvents(b);
  EventWatch destroyed_on_b = WatchEvents(b, {v1::SESSION_EVENT_KIND_DESTROYED});
  EventWatch on_a = WatchEvents(a);
  int creates = 0;
  const v1::Session created = CreateSeenBy(a, on_b, "alice", &creates);
  const std::string id = created.metadata().id();
  v1::SessionChange change = on_a.ChangeOf(id);  // a's own, delivered locally
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_CREATED);
  EXPECT_EQ(change.origin_instance(), "a");

  // alice has a realtime connection on b.
  v1::SubscribeRequest subscribe;
  auto* conn = subscribe.add_connections();
  conn->set_conn_id("tab-1");
  conn->set_user_id("alice");
  auto stream_context = Context(30);
  auto stream = b.Realtime()->Subscribe(stream_context.get(), subscribe);
  v1::RealtimeEvent event;
  ASSERT_TRUE(stream->Read(&event) && event.subscribed()) << b.process().ReadLog();

  v1::UpdateSessionRequest update;
  update.mutable_key()->set_cookie(created.cookie());
  (*update.mutable_set())["cart"] = "secret-cart";
  v1::UpdateSessionResponse updated;
  ASSERT_TRUE(a.Sessions()->Update(Context().get(), update, &updated).ok());
  change = on_b.ChangeOf(id);
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_UPDATED);
  EXPECT_EQ(change.user_id(), "alice");
  EXPECT_EQ(change.origin_instance(), "a");
  EXPECT_THAT(change.attributes(), ::testing::ElementsAre("cart"));

  // Log out everywhere on a: b's watchers see it, and b's app is told to
  // close alice's connection.
  v1::DestroyUserSessionsRequest logout;
  logout.set_user_id("alice");
  logout.set_close_connections(true);
  v1::DestroyUserSessionsResponse out;
  ASSERT_TRUE(a.Sessions()->DestroyUserSessions(Context().get(), logout, &out).ok())
      << a.process().ReadLog();
  EXPECT_EQ(out.destroyed(), static_cast<uint32_t>(creates));
  change = on_b.ChangeOf(id);
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_DESTROYED);
  EXPECT_EQ(change.user_id(), "alice");
  EXPECT_EQ(destroyed_on_b.ChangeOf(id).kind(), v1::SESSION_EVENT_KIND_DESTROYED);
  do {
    ASSERT_TRUE(stream->Read(&event)) << b.process().ReadLog();
  } while (!event.has_delivery());
  EXPECT_EQ(event.delivery().event(), "stateside.close");
  EXPECT_THAT(event.delivery().conn_ids(), ::testing::ElementsAre("tab-1"));
  EXPECT_EQ(event.delivery().sequence(), 0u) << "no event of alice's stream";
  // Not in alice's log: a stream resuming from its start gets her later
  // event and never the close (it would close sockets opened since).
  v1::PublishRequest later;
  later.set_user_id("alice");
  later.set_event("later");
  v1::PublishResponse published;
  ASSERT_TRUE(a.Realtime()->Publish(Context().get(), later, &published).ok());
  EXPECT_EQ(published.sequence(), 1u);
  v1::SubscribeRequest resume;
  resume.add_connections()->set_conn_id("tab-2");
  resume.mutable_connections(0)->set_user_id("alice");
  resume.add_resume()->set_user_id("alice");  // after sequence 0
  auto resumed_context = Context(30);
  auto resumed = b.Realtime()->Subscribe(resumed_context.get(), resume);
  ASSERT_TRUE(resumed->Read(&event) && event.subscribed()) << b.process().ReadLog();
  ASSERT_TRUE(resumed->Read(&event)) << b.process().ReadLog();
  EXPECT_EQ(event.delivery().event(), "later") << event.DebugString();
  EXPECT_EQ(event.delivery().sequence(), 1u);
  resumed_context->TryCancel();
  stream_context->TryCancel();
  for (EventWatch* w : {&on_a, &on_b, &destroyed_on_b}) w->context->TryCancel();
}

TEST_F(SidecarRedisTest, RedisGoingAwayFailsFastAndServiceResumesByItself) {
  Sidecar sidecar(dir_, "s", RedisEnv());
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
  ASSERT_TRUE(Create(sidecar, "alice", nullptr).ok());

  redis_->Kill();
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::NOT_SERVING))
      << sidecar.process().ReadLog();
  // Fail fast: UNAVAILABLE well before the call's own deadline.
  const absl::Time before = absl::Now();
  const grpc::Status down = Create(sidecar, "alice", nullptr, /*deadline_seconds=*/10);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE) << down.error_message();
  EXPECT_LT(absl::Now() - before, absl::Seconds(3));
  EXPECT_TRUE(sidecar.process().running());

  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
  EXPECT_TRUE(Create(sidecar, "alice", nullptr).ok());
}

// The reason of a unary error (its ErrorInfo in the status details).
std::string ReasonOf(const grpc::Status& status) {
  v1::RpcStatus details;
  v1::ErrorInfo info;
  if (details.ParseFromString(status.error_details()) && details.details_size() == 1) {
    EXPECT_TRUE(info.ParseFromString(details.details(0).value()));
  }
  return info.reason();
}

// Errors carry their reason on the Redis store too, unary and over Pipe.
TEST_F(SidecarRedisTest, ErrorsCarryAReasonOverUnaryAndPipe) {
  auto env = RedisEnv();
  env["STATESIDE_MAX_SESSIONS_PER_USER"] = "1";
  Sidecar sidecar(dir_, "reasons", env);
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
  v1::Session session;
  ASSERT_TRUE(Create(sidecar, "rita", &session).ok());
  const grpc::Status second = Create(sidecar, "rita", nullptr);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ReasonOf(second), "SESSION_LIMIT");

  v1::UpdateSessionRequest stale;
  stale.mutable_key()->set_id(session.metadata().id());
  stale.set_expected_version(session.metadata().version() + 3);
  v1::UpdateSessionResponse updated;
  const grpc::Status aborted = sidecar.Sessions()->Update(Context().get(), stale, &updated);
  EXPECT_EQ(aborted.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ReasonOf(aborted), "VERSION_MISMATCH");

  // Over Pipe: the same reasons, in each result's error_info.
  auto context = Context(10);
  auto pipe = sidecar.Sessions()->Pipe(context.get());
  v1::PipeRequest request;
  v1::PipeCall* get = request.add_calls();
  get->set_id(1);
  get->mutable_get()->mutable_key()->set_id("no-such-session-id-no-such-session-id-00000");
  v1::PipeCall* update = request.add_calls();
  update->set_id(2);
  *update->mutable_update() = stale;
  ASSERT_TRUE(pipe->Write(request));
  std::map<uint64_t, v1::PipeResult> results;
  v1::PipeResponse response;
  while (results.size() < 2 && pipe->Read(&response)) {
    for (const v1::PipeResult& r : response.results()) results[r.id()] = r;
  }
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(results[1].error_info().reason(), "NOT_FOUND");
  EXPECT_EQ(results[1].error_info().domain(), "stateside.v1");
  EXPECT_EQ(results[2].error_info().reason(), "VERSION_MISMATCH");
  pipe->WritesDone();
  EXPECT_TRUE(pipe->Finish().ok());
}

// A Redis outage shorter than STATESIDE_REDIS_READINESS_DEBOUNCE keeps the
// sidecar ready (while its calls fail fast); a longer one makes it not ready,
// no earlier than the debounce after Redis went away.
TEST_F(SidecarRedisTest, ReadinessStaysWithinTheDebounce) {
  auto env = RedisEnv();
  env["STATESIDE_REDIS_READINESS_DEBOUNCE"] = "30s";
  Sidecar sidecar(dir_, "debounced", env);
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();

  redis_->Kill();
  // Both losses reported (the command connection and the realtime
  // subscription), and calls failing: readiness has seen the outage.
  ASSERT_TRUE(testing::WaitFor([&] {
    const std::string log = sidecar.process().ReadLog();
    return absl::StrContains(log, "redis unavailable") &&
           absl::StrContains(log, "realtime subscription lost");
  }, absl::Seconds(20))) << sidecar.process().ReadLog();
  EXPECT_EQ(Create(sidecar, "alice", nullptr).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(sidecar.Health(), health::HealthCheckResponse::SERVING);
  EXPECT_TRUE(sidecar.Instance().ready());

  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return Create(sidecar, "alice", nullptr).ok(); },
                               absl::Seconds(20)))
      << sidecar.process().ReadLog();
  EXPECT_EQ(sidecar.Health(), health::HealthCheckResponse::SERVING);
  EXPECT_THAT(sidecar.process().ReadLog(), ::testing::Not(HasSubstr("not ready until it is back")));
}

TEST_F(SidecarRedisTest, NotReadyOnlyAfterTheDebounce) {
  auto env = RedisEnv();
  env["STATESIDE_REDIS_READINESS_DEBOUNCE"] = "3s";
  Sidecar sidecar(dir_, "debounce-expires", env);
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();

  const absl::Time killed = absl::Now();
  redis_->Kill();
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::NOT_SERVING))
      << sidecar.process().ReadLog();
  EXPECT_GE(absl::Now() - killed, absl::Seconds(3));
  EXPECT_FALSE(sidecar.Instance().ready());
  EXPECT_THAT(sidecar.process().ReadLog(),
              HasSubstr("STATESIDE_REDIS_READINESS_DEBOUNCE 3s): not ready until it is back"));

  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
}

TEST_F(SidecarRedisTest, UnreachableRedisAtStartFailsClosedWithoutExiting) {
  auto env = RedisEnv();
  env["REDIS_URL"] = "redis://127.0.0.1:" + std::to_string(testing::PickFreePort());
  Sidecar sidecar(dir_, "closed", env);
  ASSERT_TRUE(sidecar.WaitAnswering()) << sidecar.process().ReadLog();
  EXPECT_EQ(sidecar.Health(), health::HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(sidecar.Instance().ready());
  EXPECT_EQ(sidecar.Instance().backend(), "redis");
  EXPECT_EQ(Create(sidecar, "alice", nullptr).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(sidecar.process().running());
}

TEST_F(SidecarRedisTest, MemoryFallbackIsTakenAndAnnounced) {
  auto env = RedisEnv();
  env["REDIS_URL"] = "redis://127.0.0.1:" + std::to_string(testing::PickFreePort());
  env["STATESIDE_FALLBACK"] = "memory";
  Sidecar sidecar(dir_, "fallback", env);
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
  EXPECT_EQ(sidecar.Instance().backend(), "memory-fallback");
  EXPECT_TRUE(Create(sidecar, "alice", nullptr).ok());
  EXPECT_THAT(sidecar.process().ReadLog(), HasSubstr("EMBEDDED MEMORY STORE"));
}

TEST_F(SidecarRedisTest, WrongPasswordIsAClearError) {
  auto redis = testing::RedisServer::Start(PasswordProtected("right-password"));
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto env = RedisEnv();
  env["REDIS_URL"] = "redis://:wrong-password@127.0.0.1:" + std::to_string((*redis)->port());
  Sidecar sidecar(dir_, "auth", env);
  ASSERT_TRUE(sidecar.WaitAnswering()) << sidecar.process().ReadLog();
  EXPECT_EQ(sidecar.Health(), health::HealthCheckResponse::NOT_SERVING);
  const std::string log = sidecar.process().ReadLog();
  EXPECT_THAT(log, HasSubstr("AUTH"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("wrong-password")));
}

// The key check values (docs/OPERATIONS.md, "Key check"): the same key id
// with other key bytes on another instance is an explicit error.
TEST_F(SidecarRedisTest, AKeyIdWithOtherKeyBytesIsRefusedAtStart) {
  Sidecar first(dir_, "first", RedisEnv());
  ASSERT_TRUE(first.WaitHealth(health::HealthCheckResponse::SERVING))
      << first.process().ReadLog();
  const testing::RunResult published = redis_->Cli({"GET", "stateside:kcv:k0"});
  ASSERT_EQ(published.exit_status, 0);
  const std::string check_value(absl::StripAsciiWhitespace(published.out));
  ASSERT_EQ(check_value.size(), 16u) << published.out;

  auto env = RedisEnv();
  env["SESSION_ENCRYPTION_KEY"] = ::stateside::testing::kOtherTestKeyHex;
  Sidecar other(dir_, "other", env);
  const std::optional<int> exit = other.process().Wait(absl::Seconds(20));
  ASSERT_TRUE(exit.has_value()) << other.process().ReadLog();
  EXPECT_EQ(*exit, 2);
  const std::string log = other.process().ReadLog();
  EXPECT_THAT(log, HasSubstr("key id k0 names other key bytes"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(check_value)));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(::stateside::testing::kOtherTestKeyHex)));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(kKeyHex)));

  // The same key under the same id: no error.
  Sidecar same(dir_, "same", RedisEnv());
  EXPECT_TRUE(same.WaitHealth(health::HealthCheckResponse::SERVING))
      << same.process().ReadLog();
}

TEST_F(SidecarRedisTest, AKeyMismatchFoundOnReconnectKeepsTheSidecarNotReady) {
  Sidecar sidecar(dir_, "rc", RedisEnv());
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
  // Another key under k0 published meanwhile (a Redis emptied and refilled by
  // an instance holding other key bytes), then the connections drop.
  ASSERT_EQ(redis_->Cli({"SET", "stateside:kcv:k0", "0123456789abcdef"}).exit_status, 0);
  ASSERT_EQ(redis_->Cli({"CLIENT", "KILL", "TYPE", "normal"}).exit_status, 0);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return absl::StrContains(sidecar.process().ReadLog(),
                                 "key id k0 names other key bytes");
      },
      absl::Seconds(20)))
      << sidecar.process().ReadLog();
  EXPECT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::NOT_SERVING));
  EXPECT_FALSE(sidecar.Instance().ready());
  EXPECT_TRUE(sidecar.process().running());

  // Put right (the stale value removed): the next connection publishes this
  // instance's value again and it serves.
  ASSERT_EQ(redis_->Cli({"DEL", "stateside:kcv:k0"}).exit_status, 0);
  ASSERT_EQ(redis_->Cli({"CLIENT", "KILL", "TYPE", "normal"}).exit_status, 0);
  EXPECT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
}

// The ACL rules of deploy/k8s's Redis user `stateside`
// (deploy/k8s/base/redis/stateside.acl), joined as the StatefulSet does.
std::string ShippedAclRules() {
  const char* source = std::getenv("STATESIDE_SOURCE_DIR");
  EXPECT_NE(source, nullptr) << "STATESIDE_SOURCE_DIR (set by ctest)";
  if (source == nullptr) return "";
  std::ifstream in(std::string(source) + "/deploy/k8s/base/redis/stateside.acl");
  EXPECT_TRUE(in.good());
  std::vector<std::string> rules;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') rules.push_back(line);
  }
  return absl::StrJoin(rules, " ");
}

// Two sidecars on a redis-server configured like deploy/k8s's (the default
// user off, the sidecars as `stateside` with exactly the shipped rules) run
// every kind of Redis traffic the sidecar has: sessions (scripts, the user
// index), opt-outs, the registry (heartbeats, listing, the drain's
// deregistration), realtime (presence, pub/sub, history) and the
// live-session estimate. Nothing is refused; a command outside the rules is.
TEST_F(SidecarRedisTest, EveryFlowRunsAsTheShippedAclUser) {
  constexpr char kPassword[] = "acl-test-password-0123456789abcdef";
  const std::string rules = ShippedAclRules();
  ASSERT_THAT(rules, HasSubstr("-@all"));
  testing::RedisServerOptions options;
  options.acl_users = {absl::StrCat("stateside reset on >", kPassword, " ", rules)};
  options.extra_config = {"user default off"};
  auto acl_redis = testing::RedisServer::Start(options);
  ASSERT_TRUE(acl_redis.ok()) << acl_redis.status();
  const std::string url = absl::StrCat("redis://stateside:", kPassword, "@127.0.0.1:",
                                       (*acl_redis)->port());
  std::map<std::string, std::string> env = {{"REDIS_URL", url},
                                            {"STATESIDE_REDIS_CONNECT_TIMEOUT", "1s"},
                                            {"STATESIDE_DRAIN_TIMEOUT", "0s"}};
  Sidecar a(dir_, "acl-a", env);
  Sidecar b(dir_, "acl-b", env);
  ASSERT_TRUE(a.WaitHealth(health::HealthCheckResponse::SERVING)) << a.process().ReadLog();
  ASSERT_TRUE(b.WaitHealth(health::HealthCheckResponse::SERVING)) << b.process().ReadLog();

  // Session events: a's changes reach a watcher on b over the channel.
  EventWatch on_b = WatchEvents(b);
  CreateSeenBy(a, on_b, "dave");
  on_b.context->TryCancel();

  // Sessions: create, update and read across pods, the user index, destroy.
  const v1::Session created = ShareASession(a, b, "alice");
  v1::TouchSessionRequest touch;
  touch.mutable_key()->set_cookie(created.cookie());
  v1::TouchSessionResponse touched;
  EXPECT_TRUE(b.Sessions()->Touch(Context().get(), touch, &touched).ok());
  v1::RegenerateSessionRequest regenerate;
  regenerate.mutable_key()->set_cookie(created.cookie());
  // With a request_id (the r:{tag} scripts, as this user), retried on the
  // other pod: the first answer, not a second regenerate.
  regenerate.set_request_id("acl-login-1");
  v1::RegenerateSessionResponse regenerated;
  ASSERT_TRUE(a.Sessions()->Regenerate(Context().get(), regenerate, &regenerated).ok());
  v1::RegenerateSessionResponse retried;
  ASSERT_TRUE(b.Sessions()->Regenerate(Context().get(), regenerate, &retried).ok())
      << b.process().ReadLog();
  EXPECT_EQ(retried.session().metadata().id(), regenerated.session().metadata().id());
  v1::ListUserSessionsRequest list;
  list.set_user_id("alice");
  v1::ListUserSessionsResponse listed;
  ASSERT_TRUE(b.Sessions()->ListUserSessions(Context().get(), list, &listed).ok());
  EXPECT_EQ(listed.sessions_size(), 1);
  v1::DestroyUserSessionsRequest destroy_all;
  destroy_all.set_user_id("alice");
  destroy_all.set_close_connections(true);
  v1::DestroyUserSessionsResponse destroyed_all;
  EXPECT_TRUE(a.Sessions()->DestroyUserSessions(Context().get(), destroy_all, &destroyed_all).ok());
  v1::Session other;
  ASSERT_TRUE(Create(b, "bob", &other).ok());
  v1::DestroySessionRequest destroy;
  destroy.mutable_key()->set_id(other.metadata().id());
  v1::DestroySessionResponse destroyed;
  EXPECT_TRUE(a.Sessions()->Destroy(Context().get(), destroy, &destroyed).ok());

  // Opt-outs, across pods.
  v1::SetOptOutRequest opt_out;
  opt_out.set_subject("visitor-1");
  opt_out.set_opted_out(true);
  v1::SetOptOutResponse set;
  ASSERT_TRUE(a.Analytics()->SetOptOut(Context().get(), opt_out, &set).ok());
  v1::GetOptOutRequest get_opt_out;
  get_opt_out.set_subject("visitor-1");
  v1::GetOptOutResponse opted;
  ASSERT_TRUE(b.Analytics()->GetOptOut(Context().get(), get_opt_out, &opted).ok());
  EXPECT_TRUE(opted.opted_out());
  opt_out.set_opted_out(false);
  EXPECT_TRUE(b.Analytics()->SetOptOut(Context().get(), opt_out, &set).ok());

  // Realtime: a connection on b (Subscribe registers it), a publish from a
  // to its room, presence queries, history.
  v1::SubscribeRequest subscribe;
  auto* conn = subscribe.add_connections();
  conn->set_conn_id("conn-1");
  conn->set_user_id("carol");
  conn->add_rooms("lobby");
  auto stream_context = Context(20);
  auto stream = b.Realtime()->Subscribe(stream_context.get(), subscribe);
  v1::RealtimeEvent event;
  ASSERT_TRUE(stream->Read(&event)) << b.process().ReadLog();
  ASSERT_TRUE(event.subscribed());
  v1::JoinRequest join;
  join.set_conn_id("conn-1");
  join.add_rooms("news");
  v1::JoinResponse joined;
  EXPECT_TRUE(b.Realtime()->Join(Context().get(), join, &joined).ok());
  v1::PublishRequest publish;
  publish.set_room("lobby");
  publish.set_event("chat");
  publish.set_payload("hello");
  v1::PublishResponse published;
  ASSERT_TRUE(a.Realtime()->Publish(Context().get(), publish, &published).ok()) << a.process().ReadLog();
  do {
    ASSERT_TRUE(stream->Read(&event)) << b.process().ReadLog();
  } while (!event.has_delivery());
  EXPECT_EQ(event.delivery().payload(), "hello");
  v1::PublishRequest to_user;
  to_user.set_user_id("carol");
  to_user.set_event("dm");
  EXPECT_TRUE(a.Realtime()->Publish(Context().get(), to_user, &published).ok());
  v1::RoomMembersRequest members;
  members.set_room("lobby");
  v1::RoomMembersResponse in_room;
  ASSERT_TRUE(a.Realtime()->RoomMembers(Context().get(), members, &in_room).ok());
  EXPECT_EQ(in_room.count(), 1);
  v1::UserConnectionsRequest user_conns;
  user_conns.set_user_id("carol");
  v1::UserConnectionsResponse conns;
  ASSERT_TRUE(a.Realtime()->UserConnections(Context().get(), user_conns, &conns).ok());
  EXPECT_EQ(conns.connections_size(), 1);
  v1::HistoryRequest history;
  history.set_room("lobby");
  v1::HistoryResponse past;
  ASSERT_TRUE(a.Realtime()->History(Context().get(), history, &past).ok());
  EXPECT_EQ(past.events_size(), 1);
  v1::LeaveRequest leave;
  leave.set_conn_id("conn-1");
  leave.add_rooms("news");
  v1::LeaveResponse left;
  EXPECT_TRUE(b.Realtime()->Leave(Context().get(), leave, &left).ok());
  v1::UnregisterConnectionRequest unregister;
  unregister.set_conn_id("conn-1");
  v1::UnregisterConnectionResponse unregistered;
  EXPECT_TRUE(b.Realtime()->UnregisterConnection(Context().get(), unregister, &unregistered).ok());
  stream_context->TryCancel();

  // The registry: both listed, then a's drain takes it out.
  v1::ListInstancesResponse instances;
  ASSERT_TRUE(b.Lifecycle()->ListInstances(Context().get(), {}, &instances).ok());
  EXPECT_EQ(instances.instances_size(), 2);
  v1::DrainResponse draining;
  ASSERT_TRUE(a.Lifecycle()->Drain(Context().get(), {}, &draining).ok());
  EXPECT_TRUE(testing::WaitFor([&] {
    v1::ListInstancesResponse now;
    return b.Lifecycle()->ListInstances(Context().get(), {}, &now).ok() && now.instances_size() == 1;
  }, absl::Seconds(20))) << a.process().ReadLog();

  // Nothing the sidecars sent was refused (the live-session estimate runs
  // at start and every 15 s: its DBSIZE/RANDOMKEY too).
  for (Sidecar* s : {&a, &b}) {
    const std::string log = s->process().ReadLog();
    EXPECT_THAT(log, ::testing::Not(HasSubstr("NOPERM"))) << log;
    EXPECT_THAT(log, ::testing::Not(HasSubstr("no permissions"))) << log;
  }
  // A command outside the rules, and a key outside the prefix, are refused.
  const std::string port = std::to_string((*acl_redis)->port());
  const std::vector<std::string> cli = {"redis-cli", "-p", port, "--user", "stateside", "--no-auth-warning"};
  auto as_user = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = cli;
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, {{"REDISCLI_AUTH", kPassword}});
  };
  EXPECT_THAT(as_user({"PING"}).out, HasSubstr("PONG"));
  for (const std::vector<std::string>& refused :
       {std::vector<std::string>{"FLUSHALL"}, {"KEYS", "*"}, {"CONFIG", "GET", "save"},
        {"SET", "not-stateside:x", "1"}, {"EVAL", "return 1", "0"}}) {
    const testing::RunResult r = as_user(refused);
    EXPECT_THAT(r.out + r.err, HasSubstr("NOPERM")) << absl::StrJoin(refused, " ");
  }
}

// The value of `series` on the sidecar's /metrics; -1 when it cannot be
// read.
double Metric(Sidecar& sidecar, const std::string& series) {
  const std::optional<int> port =
      testing::AdminPortFromLog(sidecar.process().ReadLog(), "127.0.0.1");
  if (!port.has_value()) return -1;
  return testing::ScrapeMetric(*port, series).value_or(-1);
}

// Sidecar A caches sessions (as the shipped ACL user: its tracking, its
// invalidation channel); B changes and destroys them. Once A has received
// the invalidation, A never answers the old session.
TEST_F(SidecarRedisTest, TheNearCacheNeverServesWhatAnotherSidecarChanged) {
  constexpr char kPassword[] = "acl-test-password-0123456789abcdef";
  testing::RedisServerOptions options;
  options.acl_users = {absl::StrCat("stateside reset on >", kPassword, " ", ShippedAclRules())};
  options.extra_config = {"user default off"};
  auto acl_redis = testing::RedisServer::Start(options);
  ASSERT_TRUE(acl_redis.ok()) << acl_redis.status();
  std::map<std::string, std::string> env = {
      {"REDIS_URL", absl::StrCat("redis://stateside:", kPassword, "@127.0.0.1:",
                                 (*acl_redis)->port())},
      {"STATESIDE_REDIS_CONNECT_TIMEOUT", "1s"},
      {"STATESIDE_DRAIN_TIMEOUT", "0s"}};
  Sidecar b(dir_, "nc-b", env);
  env["STATESIDE_SESSION_NEAR_CACHE"] = "true";
  Sidecar a(dir_, "nc-a", env);
  ASSERT_TRUE(a.WaitHealth(health::HealthCheckResponse::SERVING)) << a.process().ReadLog();
  ASSERT_TRUE(b.WaitHealth(health::HealthCheckResponse::SERVING)) << b.process().ReadLog();
  ASSERT_TRUE(testing::WaitFor([&] { return Metric(a, "stateside_session_near_cache_armed") == 1; }))
      << a.process().ReadLog();

  v1::Session created;
  ASSERT_TRUE(Create(b, "erin", &created).ok());
  v1::GetSessionRequest get;
  get.mutable_key()->set_cookie(created.cookie());
  v1::GetSessionResponse got;
  const std::string hits = "stateside_session_near_cache_lookups_total{result=\"hit\"}";
  const double hits_before = Metric(a, hits);
  ASSERT_TRUE(a.Sessions()->Get(Context().get(), get, &got).ok());
  ASSERT_TRUE(a.Sessions()->Get(Context().get(), get, &got).ok());
  ASSERT_EQ(Metric(a, hits), hits_before + 1) << "the second read was not a hit";

  // An update on B, acknowledged; once A has its invalidation, A reads it.
  const std::string invalidations = "stateside_session_near_cache_invalidations_total";
  double seen = Metric(a, invalidations);
  v1::UpdateSessionRequest update;
  update.mutable_key()->set_cookie(created.cookie());
  (*update.mutable_set())["cart"] = R"(["pen"])";
  v1::UpdateSessionResponse updated;
  ASSERT_TRUE(b.Sessions()->Update(Context().get(), update, &updated).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return Metric(a, invalidations) > seen; }));
  ASSERT_TRUE(a.Sessions()->Get(Context().get(), get, &got).ok());
  EXPECT_EQ(got.session().attributes().at("cart"), R"(["pen"])");
  ASSERT_TRUE(a.Sessions()->Get(Context().get(), get, &got).ok());  // cached again

  // A destroy on B: once delivered, A answers NOT_FOUND.
  seen = Metric(a, invalidations);
  v1::DestroySessionRequest destroy;
  destroy.mutable_key()->set_id(created.metadata().id());
  v1::DestroySessionResponse destroyed;
  ASSERT_TRUE(b.Sessions()->Destroy(Context().get(), destroy, &destroyed).ok());
  ASSERT_TRUE(destroyed.existed());
  ASSERT_TRUE(testing::WaitFor([&] { return Metric(a, invalidations) > seen; }));
  EXPECT_EQ(a.Sessions()->Get(Context().get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace stateside

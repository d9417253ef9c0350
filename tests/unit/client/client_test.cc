// stateside::Client against an in-process fake sidecar: the retry policy as
// seen on the wire, deadlines, the readiness wait, and the mapping of replies.
#include "stateside/client.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/unit/client/fake_sidecar.h"
#include "tests/unit/client/fake_sidecar_fixture.h"

namespace stateside {
namespace {

using client_internal::IsIdempotent;
using client_internal::kAllRpcs;
using client_internal::Rpc;
using client_internal::RpcName;
using testing::FakeSidecar;
using ::testing::HasSubstr;
using HealthResponse = grpc::health::v1::HealthCheckResponse;

const grpc::Status kUnavailable(grpc::StatusCode::UNAVAILABLE, "store down");

class ClientTest : public testing::FakeSidecarTest<FakeSidecar> {
 protected:
  ClientOptions Options() const {
    ClientOptions o = FastRetryOptions();
    o.ready_timeout = absl::Seconds(10);
    return o;
  }

  std::unique_ptr<Client> Connected() { return Connect(Options()); }

  // Calls the client method behind `rpc`; returns its status.
  static absl::Status Invoke(Client& c, Rpc rpc) {
    const SessionRef ref = SessionRef::Cookie(FakeSidecar::kCookie);
    switch (rpc) {
      case Rpc::kCreateSession: return c.CreateSession("alice").status();
      case Rpc::kGetSession: return c.GetSession(ref).status();
      case Rpc::kUpdateSession: return c.UpdateSession(ref, {{"a", "1"}}).status();
      case Rpc::kTouchSession: return c.TouchSession(ref).status();
      case Rpc::kDestroySession: return c.DestroySession(ref).status();
      case Rpc::kRegenerateSession: return c.RegenerateSession(ref).status();
      case Rpc::kListUserSessions: return c.ListUserSessions("alice").status();
      case Rpc::kDestroyUserSessions: return c.DestroyUserSessions("alice").status();
      case Rpc::kSetOptOut: return c.SetOptOut("alice", true);
      case Rpc::kGetOptOut: return c.GetOptOut("alice").status();
      case Rpc::kGetInstance: return c.GetInstance().status();
      case Rpc::kCheckHealth: return c.CheckHealth().status();
      case Rpc::kListInstances: return c.ListInstances().status();
      case Rpc::kDrain: return c.Drain();
      case Rpc::kReportDrained: return c.ReportDrained();
      default:  // realtime calls: realtime_client_test
        break;
    }
    return absl::InternalError("not a call of this test");
  }
};

TEST_F(ClientTest, IdempotentCallsAreRetriedOnUnavailable) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  for (Rpc rpc : kAllRpcs) {
    if (!IsIdempotent(rpc)) continue;
    const int before = fake_->calls(rpc);
    fake_->FailNext(rpc, 2, kUnavailable);
    EXPECT_TRUE(Invoke(*client, rpc).ok()) << RpcName(rpc);
    EXPECT_EQ(fake_->calls(rpc) - before, 3) << RpcName(rpc);
  }
}

TEST_F(ClientTest, UpdateIsNotRetried) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->FailNext(Rpc::kUpdateSession, 1, kUnavailable);
  const absl::Status status = Invoke(*client, Rpc::kUpdateSession);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(fake_->calls(Rpc::kUpdateSession), 1);
}

TEST_F(ClientTest, CreateAndRegenerateAreRetriedWithTheRequestIdOfTheCall) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  for (Rpc rpc : {Rpc::kCreateSession, Rpc::kRegenerateSession}) {
    const size_t before = fake_->request_ids().size();
    fake_->FailNext(rpc, 2, kUnavailable);
    EXPECT_TRUE(Invoke(*client, rpc).ok()) << RpcName(rpc);
    EXPECT_TRUE(Invoke(*client, rpc).ok()) << RpcName(rpc);
    const std::vector<std::string> ids = fake_->request_ids();
    ASSERT_EQ(ids.size(), before + 4) << RpcName(rpc);
    // Three attempts of the first call with one request_id; the second call
    // has its own.
    EXPECT_EQ(ids[before].size(), 32u) << RpcName(rpc);
    EXPECT_EQ(ids[before + 1], ids[before]) << RpcName(rpc);
    EXPECT_EQ(ids[before + 2], ids[before]) << RpcName(rpc);
    EXPECT_NE(ids[before + 3], ids[before]) << RpcName(rpc);
  }
}

TEST_F(ClientTest, UpdateWithExpectedVersionIsNotRetriedEither) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->FailNext(Rpc::kUpdateSession, 1, kUnavailable);
  auto updated = client->UpdateSession(SessionRef::Id("x"), {{"a", "1"}}, {}, 7);
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(fake_->calls(Rpc::kUpdateSession), 1);
}

TEST_F(ClientTest, RetriesStopAfterMaxRetries) {
  ClientOptions o = Options();
  o.max_retries = 2;
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status();
  fake_->FailNext(Rpc::kGetSession, 100, kUnavailable);
  auto got = (*client)->GetSession(SessionRef::Id("x"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(got.status().message(), "store down");
  EXPECT_EQ(fake_->calls(Rpc::kGetSession), 3);
}

TEST_F(ClientTest, OtherErrorsAreNotRetriedAndKeepCodeAndMessage) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->FailNext(Rpc::kGetSession, 1,
                  grpc::Status(grpc::StatusCode::NOT_FOUND, "session not found"));
  auto got = client->GetSession(SessionRef::Id("x"));
  EXPECT_EQ(got.status(), absl::NotFoundError("session not found"));
  EXPECT_EQ(fake_->calls(Rpc::kGetSession), 1);

  fake_->FailNext(Rpc::kUpdateSession, 1,
                  grpc::Status(grpc::StatusCode::ABORTED, "version mismatch"));
  auto updated = client->UpdateSession(SessionRef::Id("x"), {{"a", "1"}}, {}, 3);
  EXPECT_EQ(updated.status(), absl::AbortedError("version mismatch"));
}

TEST_F(ClientTest, DeadlineExceededIsReportedAndNotRetried) {
  ClientOptions o = Options();
  o.call_timeout = absl::Milliseconds(200);
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status();
  fake_->Block(Rpc::kGetSession);
  const absl::Time start = absl::Now();
  auto got = (*client)->GetSession(SessionRef::Id("x"));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(elapsed, absl::Milliseconds(190));
  EXPECT_LT(elapsed, absl::Seconds(3));
  EXPECT_EQ(fake_->calls(Rpc::kGetSession), 1);
}

TEST_F(ClientTest, RetriesShareTheCallDeadline) {
  ClientOptions o = Options();
  o.call_timeout = absl::Milliseconds(300);
  o.max_retries = 1'000'000;
  o.initial_backoff = absl::Milliseconds(20);
  o.max_backoff = absl::Milliseconds(40);
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status();
  fake_->FailNext(Rpc::kGetSession, 1'000'000, kUnavailable);
  const absl::Time start = absl::Now();
  auto got = (*client)->GetSession(SessionRef::Id("x"));
  const absl::Duration elapsed = absl::Now() - start;
  // The last attempt starts only if its backoff fits before the deadline,
  // but on a slow machine (sanitizers, load) the attempt itself may then run
  // into it: UNAVAILABLE or DEADLINE_EXCEEDED, never a longer call.
  EXPECT_THAT(got.status().code(), ::testing::AnyOf(absl::StatusCode::kUnavailable,
                                                    absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(elapsed, absl::Seconds(2));
  // At least 10 ms between attempts: bounded by 300 ms / 10 ms.
  EXPECT_GE(fake_->calls(Rpc::kGetSession), 2);
  EXPECT_LE(fake_->calls(Rpc::kGetSession), 31);
}

TEST_F(ClientTest, GetMapsTheReplyIncludingBinaryValuesAndTimes) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto got = client->GetSession(SessionRef::Cookie(FakeSidecar::kCookie));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->info.id, FakeSidecar::kSessionId);
  EXPECT_EQ(got->info.user_id, "alice");
  EXPECT_EQ(got->info.version, 7u);
  EXPECT_EQ(got->info.created,
            absl::FromUnixSeconds(1'700'000'000) + absl::Milliseconds(250));
  EXPECT_EQ(got->info.absolute_expiry,
            absl::FromUnixSeconds(1'700'604'800) + absl::Milliseconds(250));
  EXPECT_EQ(got->cookie, FakeSidecar::kCookie);
  EXPECT_EQ(got->attributes.at("cart"), "[]");
  EXPECT_EQ(got->attributes.at("blob"), std::string("\0\xff\n", 3));
}

TEST_F(ClientTest, UpdateSendsSetDeleteAndExpectedVersion) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto updated = client->UpdateSession(SessionRef::Id("sid"),
                                       {{"a", std::string("x\0y", 3)}}, {"b"}, 0);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version, 8u);
  const v1::UpdateSessionRequest sent = fake_->last_update();
  EXPECT_EQ(sent.key().id(), "sid");
  EXPECT_EQ(sent.set().at("a"), std::string("x\0y", 3));
  ASSERT_EQ(sent.remove_size(), 1);
  EXPECT_EQ(sent.remove(0), "b");
  // 0 is a real expected version, distinct from "no check".
  ASSERT_TRUE(sent.has_expected_version());
  EXPECT_EQ(sent.expected_version(), 0u);

  ASSERT_TRUE(client->UpdateSession(SessionRef::Id("sid"), {{"a", "1"}}).ok());
  EXPECT_FALSE(fake_->last_update().has_expected_version());
}

TEST_F(ClientTest, CreateSendsUserAttributesAndTtls) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  SessionTtls ttls;
  ttls.idle = absl::Minutes(30);
  auto created = client->CreateSession("bob", {{"cart", "[]"}}, ttls);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->info.user_id, "bob");
  EXPECT_EQ(created->attributes.at("cart"), "[]");
  const v1::CreateSessionRequest sent = fake_->last_create();
  EXPECT_EQ(sent.idle_ttl().seconds(), 1800);
  EXPECT_FALSE(sent.has_absolute_ttl());
}

TEST_F(ClientTest, OtherMethodsMapTheirReplies) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  const SessionRef ref = SessionRef::Id("x");
  EXPECT_EQ(*client->DestroySession(ref), true);
  EXPECT_EQ(*client->DestroyUserSessions("alice", SessionRef::Id("keep")), 3u);
  auto list = client->ListUserSessions("alice");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].version, 2u);
  EXPECT_EQ(*client->GetOptOut("alice"), true);
  auto instance = client->GetInstance();
  ASSERT_TRUE(instance.ok());
  EXPECT_EQ(instance->id, "fake-1");
  EXPECT_EQ(instance->pid, 42);
  EXPECT_EQ(instance->uptime, absl::Seconds(90));
  EXPECT_EQ(instance->drain_state, DrainState::kDraining);
  EXPECT_FALSE(instance->ready);
}

TEST_F(ClientTest, CheckHealthReportsNotServingAsAValue) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->SetHealth(HealthResponse::NOT_SERVING);
  auto health = client->CheckHealth();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, ServingStatus::kNotServing);
}

TEST_F(ClientTest, InvalidUtf8TextIsRejectedWithoutACall) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  const std::string bad = "\xc3\x28";
  EXPECT_EQ(client->CreateSession(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client->CreateSession("u", {{bad, "v"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client->GetSession(SessionRef::Id(bad)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client->UpdateSession(SessionRef::Id("x"), {}, {bad}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client->SetOptOut(bad, true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fake_->calls(Rpc::kCreateSession), 0);
  EXPECT_EQ(fake_->calls(Rpc::kGetSession), 0);
  EXPECT_EQ(fake_->calls(Rpc::kUpdateSession), 0);
  // Values are bytes: anything goes.
  EXPECT_TRUE(client->CreateSession("u", {{"k", bad}}).ok());
}

TEST_F(ClientTest, OneClientServesManyThreads) {
  ClientOptions o = Options();
  o.max_retries = 100;  // any one call may meet several of the failures
  auto connected = Client::Connect(o);
  ASSERT_TRUE(connected.ok()) << connected.status();
  Client* client = connected->get();
  fake_->FailNext(Rpc::kGetSession, 20, kUnavailable);  // exercise retries too
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (client->GetSession(SessionRef::Id("x")).ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(fake_->calls(Rpc::kGetSession), 220);
}

// --- Connect ---

TEST_F(ClientTest, ConnectWaitsUntilHealthIsServing) {
  fake_->SetHealth(HealthResponse::NOT_SERVING);
  std::atomic<bool> done{false};
  absl::StatusOr<std::unique_ptr<Client>> client;
  std::thread connecting([&] {
    client = Client::Connect(Options());
    done = true;
  });
  // Several checks answered NOT_SERVING, and Connect is still waiting.
  EXPECT_TRUE(::stateside::testing::WaitFor(
      [&] { return fake_->calls(Rpc::kCheckHealth) >= 3; }));
  EXPECT_FALSE(done.load());
  fake_->SetHealth(HealthResponse::SERVING);
  connecting.join();
  EXPECT_TRUE(client.ok()) << client.status();
}

TEST_F(ClientTest, ConnectGivesUpAfterReadyTimeoutWhenNotServing) {
  fake_->SetHealth(HealthResponse::NOT_SERVING);
  ClientOptions o = Options();
  o.ready_timeout = absl::Seconds(1);
  const absl::Time start = absl::Now();
  auto client = Client::Connect(o);
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(client.status().message(), HasSubstr("NOT_SERVING"));
  EXPECT_GE(elapsed, absl::Seconds(1));
  EXPECT_LT(elapsed, absl::Seconds(3));
}

TEST_F(ClientTest, ConnectWithoutWaitingDoesNotCheckHealth) {
  ClientOptions o = Options();
  o.wait_until_ready = false;
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(fake_->calls(Rpc::kCheckHealth), 0);
}

class ClientNoSidecarTest : public ::testing::Test {
 protected:
  ::stateside::testing::TempDir dir_;
  const std::string socket_ = dir_.File("s.sock");
};

TEST_F(ClientNoSidecarTest, ConnectGivesUpAfterReadyTimeout) {
  ClientOptions o;
  o.socket_path = socket_;
  o.ready_timeout = absl::Milliseconds(400);
  const absl::Time start = absl::Now();
  auto client = Client::Connect(o);
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(client.status().message(), HasSubstr(socket_));
  EXPECT_GE(elapsed, absl::Milliseconds(400));
  EXPECT_LT(elapsed, absl::Seconds(3));
}

TEST_F(ClientNoSidecarTest, ConnectFindsASidecarThatStartsLater) {
  std::atomic<bool> started{false};
  absl::StatusOr<std::unique_ptr<Client>> client;
  std::thread connecting([&] {
    ClientOptions o;
    o.socket_path = socket_;
    o.ready_timeout = absl::Seconds(20);
    started = true;
    client = Client::Connect(o);
  });
  ASSERT_TRUE(::stateside::testing::WaitFor([&] { return started.load(); }));
  auto fake = FakeSidecar::Start(socket_);
  ASSERT_TRUE(fake.ok()) << fake.status();
  connecting.join();
  EXPECT_TRUE(client.ok()) << client.status();
}

TEST_F(ClientNoSidecarTest, CallsFailUnavailableQuicklyWithoutWaiting) {
  ClientOptions o;
  o.socket_path = socket_;
  o.wait_until_ready = false;
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status();
  const absl::Time start = absl::Now();
  EXPECT_EQ((*client)->GetSession(SessionRef::Id("x")).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ((*client)->CreateSession("u").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(ClientNoSidecarTest, InvalidOptionsAreRejectedNamingTheField) {
  struct Case {
    const char* field;
    void (*mutate)(ClientOptions&);
  };
  const Case cases[] = {
      {"socket_path", [](ClientOptions& o) { o.socket_path = ""; }},
      {"socket_path", [](ClientOptions& o) { o.socket_path = "/" + std::string(200, 'x'); }},
      {"call_timeout", [](ClientOptions& o) { o.call_timeout = absl::ZeroDuration(); }},
      {"call_timeout", [](ClientOptions& o) { o.call_timeout = absl::InfiniteDuration(); }},
      {"ready_timeout", [](ClientOptions& o) { o.ready_timeout = -absl::Seconds(1); }},
      {"max_retries", [](ClientOptions& o) { o.max_retries = -1; }},
      {"initial_backoff", [](ClientOptions& o) { o.initial_backoff = absl::ZeroDuration(); }},
      {"max_backoff", [](ClientOptions& o) { o.max_backoff = absl::Microseconds(1); }},
  };
  for (const Case& c : cases) {
    ClientOptions o;
    o.socket_path = socket_;
    c.mutate(o);
    auto client = Client::Connect(o);
    EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(client.status().message(), HasSubstr(c.field));
  }
}

}  // namespace
}  // namespace stateside

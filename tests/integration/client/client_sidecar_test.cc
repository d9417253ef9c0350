// stateside::Client against the real sidecar: every method round-trips, over
// each transport of the session and opt-out calls (unary RPCs, one Pipe
// stream, two), synchronously and through the Async forms.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "tests/integration/client/sidecar_fixture.h"
#include "tests/support/wait.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// The parameter is ClientOptions::streams (0: unary RPCs), without the
// frame socket; kFrames: Get and Update on the frame socket, the rest on
// one stream.
constexpr int kFrames = -1;

class ClientSidecarTest : public testing::SidecarFixture,
                         public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    SidecarFixture::SetUp();
    if (HasFatalFailure()) return;
    ClientOptions options;
    options.socket_path = socket_path();
    options.streams = GetParam() == kFrames ? 1 : GetParam();
    options.frames = GetParam() == kFrames;
    auto client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  std::vector<std::string> ListIds(const std::string& user) {
    auto list = client_->ListUserSessions(user);
    EXPECT_TRUE(list.ok()) << list.status();
    std::vector<std::string> ids;
    if (list.ok()) {
      for (const SessionInfo& s : *list) ids.push_back(s.id);
    }
    return ids;
  }

  std::unique_ptr<Client> client_;
};

TEST_P(ClientSidecarTest, CreateThenGetByCookieAndByIdReturnsTheSession) {
  const std::string user = UniqueUser("alice");
  const std::string binary("\0\xff\x01", 3);
  auto created = client_->CreateSession(user, {{"cart", "[]"}, {"bin", binary}});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->info.id.size(), 43u);
  EXPECT_EQ(created->info.user_id, user);
  EXPECT_THAT(created->cookie, HasSubstr(created->info.id + "."));
  EXPECT_LE(created->info.created, absl::Now());
  EXPECT_GT(created->info.idle_expiry, absl::Now());
  EXPECT_GE(created->info.absolute_expiry, created->info.idle_expiry);

  for (const SessionRef& ref : {SessionRef::Cookie(created->cookie),
                                SessionRef::Id(created->info.id),
                                SessionRef::Parse(created->cookie)}) {
    auto got = client_->GetSession(ref);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->info.id, created->info.id);
    EXPECT_EQ(got->attributes.at("cart"), "[]");
    EXPECT_EQ(got->attributes.at("bin"), binary);
  }
}

TEST_P(ClientSidecarTest, GetWithoutTouchLeavesLastAccess) {
  auto created = client_->CreateSession(UniqueUser("u"));
  ASSERT_TRUE(created.ok()) << created.status();
  const SessionRef ref = SessionRef::Id(created->info.id);
  auto first = client_->GetSession(ref, /*touch=*/false);
  auto second = client_->GetSession(ref, /*touch=*/false);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->info.last_access, second->info.last_access);
}

TEST_P(ClientSidecarTest, UpdateSetsDeletesAndChecksTheVersion) {
  auto created = client_->CreateSession(UniqueUser("u"), {{"a", "1"}, {"b", "2"}});
  ASSERT_TRUE(created.ok()) << created.status();
  const SessionRef ref = SessionRef::Cookie(created->cookie);
  auto updated = client_->UpdateSession(ref, {{"c", "3"}}, {"a"});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_GT(updated->version, created->info.version);

  auto conflict = client_->UpdateSession(ref, {{"d", "4"}}, {}, updated->version + 100);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted) << conflict.status();

  auto cas = client_->UpdateSession(ref, {{"d", "4"}}, {}, updated->version);
  ASSERT_TRUE(cas.ok()) << cas.status();

  auto got = client_->GetSession(ref);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->attributes,
            (Attributes{{"b", "2"}, {"c", "3"}, {"d", "4"}}));
  EXPECT_EQ(got->info.version, cas->version);
}

TEST_P(ClientSidecarTest, TouchReturnsTheMetadata) {
  auto created = client_->CreateSession(UniqueUser("u"));
  ASSERT_TRUE(created.ok()) << created.status();
  auto touched = client_->TouchSession(SessionRef::Id(created->info.id));
  ASSERT_TRUE(touched.ok()) << touched.status();
  EXPECT_EQ(touched->id, created->info.id);
  EXPECT_GE(touched->last_access, created->info.last_access);
}

TEST_P(ClientSidecarTest, RegenerateMovesTheSessionToANewId) {
  auto created = client_->CreateSession(UniqueUser("u"), {{"k", "v"}});
  ASSERT_TRUE(created.ok()) << created.status();
  auto moved = client_->RegenerateSession(SessionRef::Cookie(created->cookie));
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_NE(moved->info.id, created->info.id);
  EXPECT_NE(moved->cookie, created->cookie);
  EXPECT_EQ(moved->attributes.at("k"), "v");
  EXPECT_EQ(client_->GetSession(SessionRef::Id(created->info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(client_->GetSession(SessionRef::Cookie(moved->cookie)).ok());
}

TEST_P(ClientSidecarTest, RegenerateWithAUserIdLogsTheAnonymousSessionIn) {
  auto guest = client_->CreateSession("", {{"cart:boots", "boots"}});
  ASSERT_TRUE(guest.ok()) << guest.status();
  const std::string user = UniqueUser("login");
  RegenerateOptions login;
  login.user_id = user;
  auto logged_in = client_->RegenerateSession(SessionRef::Cookie(guest->cookie), login);
  ASSERT_TRUE(logged_in.ok()) << logged_in.status();
  EXPECT_EQ(logged_in->info.user_id, user);
  EXPECT_EQ(logged_in->attributes.at("cart:boots"), "boots");
  EXPECT_EQ(client_->GetSession(SessionRef::Id(guest->info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(ListIds(user), UnorderedElementsAre(logged_in->info.id));
  // Another user's session is not handed over.
  login.user_id = UniqueUser("thief");
  auto refused = client_->RegenerateSession(SessionRef::Cookie(logged_in->cookie), login);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_EQ(ErrorReasonOf(refused.status()).value_or(ErrorReason{}).reason, "SESSION_OWNED");
  // The async form, with the cap of the new owner's sessions.
  auto second_guest = client_->CreateSession("");
  ASSERT_TRUE(second_guest.ok()) << second_guest.status();
  login.user_id = user;
  login.limit.max_sessions_per_user = 1;
  login.limit.policy = SessionLimitPolicy::kEndOldest;
  std::promise<absl::StatusOr<Session>> promise;
  client_->RegenerateSessionAsync(
      SessionRef::Id(second_guest->info.id), login,
      [&](absl::StatusOr<Session> s) { promise.set_value(std::move(s)); });
  absl::StatusOr<Session> second = promise.get_future().get();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->info.user_id, user);
  EXPECT_THAT(ListIds(user), UnorderedElementsAre(second->info.id));
}

TEST_P(ClientSidecarTest, ACreatesCapRefusesOrEndsTheOldest) {
  const std::string user = UniqueUser("capped");
  SessionLimit two;
  two.max_sessions_per_user = 2;
  auto first = client_->CreateSession(user, {}, {}, two);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(client_->CreateSession(user, {}, {}, two).ok());
  auto refused = client_->CreateSession(user, {}, {}, two);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_EQ(ErrorReasonOf(refused.status()).value_or(ErrorReason{}).reason, "SESSION_LIMIT");
  two.policy = SessionLimitPolicy::kEndOldest;
  auto third = client_->CreateSession(user, {}, {}, two);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(ListIds(user).size(), 2u);
  EXPECT_EQ(client_->GetSession(SessionRef::Id(first->info.id)).status().code(),
            absl::StatusCode::kNotFound);
  SessionLimit zero;
  zero.max_sessions_per_user = 0;
  auto bad = client_->CreateSession(user, {}, {}, zero);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_EQ(ErrorReasonOf(bad.status()).value_or(ErrorReason{}).metadata["field"],
            "max_sessions_per_user");
}

TEST_P(ClientSidecarTest, DestroyIsIdempotentAndTheSessionStaysGone) {
  auto created = client_->CreateSession(UniqueUser("u"));
  ASSERT_TRUE(created.ok()) << created.status();
  const SessionRef ref = SessionRef::Id(created->info.id);
  EXPECT_EQ(client_->DestroySession(ref).value_or(false), true);
  EXPECT_EQ(client_->DestroySession(ref).value_or(true), false);
  const auto got = client_->GetSession(ref);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(got.status().message().empty());
  EXPECT_EQ(client_->UpdateSession(ref, {{"late", "write"}}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(ClientSidecarTest, ListAndDestroyUserSessionsKeepingOne) {
  const std::string user = UniqueUser("multi");
  std::vector<Session> sessions;
  for (int i = 0; i < 3; ++i) {
    auto s = client_->CreateSession(user);
    ASSERT_TRUE(s.ok()) << s.status();
    sessions.push_back(*s);
  }
  EXPECT_THAT(ListIds(user), UnorderedElementsAre(sessions[0].info.id, sessions[1].info.id,
                                                  sessions[2].info.id));
  auto destroyed =
      client_->DestroyUserSessions(user, SessionRef::Cookie(sessions[1].cookie));
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 2u);
  EXPECT_THAT(ListIds(user), UnorderedElementsAre(sessions[1].info.id));
  EXPECT_EQ(client_->DestroyUserSessions(user).value_or(0), 1u);
  EXPECT_TRUE(ListIds(user).empty());
}

TEST_P(ClientSidecarTest, ListingsComeAPageAtATime) {
  const std::string user = UniqueUser("pages");
  std::vector<std::string> made;
  // One more than the largest page, so that the walks of ListUserSessions
  // and ListUserSessionsAsync take two pages.
  for (int i = 0; i < 1001; ++i) {
    auto s = client_->CreateSession(user);
    ASSERT_TRUE(s.ok()) << s.status();
    made.push_back(s->info.id);
  }
  auto first = client_->ListUserSessionsPage(user, "", 600);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_GE(first->sessions.size(), 600u);
  ASSERT_FALSE(first->next_page_token.empty());
  auto rest = client_->ListUserSessionsPage(user, first->next_page_token, 1000);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(first->sessions.size() + rest->sessions.size(), made.size());
  EXPECT_EQ(rest->next_page_token, "");

  std::vector<std::string> sorted = made;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> listed = ListIds(user);
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, sorted);
  std::promise<absl::StatusOr<std::vector<SessionInfo>>> walked;
  client_->ListUserSessionsAsync(user, [&](absl::StatusOr<std::vector<SessionInfo>> all) {
    walked.set_value(std::move(all));
  });
  absl::StatusOr<std::vector<SessionInfo>> all = walked.get_future().get();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), made.size());

  EXPECT_EQ(client_->ListUserSessionsPage(user, "bogus").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->DestroyUserSessions(user).value_or(0), made.size());
}

TEST_P(ClientSidecarTest, UnknownAndForgedSessionsAreNotFound) {
  auto created = client_->CreateSession(UniqueUser("u"));
  ASSERT_TRUE(created.ok()) << created.status();
  std::string forged = created->cookie;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(client_->GetSession(SessionRef::Cookie(forged)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->GetSession(SessionRef::Id(std::string(43, 'A'))).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(ClientSidecarTest, LimitsAreInvalidArgumentNamingTheLimit) {
  // Just above the default STATESIDE_MAX_ATTRIBUTE_BYTES (64 KiB); far larger
  // requests stop at the sidecar's gRPC message cap (RESOURCE_EXHAUSTED).
  auto created = client_->CreateSession(UniqueUser("u"), {{"big", std::string(70'000, 'x')}});
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << created.status();
  EXPECT_THAT(created.status().message(), HasSubstr("max"));
}

TEST_P(ClientSidecarTest, AWatcherSeesTheLogoutOfItsKind) {
  // The watch runs on its own thread until it has seen the logout; the
  // sessions are made once it is attached (the first session it sees).
  const std::string user = UniqueUser("watched");
  absl::Notification attached;
  std::vector<SessionChange> seen;
  absl::Status watched;
  std::thread watcher([&] {
    watched = client_->WatchSessionEvents(
        [&](const Client::SessionEvent& event) {
          const auto* change = std::get_if<SessionChange>(&event);
          if (change == nullptr || change->user_id != user) return true;
          if (!attached.HasBeenNotified()) attached.Notify();
          seen.push_back(*change);
          return change->kind != SessionEventKind::kDestroyed;
        },
        {SessionEventKind::kCreated, SessionEventKind::kDestroyed});
  });
  // Creates until the watcher has one (it may attach after the first).
  while (!attached.WaitForNotificationWithTimeout(absl::Milliseconds(100))) {
    ASSERT_TRUE(client_->CreateSession(user).ok());
  }
  LogoutOptions logout;
  logout.close_connections = true;
  auto destroyed = client_->DestroyUserSessions(user, logout);
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_GE(*destroyed, 1u);
  watcher.join();
  EXPECT_TRUE(watched.ok()) << watched;
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.front().kind, SessionEventKind::kCreated);
  EXPECT_EQ(seen.back().kind, SessionEventKind::kDestroyed);
  EXPECT_EQ(seen.back().session_id.size(), 43u);
  EXPECT_EQ(SessionEventKindName(seen.back().kind), "destroyed");
}

TEST_P(ClientSidecarTest, OptOutRoundTrips) {
  const std::string subject = UniqueUser("subject");
  EXPECT_EQ(client_->GetOptOut(subject).value_or(true), false);
  ASSERT_TRUE(client_->SetOptOut(subject, true).ok());
  EXPECT_EQ(client_->GetOptOut(subject).value_or(false), true);
  ASSERT_TRUE(client_->SetOptOut(subject, false, absl::Hours(1)).ok());
  EXPECT_EQ(client_->GetOptOut(subject).value_or(true), false);
}

// Realtime recovery through the client on the memory store: a stream opened
// again with the positions it reached gets exactly what it missed, then
// cluster-wide join and disconnect reach the connection.
TEST_P(ClientSidecarTest, ASubscriptionResumesWhereItStoppedAndClusterWideOpsReachItsConnections) {
  const std::string user = UniqueUser("rt");
  const std::string room = user + "-room";
  const std::string conn = user + "-c1";
  ASSERT_TRUE(client_->RegisterConnection(conn, user, {room}).ok());
  const auto next = [](Subscription& sub) -> std::optional<RealtimeEvent> {
    absl::StatusOr<RealtimeEvent> event = sub.Next(absl::Seconds(10));
    if (!event.ok()) return std::nullopt;
    return *std::move(event);
  };
  std::vector<StreamPosition> seen;
  {
    auto sub = client_->Subscribe();
    ASSERT_TRUE(sub.ok()) << sub.status();
    ASSERT_TRUE(client_->Publish(PublishTarget::Room(room), "m", "r1").ok());
    ASSERT_TRUE(client_->Publish(PublishTarget::User(user), "m", "u1").ok());
    for (int i = 0; i < 2; ++i) {
      std::optional<RealtimeEvent> event = next(**sub);
      ASSERT_TRUE(event.has_value() && std::holds_alternative<Delivery>(*event));
      seen.push_back(PositionOf(std::get<Delivery>(*event)));
    }
  }
  auto r2 = client_->Publish(PublishTarget::Room(room), "m", "r2");
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->sequence, 2u);
  EXPECT_EQ(client_->Publish(PublishTarget::User(user), "m", "u2")->sequence, 2u);
  auto sub = client_->Subscribe({}, seen);
  ASSERT_TRUE(sub.ok()) << sub.status();
  std::vector<std::string> replayed;
  for (int i = 0; i < 2; ++i) {
    std::optional<RealtimeEvent> event = next(**sub);
    ASSERT_TRUE(event.has_value() && std::holds_alternative<Delivery>(*event));
    replayed.push_back(std::get<Delivery>(*event).payload);
  }
  EXPECT_THAT(replayed, ::testing::ElementsAre("r2", "u2"));

  auto joined = client_->JoinConnections(PublishTarget::User(user), {room + "-2"});
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(*joined, 1);
  ASSERT_TRUE(testing::WaitFor([&] {
    auto members = client_->RoomMembers(room + "-2");
    return members.ok() && members->count == 1;
  }));
  ASSERT_TRUE(client_->DisconnectConnections(PublishTarget::Room(room)).ok());
  std::optional<RealtimeEvent> gone = next(**sub);
  ASSERT_TRUE(gone.has_value() && std::holds_alternative<Disconnect>(*gone));
  EXPECT_THAT(std::get<Disconnect>(*gone).conn_ids, ::testing::ElementsAre(conn));
  EXPECT_EQ(client_->JoinConnections(PublishTarget::User(user), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(ClientSidecarTest, InstanceAndHealthDescribeTheRunningSidecar) {
  auto instance = client_->GetInstance();
  ASSERT_TRUE(instance.ok()) << instance.status();
  EXPECT_FALSE(instance->id.empty());
  EXPECT_EQ(instance->pid, sidecar_pid());
  EXPECT_EQ(instance->drain_state, DrainState::kServing);
  EXPECT_EQ(instance->backend, "memory");
  EXPECT_TRUE(instance->ready);
  EXPECT_LE(instance->start_time, absl::Now());
  EXPECT_GE(instance->api_revision, 3u);
  EXPECT_TRUE(instance->capabilities.pipe);
  EXPECT_TRUE(instance->capabilities.reflection);
  EXPECT_TRUE(instance->capabilities.session_events);
  EXPECT_TRUE(instance->capabilities.request_ids);
  EXPECT_TRUE(instance->capabilities.realtime_resume);
  EXPECT_EQ(instance->capabilities.topology, StoreTopology::kMemory);
  EXPECT_EQ(client_->CheckHealth().value_or(ServingStatus::kUnknown),
            ServingStatus::kServing);
}

// The sidecar's reason reaches the caller, over unary and over Pipe.
TEST_P(ClientSidecarTest, ErrorsCarryTheSidecarsReason) {
  auto missing = client_->GetSession(SessionRef::Id("no-such-session-id-no-such-session-id-00000"));
  ASSERT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  std::optional<ErrorReason> reason = ErrorReasonOf(missing.status());
  ASSERT_TRUE(reason.has_value()) << missing.status();
  EXPECT_EQ(reason->reason, "NOT_FOUND");
  EXPECT_EQ(reason->domain, "stateside.v1");

  auto created = client_->CreateSession(UniqueUser("reason"), {});
  ASSERT_TRUE(created.ok()) << created.status();
  auto stale = client_->UpdateSession(SessionRef::Id(created->info.id), {{"a", "1"}}, {},
                                      created->info.version + 5);
  ASSERT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  reason = ErrorReasonOf(stale.status());
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->reason, "VERSION_MISMATCH");
  EXPECT_FALSE(ErrorReasonOf(absl::OkStatus()).has_value());
}

TEST_P(ClientSidecarTest, CallsFromManyThreadsShareOneClient) {
  const std::string user = UniqueUser("threads");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto s = client_->CreateSession(user, {{"i", std::to_string(i)}});
        if (s.ok() && client_->GetSession(SessionRef::Cookie(s->cookie)).ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_EQ(ListIds(user).size(), 40u);
}

// The Async forms, chained from their own callbacks as an event loop would.
TEST_P(ClientSidecarTest, AsyncFormsChainFromTheirCallbacks) {
  const std::string user = UniqueUser("async");
  std::promise<absl::StatusOr<Session>> got;
  // A failure anywhere ends the chain with that status (never a hang).
  client_->CreateSessionAsync(user, {{"cart", "[]"}}, {}, [&](absl::StatusOr<Session> s) {
    if (!s.ok()) return got.set_value(s.status());
    const SessionRef ref = SessionRef::Cookie(s->cookie);
    client_->UpdateSessionAsync(
        ref, {{"cart", "[1]"}}, {}, s->info.version, [&, ref](absl::StatusOr<SessionInfo> u) {
          if (!u.ok()) return got.set_value(u.status());
          client_->GetSessionAsync(ref, /*touch=*/true, [&](absl::StatusOr<Session> g) {
            got.set_value(std::move(g));
          });
        });
  });
  absl::StatusOr<Session> session = got.get_future().get();
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(session->attributes.at("cart"), "[1]");
  EXPECT_EQ(session->info.version, 2u);

  std::promise<absl::Status> opt;
  client_->SetOptOutAsync(user, true, std::nullopt,
                          [&](absl::Status s) { opt.set_value(std::move(s)); });
  EXPECT_TRUE(opt.get_future().get().ok());
  std::promise<absl::StatusOr<bool>> opted;
  client_->GetOptOutAsync(user, [&](absl::StatusOr<bool> b) { opted.set_value(std::move(b)); });
  EXPECT_EQ(opted.get_future().get().value_or(false), true);
}

TEST_P(ClientSidecarTest, AsyncErrorsAreTheSyncOnes) {
  std::promise<absl::StatusOr<Session>> unknown;
  client_->GetSessionAsync(SessionRef::Id("no-such-session"), true,
                           [&](absl::StatusOr<Session> s) { unknown.set_value(std::move(s)); });
  EXPECT_EQ(unknown.get_future().get().status().code(), absl::StatusCode::kNotFound);
  // An argument error is reported without a call, before the call returns.
  bool ran = false;
  client_->GetSessionAsync(SessionRef::Cookie("\xff"), true, [&](absl::StatusOr<Session> s) {
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    ran = true;
  });
  EXPECT_TRUE(ran);
}

// The realtime Async forms and the logout one answer as their blocking forms.
TEST_P(ClientSidecarTest, RealtimeAndLogoutAsyncFormsAnswerAsTheBlockingOnes) {
  const std::string user = UniqueUser("rt-async");
  const std::string room = user + "-room";
  const std::string conn = user + "-c1";
  ASSERT_TRUE(client_->RegisterConnection(conn, user, {room}).ok());

  auto members = client_->RoomMembers(room);
  ASSERT_TRUE(members.ok()) << members.status();
  std::promise<absl::StatusOr<RoomMembersPage>> async_members;
  client_->RoomMembersAsync(room, 0, "", [&](absl::StatusOr<RoomMembersPage> page) {
    async_members.set_value(std::move(page));
  });
  absl::StatusOr<RoomMembersPage> page = async_members.get_future().get();
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->count, 1);
  EXPECT_EQ(page->count, members->count);
  EXPECT_EQ(page->members, members->members);

  auto mine = client_->UserConnections(user);
  ASSERT_TRUE(mine.ok()) << mine.status();
  std::promise<absl::StatusOr<std::vector<ConnectionRef>>> async_mine;
  client_->UserConnectionsAsync(user, [&](absl::StatusOr<std::vector<ConnectionRef>> found) {
    async_mine.set_value(std::move(found));
  });
  absl::StatusOr<std::vector<ConnectionRef>> found = async_mine.get_future().get();
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->size(), 1u);
  EXPECT_EQ(*found, *mine);

  auto first = client_->Publish(PublishTarget::Room(room), "e", "1");
  ASSERT_TRUE(first.ok()) << first.status();
  std::promise<absl::StatusOr<PublishResult>> async_published;
  client_->PublishAsync(PublishTarget::Room(room), "e", "2", {}, user,
                        [&](absl::StatusOr<PublishResult> published) {
                          async_published.set_value(std::move(published));
                        });
  absl::StatusOr<PublishResult> second = async_published.get_future().get();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->sequence, first->sequence + 1);  // published once
  // A room the sidecar refuses (longer than 256 bytes): as Publish's.
  std::promise<absl::Status> refused;
  client_->PublishAsync(PublishTarget::Room(std::string(300, 'r')), "e", "x", {}, "",
                        [&](absl::StatusOr<PublishResult> published) {
                          refused.set_value(published.status());
                        });
  const absl::Status blocking =
      client_->Publish(PublishTarget::Room(std::string(300, 'r')), "e", "x").status();
  EXPECT_EQ(blocking.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.get_future().get(), blocking);

  ASSERT_TRUE(client_->CreateSession(user).ok());
  ASSERT_TRUE(client_->CreateSession(user).ok());
  // close_connections is carried: the user's connection is told to close.
  auto sub = client_->Subscribe();
  ASSERT_TRUE(sub.ok()) << sub.status();
  LogoutOptions logout;
  logout.close_connections = true;
  std::promise<absl::StatusOr<uint32_t>> destroyed;
  client_->DestroyUserSessionsAsync(user, logout, [&](absl::StatusOr<uint32_t> count) {
    destroyed.set_value(std::move(count));
  });
  EXPECT_EQ(destroyed.get_future().get().value_or(0), 2u);
  EXPECT_TRUE(ListIds(user).empty());
  bool closed = false;
  while (!closed) {
    absl::StatusOr<RealtimeEvent> event = (*sub)->Next(absl::Seconds(10));
    ASSERT_TRUE(event.ok()) << "no stateside.close: " << event.status();
    const Delivery* delivery = std::get_if<Delivery>(&*event);
    if (delivery == nullptr || delivery->event != "stateside.close") continue;
    EXPECT_THAT(delivery->conn_ids, ::testing::ElementsAre(conn));
    closed = true;
  }
  EXPECT_TRUE(client_->UnregisterConnection(conn).value_or(false));
}

// Many callers at once: on a stream their calls are multiplexed and batched.
TEST_P(ClientSidecarTest, ManyAsyncCallsInFlightEachGetTheirOwnAnswer) {
  const std::string user = UniqueUser("inflight");
  constexpr int kCalls = 256;
  std::vector<std::string> cookies;
  for (int i = 0; i < kCalls; ++i) {
    // One user per session: one user may hold at most 100
    // (STATESIDE_MAX_SESSIONS_PER_USER).
    auto s = client_->CreateSession(absl::StrCat(user, "-", i), {{"n", std::to_string(i)}});
    ASSERT_TRUE(s.ok()) << s.status();
    cookies.push_back(s->cookie);
  }
  std::vector<std::promise<absl::StatusOr<Session>>> answers(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    client_->GetSessionAsync(SessionRef::Cookie(cookies[i]), false,
                             [&answers, i](absl::StatusOr<Session> s) {
                               answers[i].set_value(std::move(s));
                             });
  }
  for (int i = 0; i < kCalls; ++i) {
    absl::StatusOr<Session> s = answers[i].get_future().get();
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->attributes.at("n"), std::to_string(i));
  }
}

// The sidecar takes about 392 KiB per message. Seven 64 KiB
// updates and one call larger than that, all at once on one lane: the large
// one fails alone (RESOURCE_EXHAUSTED naming the limit, never sent), the
// seven are batched below the limit and succeed.
class OneLaneTest : public testing::SidecarFixture {};

TEST_F(OneLaneTest, SevenLargeUpdatesAndOneOversizedCallFailOnlyTheOversizedCall) {
  ClientOptions options;
  options.socket_path = socket_path();
  options.streams = 1;
  options.frames = false;  // the updates on the lane, not the frame socket
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  constexpr int kUpdates = 7;
  const std::string user = UniqueUser("one-lane");
  std::vector<std::string> ids;
  for (int i = 0; i < kUpdates + 1; ++i) {
    auto s = (*client)->CreateSession(user, {});
    ASSERT_TRUE(s.ok()) << s.status();
    ids.push_back(s->info.id);
  }
  const std::string value(64 * 1024 - 64, 'v');  // under the attribute limit
  const std::string oversized(600 * 1024, 'o');
  std::vector<std::promise<absl::StatusOr<SessionInfo>>> answers(kUpdates + 1);
  for (int i = 0; i < kUpdates + 1; ++i) {
    // The oversized call in the middle of the burst.
    const bool big = i == kUpdates / 2;
    (*client)->UpdateSessionAsync(SessionRef::Id(ids[i]), {{"blob", big ? oversized : value}},
                                  {}, std::nullopt,
                                  [&answers, i](absl::StatusOr<SessionInfo> r) {
                                    answers[i].set_value(std::move(r));
                                  });
  }
  for (int i = 0; i < kUpdates + 1; ++i) {
    absl::StatusOr<SessionInfo> r = answers[i].get_future().get();
    if (i == kUpdates / 2) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("stateside-max-message-bytes"));
    } else {
      EXPECT_TRUE(r.ok()) << i << ": " << r.status();
    }
  }
  auto got = (*client)->GetSession(SessionRef::Id(ids[0]));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->attributes.at("blob"), value);
}

INSTANTIATE_TEST_SUITE_P(Transports, ClientSidecarTest, ::testing::Values(0, 1, 2, kFrames),
                         [](const ::testing::TestParamInfo<int>& info) {
                           if (info.param == kFrames) return std::string("Frames");
                           return info.param == 0 ? std::string("Unary")
                                                  : "Streams" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace stateside

// Every SessionService RPC over a real channel, with its status codes: each
// test runs over the unary RPCs and over SessionService.Pipe, which must
// answer alike.
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "sidecar/rpc/offload.h"
#include "sidecar/rpc/pipe.h"
#include "tests/support/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/rpc/convert.h"
#include "tests/unit/rpc/rpc_fixture.h"

namespace stateside::rpc {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class SessionServiceTest : public RpcTransportTest {};
INSTANTIATE_TEST_SUITE_P(Transports, SessionServiceTest, kBothTransports, TransportName);
INSTANTIATE_TEST_SUITE_P(Offloaded, SessionServiceTest, kBothTransports, TransportName);

grpc::StatusCode Code(const grpc::Status& status) { return status.error_code(); }

TEST_P(SessionServiceTest, CreateReturnsIdCookieAndMetadata) {
  const v1::Session session = CreateSession("alice", {{"cart", "[]"}});
  EXPECT_EQ(session.metadata().id().size(), 43u);
  EXPECT_EQ(session.cookie().rfind(session.metadata().id() + ".", 0), 0u);
  EXPECT_EQ(session.metadata().user_id(), "alice");
  EXPECT_EQ(session.metadata().version(), 1u);
  EXPECT_EQ(session.metadata().created().seconds(), absl::ToUnixSeconds(clock_.Now()));
  EXPECT_EQ(session.metadata().idle_expiry().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Hours(1)));
  EXPECT_EQ(session.metadata().absolute_expiry().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Hours(8)));
  EXPECT_EQ(session.attributes().at("cart"), "[]");
}

TEST_P(SessionServiceTest, CreateTakesShorterTimeouts) {
  v1::CreateSessionRequest request;
  request.mutable_idle_ttl()->set_seconds(60);
  request.mutable_absolute_ttl()->set_seconds(120);
  v1::CreateSessionResponse response;
  ASSERT_TRUE(calls_->Create(request, &response).ok());
  EXPECT_EQ(response.session().metadata().idle_expiry().seconds(),
            absl::ToUnixSeconds(clock_.Now()) + 60);
  EXPECT_EQ(response.session().metadata().absolute_expiry().seconds(),
            absl::ToUnixSeconds(clock_.Now()) + 120);
}

TEST_P(SessionServiceTest, CreateRefusesBadTimeoutsAndLimits) {
  v1::CreateSessionResponse response;
  auto create = [&](const v1::CreateSessionRequest& request) {
    return calls_->Create(request, &response);
  };
  v1::CreateSessionRequest longer;
  longer.mutable_idle_ttl()->set_seconds(2 * 3600);  // policy: 1h
  EXPECT_EQ(Code(create(longer)), grpc::StatusCode::INVALID_ARGUMENT);
  v1::CreateSessionRequest negative;
  negative.mutable_absolute_ttl()->set_seconds(-1);
  EXPECT_EQ(Code(create(negative)), grpc::StatusCode::INVALID_ARGUMENT);
  v1::CreateSessionRequest zero;
  zero.mutable_idle_ttl();  // present, 0s
  EXPECT_EQ(Code(create(zero)), grpc::StatusCode::INVALID_ARGUMENT);
  v1::CreateSessionRequest bad_nanos;
  bad_nanos.mutable_idle_ttl()->set_nanos(-5);
  EXPECT_EQ(Code(create(bad_nanos)), grpc::StatusCode::INVALID_ARGUMENT);

  v1::CreateSessionRequest too_many;
  for (size_t i = 0; i <= kMaxAttributes; ++i) {
    (*too_many.mutable_attributes())[absl::StrCat("a", i)] = "v";
  }
  grpc::Status status = create(too_many);
  EXPECT_EQ(Code(status), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("max_attributes"));

  v1::CreateSessionRequest too_big;
  (*too_big.mutable_attributes())["big"] = std::string(kMaxAttributeBytes + 1, 'x');
  status = create(too_big);
  EXPECT_EQ(Code(status), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("max_attribute_bytes"));

  v1::CreateSessionRequest empty_name;
  (*empty_name.mutable_attributes())[""] = "v";
  EXPECT_EQ(Code(create(empty_name)), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(SessionServiceTest, GetByIdOrCookieAndTouchRule) {
  const v1::Session session = CreateSession("bob", {{"k", "v"}});
  clock_.Advance(absl::Minutes(10));
  v1::GetSessionRequest request;
  *request.mutable_key() = CookieKey(session);
  request.set_touch(false);
  v1::GetSessionResponse response;
  ASSERT_TRUE(calls_->Get(request, &response).ok());
  EXPECT_EQ(response.session().attributes().at("k"), "v");
  EXPECT_EQ(response.session().metadata().last_access().seconds(),
            session.metadata().last_access().seconds());

  *request.mutable_key() = IdKey(session);
  request.clear_touch();  // unset: the Get touches
  ASSERT_TRUE(calls_->Get(request, &response).ok());
  EXPECT_EQ(response.session().metadata().last_access().seconds(),
            absl::ToUnixSeconds(clock_.Now()));
  EXPECT_EQ(response.session().cookie(), session.cookie());
}

TEST_P(SessionServiceTest, MissingOrMalformedKeysAreInvalidArgument) {
  v1::GetSessionRequest request;
  v1::GetSessionResponse response;
  grpc::Status status = calls_->Get(request, &response);
  EXPECT_EQ(Code(status), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("key"));
  request.mutable_key();  // present but neither id nor cookie
  EXPECT_EQ(Code(calls_->Get(request, &response)), grpc::StatusCode::INVALID_ARGUMENT);
  request.mutable_key()->set_id("");
  EXPECT_EQ(Code(calls_->Get(request, &response)), grpc::StatusCode::INVALID_ARGUMENT);
  request.mutable_key()->set_cookie(std::string(kMaxKeyBytes + 1, 'c'));
  EXPECT_EQ(Code(calls_->Get(request, &response)), grpc::StatusCode::INVALID_ARGUMENT);

  // Every RPC taking a key checks it.
  v1::UpdateSessionResponse update_response;
  EXPECT_EQ(Code(calls_->Update({}, &update_response)), grpc::StatusCode::INVALID_ARGUMENT);
  v1::TouchSessionResponse touch_response;
  EXPECT_EQ(Code(calls_->Touch({}, &touch_response)), grpc::StatusCode::INVALID_ARGUMENT);
  v1::DestroySessionResponse destroy_response;
  EXPECT_EQ(Code(calls_->Destroy({}, &destroy_response)), grpc::StatusCode::INVALID_ARGUMENT);
  v1::RegenerateSessionResponse regenerate_response;
  EXPECT_EQ(Code(calls_->Regenerate({}, &regenerate_response)), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(SessionServiceTest, UnknownForgedExpiredAndDestroyedAreAlikeNotFound) {
  const v1::Session live = CreateSession("carol");
  const v1::Session destroyed = CreateSession("carol");
  v1::DestroySessionRequest destroy;
  *destroy.mutable_key() = IdKey(destroyed);
  v1::DestroySessionResponse destroy_response;
  ASSERT_TRUE(calls_->Destroy(destroy, &destroy_response).ok());

  std::vector<v1::SessionKey> keys;
  v1::SessionKey key;
  key.set_id(std::string(43, 'A'));  // well formed, unknown
  keys.push_back(key);
  key.set_id("not an id");  // malformed
  keys.push_back(key);
  std::string forged = live.cookie();
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  key.set_cookie(forged);  // bad signature
  keys.push_back(key);
  key.set_cookie("no-dot-at-all");
  keys.push_back(key);
  keys.push_back(IdKey(destroyed));
  keys.push_back(CookieKey(destroyed));

  std::vector<std::string> messages;
  for (const v1::SessionKey& k : keys) {
    v1::GetSessionRequest request;
    *request.mutable_key() = k;
    v1::GetSessionResponse response;
    const grpc::Status status = calls_->Get(request, &response);
    EXPECT_EQ(Code(status), grpc::StatusCode::NOT_FOUND) << k.DebugString();
    messages.push_back(status.error_message());
  }
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));  // idle TTL passed
  v1::GetSessionRequest request;
  *request.mutable_key() = CookieKey(live);
  v1::GetSessionResponse response;
  const grpc::Status expired = calls_->Get(request, &response);
  EXPECT_EQ(Code(expired), grpc::StatusCode::NOT_FOUND);
  for (const std::string& message : messages) EXPECT_EQ(message, expired.error_message());
}

TEST_P(SessionServiceTest, UpdateSetsDeletesAndBumpsTheVersion) {
  const v1::Session session = CreateSession("dave", {{"a", "1"}, {"b", "2"}});
  v1::UpdateSessionRequest request;
  *request.mutable_key() = CookieKey(session);
  (*request.mutable_set())["c"] = "3";
  request.add_remove("a");
  v1::UpdateSessionResponse response;
  ASSERT_TRUE(calls_->Update(request, &response).ok());
  EXPECT_EQ(response.metadata().version(), 2u);

  v1::GetSessionRequest get;
  *get.mutable_key() = IdKey(session);
  v1::GetSessionResponse got;
  ASSERT_TRUE(calls_->Get(get, &got).ok());
  EXPECT_EQ(got.session().attributes().size(), 2u);
  EXPECT_EQ(got.session().attributes().at("b"), "2");
  EXPECT_EQ(got.session().attributes().at("c"), "3");
}

TEST_P(SessionServiceTest, ExpectedVersionConflictIsAborted) {
  const v1::Session session = CreateSession();
  v1::UpdateSessionRequest request;
  *request.mutable_key() = IdKey(session);
  (*request.mutable_set())["x"] = "1";
  request.set_expected_version(5);
  v1::UpdateSessionResponse response;
  EXPECT_EQ(Code(calls_->Update(request, &response)), grpc::StatusCode::ABORTED);
  request.set_expected_version(1);
  ASSERT_TRUE(calls_->Update(request, &response).ok());
  EXPECT_EQ(response.metadata().version(), 2u);
  // The same expected version again is now stale.
  EXPECT_EQ(Code(calls_->Update(request, &response)), grpc::StatusCode::ABORTED);
}

// Every error carries a stable reason a program acts on, the same over
// unary and Pipe (error.proto).
TEST_P(SessionServiceTest, ErrorsCarryAReasonAndTheFieldAtFault) {
  v1::CreateSessionResponse created;
  v1::CreateSessionRequest too_big;
  (*too_big.mutable_attributes())["big"] = std::string(kMaxAttributeBytes + 1, 'x');
  grpc::Status status = calls_->Create(too_big, &created);
  v1::ErrorInfo info = ErrorInfoOf(status);
  EXPECT_EQ(info.reason(), "ATTRIBUTE_TOO_LARGE");
  EXPECT_EQ(info.domain(), "stateside.v1");
  EXPECT_EQ(info.metadata().at("field"), "attributes");
  EXPECT_EQ(info.metadata().at("limit"), "max_attribute_bytes");

  v1::CreateSessionRequest too_many;
  for (size_t i = 0; i <= kMaxAttributes; ++i) {
    (*too_many.mutable_attributes())[absl::StrCat("a", i)] = "v";
  }
  EXPECT_EQ(ErrorInfoOf(calls_->Create(too_many, &created)).reason(), "TOO_MANY_ATTRIBUTES");

  v1::GetSessionRequest get;
  get.mutable_key()->set_id("no-such-session-id-no-such-session-id-00000");
  v1::GetSessionResponse got;
  status = calls_->Get(get, &got);
  EXPECT_EQ(Code(status), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrorInfoOf(status).reason(), "NOT_FOUND");

  const v1::Session session = CreateSession();
  v1::UpdateSessionRequest update;
  *update.mutable_key() = IdKey(session);
  update.set_expected_version(7);
  v1::UpdateSessionResponse updated;
  EXPECT_EQ(ErrorInfoOf(calls_->Update(update, &updated)).reason(), "VERSION_MISMATCH");

  v1::ListUserSessionsRequest list;  // no user_id
  v1::ListUserSessionsResponse listed;
  info = ErrorInfoOf(calls_->ListUserSessions(list, &listed));
  EXPECT_EQ(info.reason(), "INVALID_ARGUMENT");
  EXPECT_EQ(info.metadata().at("field"), "user_id");
}

TEST_P(SessionServiceTest, UpdateRefusesANameBothSetAndDeleted) {
  const v1::Session session = CreateSession();
  v1::UpdateSessionRequest request;
  *request.mutable_key() = IdKey(session);
  (*request.mutable_set())["x"] = "1";
  request.add_remove("x");
  v1::UpdateSessionResponse response;
  EXPECT_EQ(Code(calls_->Update(request, &response)), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(SessionServiceTest, ConcurrentUpdatesOfDifferentAttributesAllSurvive) {
  const v1::Session session = CreateSession();
  constexpr int kWriters = kMaxAttributes;
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      v1::UpdateSessionRequest request;
      *request.mutable_key() = IdKey(session);
      (*request.mutable_set())[absl::StrCat("w", i)] = absl::StrCat(i);
      v1::UpdateSessionResponse response;
      EXPECT_TRUE(calls_->Update(request, &response).ok());
    });
  }
  for (auto& t : writers) t.join();
  v1::GetSessionRequest get;
  *get.mutable_key() = IdKey(session);
  v1::GetSessionResponse got;
  ASSERT_TRUE(calls_->Get(get, &got).ok());
  EXPECT_EQ(got.session().attributes().size(), static_cast<size_t>(kWriters));
  EXPECT_EQ(got.session().metadata().version(), 1u + kWriters);
}

TEST_P(SessionServiceTest, TouchRollsTheIdleTimeout) {
  const v1::Session session = CreateSession();
  clock_.Advance(absl::Minutes(50));
  v1::TouchSessionRequest request;
  *request.mutable_key() = CookieKey(session);
  v1::TouchSessionResponse response;
  ASSERT_TRUE(calls_->Touch(request, &response).ok());
  EXPECT_EQ(response.metadata().last_access().seconds(), absl::ToUnixSeconds(clock_.Now()));
  clock_.Advance(absl::Minutes(50));  // 100 minutes after create, 50 after touch
  ASSERT_TRUE(calls_->Touch(request, &response).ok());
  clock_.Advance(absl::Minutes(61));
  EXPECT_EQ(Code(calls_->Touch(request, &response)), grpc::StatusCode::NOT_FOUND);
}

TEST_P(SessionServiceTest, DestroyIsIdempotentAndFinal) {
  const v1::Session session = CreateSession("erin", {{"k", "v"}});
  v1::DestroySessionRequest request;
  *request.mutable_key() = CookieKey(session);
  v1::DestroySessionResponse response;
  ASSERT_TRUE(calls_->Destroy(request, &response).ok());
  EXPECT_TRUE(response.existed());
  ASSERT_TRUE(calls_->Destroy(request, &response).ok());
  EXPECT_FALSE(response.existed());

  // A late update cannot bring it back.
  v1::UpdateSessionRequest update;
  *update.mutable_key() = IdKey(session);
  (*update.mutable_set())["k"] = "again";
  v1::UpdateSessionResponse update_response;
  EXPECT_EQ(Code(calls_->Update(update, &update_response)), grpc::StatusCode::NOT_FOUND);
  v1::GetSessionRequest get;
  *get.mutable_key() = IdKey(session);
  v1::GetSessionResponse got;
  EXPECT_EQ(Code(calls_->Get(get, &got)), grpc::StatusCode::NOT_FOUND);
}

TEST_P(SessionServiceTest, RegenerateMovesTheDataToANewId) {
  const v1::Session session = CreateSession("frank", {{"k", "v"}});
  v1::RegenerateSessionRequest request;
  *request.mutable_key() = CookieKey(session);
  v1::RegenerateSessionResponse response;
  ASSERT_TRUE(calls_->Regenerate(request, &response).ok());
  EXPECT_NE(response.session().metadata().id(), session.metadata().id());
  EXPECT_NE(response.session().cookie(), session.cookie());
  EXPECT_EQ(response.session().metadata().user_id(), "frank");
  EXPECT_EQ(response.session().attributes().at("k"), "v");

  v1::GetSessionRequest get;
  *get.mutable_key() = IdKey(session);
  v1::GetSessionResponse got;
  EXPECT_EQ(Code(calls_->Get(get, &got)), grpc::StatusCode::NOT_FOUND);
  *get.mutable_key() = CookieKey(response.session());
  EXPECT_TRUE(calls_->Get(get, &got).ok());
  EXPECT_EQ(Code(calls_->Regenerate(request, &response)), grpc::StatusCode::NOT_FOUND);
}

// A retry with the request_id of a Create that went through answers the
// first session; the user has one session, not two.
TEST_P(SessionServiceTest, ACreateRetriedWithItsRequestIdAppliesOnce) {
  v1::CreateSessionRequest request;
  request.set_user_id("rita");
  (*request.mutable_attributes())["cart"] = "[1]";
  request.set_request_id("create-1");
  v1::CreateSessionResponse first;
  ASSERT_TRUE(calls_->Create(request, &first).ok());
  v1::CreateSessionResponse retried;
  ASSERT_TRUE(calls_->Create(request, &retried).ok());
  EXPECT_EQ(retried.session().metadata().id(), first.session().metadata().id());
  EXPECT_EQ(retried.session().cookie(), first.session().cookie());
  EXPECT_EQ(retried.session().attributes().at("cart"), "[1]");

  v1::ListUserSessionsRequest list;
  list.set_user_id("rita");
  v1::ListUserSessionsResponse listed;
  ASSERT_TRUE(calls_->ListUserSessions(list, &listed).ok());
  EXPECT_EQ(listed.sessions_size(), 1);

  // Another request_id is another call.
  request.set_request_id("create-2");
  v1::CreateSessionResponse second;
  ASSERT_TRUE(calls_->Create(request, &second).ok());
  EXPECT_NE(second.session().metadata().id(), first.session().metadata().id());
  // The same request_id with another request is refused, naming the reason.
  request.set_request_id("create-1");
  (*request.mutable_attributes())["cart"] = "[2]";
  const grpc::Status reused = calls_->Create(request, &second);
  EXPECT_EQ(Code(reused), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorInfoOf(reused).reason(), "REQUEST_ID_REUSED");
  EXPECT_EQ(ErrorInfoOf(reused).metadata().at("field"), "request_id");
  ASSERT_TRUE(calls_->ListUserSessions(list, &listed).ok());
  EXPECT_EQ(listed.sessions_size(), 2);
  // The first answer lasts the TTL (10 minutes here), then the id is free.
  clock_.Advance(absl::Minutes(11));
  request_store_->Sweep(clock_.Now());
  ASSERT_TRUE(calls_->Create(request, &second).ok());
}

TEST_P(SessionServiceTest, AnErrorIsNotRememberedAndABadRequestIdIsRefused) {
  v1::CreateSessionRequest request;
  request.set_request_id("create-err");
  (*request.mutable_attributes())["big"] = std::string(kMaxAttributeBytes + 1, 'x');
  v1::CreateSessionResponse response;
  EXPECT_EQ(Code(calls_->Create(request, &response)), grpc::StatusCode::INVALID_ARGUMENT);
  // The same request_id, now with a request that applies: it runs.
  request.clear_attributes();
  ASSERT_TRUE(calls_->Create(request, &response).ok());

  for (const std::string& bad : {std::string(129, 'a'), std::string("has space"),
                                std::string("tab\t"), std::string("\x7f")}) {
    request.set_request_id(bad);
    const grpc::Status status = calls_->Create(request, &response);
    EXPECT_EQ(Code(status), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(ErrorInfoOf(status).metadata().at("field"), "request_id") << bad;
  }
  request.set_request_id(std::string(128, '~'));
  EXPECT_TRUE(calls_->Create(request, &response).ok());
}

// Regenerate's request_id is scoped by the session: a retry after the
// first went through answers the new session, not NOT_FOUND.
TEST_P(SessionServiceTest, ARegenerateRetriedWithItsRequestIdAnswersTheNewSession) {
  const v1::Session session = CreateSession("sam", {{"k", "v"}});
  v1::RegenerateSessionRequest request;
  *request.mutable_key() = CookieKey(session);
  request.set_request_id("login-1");
  v1::RegenerateSessionResponse first;
  ASSERT_TRUE(calls_->Regenerate(request, &first).ok());
  v1::RegenerateSessionResponse retried;
  ASSERT_TRUE(calls_->Regenerate(request, &retried).ok());
  EXPECT_EQ(retried.session().metadata().id(), first.session().metadata().id());
  EXPECT_EQ(retried.session().cookie(), first.session().cookie());
  // Without the request_id: NOT_FOUND, as before.
  request.clear_request_id();
  EXPECT_EQ(Code(calls_->Regenerate(request, &retried)), grpc::StatusCode::NOT_FOUND);
  // The same request_id on another session is another call.
  const v1::Session other = CreateSession("sam");
  *request.mutable_key() = IdKey(other);
  request.set_request_id("login-1");
  ASSERT_TRUE(calls_->Regenerate(request, &retried).ok());
  EXPECT_NE(retried.session().metadata().id(), first.session().metadata().id());
}

TEST_P(SessionServiceTest, RegenerateWithAUserIdGivesTheAnonymousSessionItsOwner) {
  const v1::Session guest = CreateSession("", {{"cart", "[boots]"}});
  v1::RegenerateSessionRequest request;
  *request.mutable_key() = CookieKey(guest);
  request.set_user_id("hana");
  v1::RegenerateSessionResponse response;
  ASSERT_TRUE(calls_->Regenerate(request, &response).ok());
  EXPECT_EQ(response.session().metadata().user_id(), "hana");
  EXPECT_EQ(response.session().attributes().at("cart"), "[boots]");
  v1::ListUserSessionsRequest list;
  list.set_user_id("hana");
  v1::ListUserSessionsResponse listed;
  ASSERT_TRUE(calls_->ListUserSessions(list, &listed).ok());
  ASSERT_EQ(listed.sessions_size(), 1);
  EXPECT_EQ(listed.sessions(0).id(), response.session().metadata().id());

  // Not another user's session; not an unknown policy.
  *request.mutable_key() = CookieKey(response.session());
  request.set_user_id("ivan");
  grpc::Status status = calls_->Regenerate(request, &response);
  EXPECT_EQ(Code(status), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorInfoOf(status).reason(), "SESSION_OWNED");
  request.set_user_id("hana");
  request.set_session_limit_policy(static_cast<v1::SessionLimitPolicy>(7));
  EXPECT_EQ(Code(calls_->Regenerate(request, &response)), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(SessionServiceTest, CreatesCapAndPolicyTravelWithTheCall) {
  v1::CreateSessionRequest request;
  request.set_user_id("jack");
  request.set_max_sessions_per_user(1);
  v1::CreateSessionResponse first, second;
  ASSERT_TRUE(calls_->Create(request, &first).ok());
  grpc::Status refused = calls_->Create(request, &second);
  EXPECT_EQ(Code(refused), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ErrorInfoOf(refused).reason(), "SESSION_LIMIT");
  request.set_session_limit_policy(v1::SESSION_LIMIT_POLICY_END_OLDEST);
  ASSERT_TRUE(calls_->Create(request, &second).ok());
  v1::GetSessionRequest get;
  *get.mutable_key() = IdKey(first.session());
  v1::GetSessionResponse got;
  EXPECT_EQ(Code(calls_->Get(get, &got)), grpc::StatusCode::NOT_FOUND);
}

TEST_P(SessionServiceTest, ListAndDestroyUserSessions) {
  const v1::Session one = CreateSession("gina");
  const v1::Session two = CreateSession("gina");
  const v1::Session three = CreateSession("gina");
  CreateSession("other");

  v1::ListUserSessionsRequest list;
  list.set_user_id("gina");
  v1::ListUserSessionsResponse listed;
  ASSERT_TRUE(calls_->ListUserSessions(list, &listed).ok());
  std::vector<std::string> ids;
  for (const auto& m : listed.sessions()) ids.push_back(m.id());
  EXPECT_THAT(ids, UnorderedElementsAre(one.metadata().id(), two.metadata().id(),
                                        three.metadata().id()));

  v1::DestroyUserSessionsRequest destroy;
  destroy.set_user_id("gina");
  *destroy.mutable_keep() = CookieKey(two);
  v1::DestroyUserSessionsResponse destroyed;
  ASSERT_TRUE(calls_->DestroyUserSessions(destroy, &destroyed).ok());
  EXPECT_EQ(destroyed.destroyed(), 2u);
  ASSERT_TRUE(calls_->ListUserSessions(list, &listed).ok());
  ASSERT_EQ(listed.sessions_size(), 1);
  EXPECT_EQ(listed.sessions(0).id(), two.metadata().id());

  // An empty keep message keeps nothing.
  destroy.mutable_keep()->Clear();
  ASSERT_TRUE(calls_->DestroyUserSessions(destroy, &destroyed).ok());
  EXPECT_EQ(destroyed.destroyed(), 1u);
  ASSERT_TRUE(calls_->ListUserSessions(list, &listed).ok());
  EXPECT_EQ(listed.sessions_size(), 0);
}

TEST_P(SessionServiceTest, ListUserSessionsPagesWithTokens) {
  std::vector<std::string> made;
  for (int i = 0; i < 3; ++i) {
    made.push_back(CreateSession("hana").metadata().id());
    clock_.Advance(absl::Seconds(1));
  }
  v1::ListUserSessionsRequest list;
  list.set_user_id("hana");
  list.set_page_size(2);
  v1::ListUserSessionsResponse page;
  ASSERT_TRUE(calls_->ListUserSessions(list, &page).ok());
  ASSERT_EQ(page.sessions_size(), 2);
  EXPECT_EQ(page.sessions(0).id(), made[0]);
  EXPECT_EQ(page.sessions(1).id(), made[1]);
  ASSERT_FALSE(page.next_page_token().empty());
  list.set_page_token(page.next_page_token());
  ASSERT_TRUE(calls_->ListUserSessions(list, &page).ok());
  ASSERT_EQ(page.sessions_size(), 1);
  EXPECT_EQ(page.sessions(0).id(), made[2]);
  EXPECT_EQ(page.next_page_token(), "");

  list.set_page_token("not a token");
  grpc::Status bad = calls_->ListUserSessions(list, &page);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("page_token"), std::string::npos) << bad.error_message();
}

TEST_P(SessionServiceTest, UserRpcsNeedAUserId) {
  v1::ListUserSessionsResponse listed;
  EXPECT_EQ(Code(calls_->ListUserSessions({}, &listed)), grpc::StatusCode::INVALID_ARGUMENT);
  v1::DestroyUserSessionsResponse destroyed;
  EXPECT_EQ(Code(calls_->DestroyUserSessions({}, &destroyed)), grpc::StatusCode::INVALID_ARGUMENT);
  v1::DestroyUserSessionsRequest bad_keep;
  bad_keep.set_user_id("u");
  bad_keep.mutable_keep()->set_id("");
  EXPECT_EQ(Code(calls_->DestroyUserSessions(bad_keep, &destroyed)),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(SessionServiceTest, OversizedRequestIsResourceExhausted) {
  v1::CreateSessionRequest request;
  (*request.mutable_attributes())["big"] = std::string(kMaxMessageBytes + 1, 'x');
  v1::CreateSessionResponse response;
  EXPECT_EQ(Code(calls_->Create(request, &response)), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // The connection is still good for the next call (over Pipe the oversized
  // message ended its stream; the next call opens another).
  CreateSession();
}

}  // namespace
}  // namespace stateside::rpc

namespace stateside::rpc {
namespace {

// The server's offload pool with one thread and two places, which a test
// holds with tasks of its own.
class OffloadedCallTest : public RpcTest {
 protected:
  OffloadedCallTest() {
    offload_threads_ = 1;
    offload_queue_ = 2;
  }

  // Occupies the pool's thread until release is notified.
  void HoldThread() {
    server_->offload()->Run([this](absl::Status admitted) {
      EXPECT_TRUE(admitted.ok()) << admitted;
      held_.Notify();
      release_.WaitForNotification();
    });
    held_.WaitForNotification();
  }

  size_t UserSessions(const std::string& user) {
    v1::ListUserSessionsRequest list;
    list.set_user_id(user);
    v1::ListUserSessionsResponse listed;
    EXPECT_TRUE(session_stub_->ListUserSessions(Context().get(), list, &listed).ok());
    return static_cast<size_t>(listed.sessions_size());
  }

  void TearDown() override {
    if (!release_.HasBeenNotified()) release_.Notify();
    RpcTest::TearDown();
  }

  absl::Notification held_;
  absl::Notification release_;
};

// A user's Create that waited for the pool past its deadline (unary: the
// client gave up; Pipe: the call's timeout) is answered without running: no
// session exists for a caller who got DEADLINE_EXCEEDED.
TEST_F(OffloadedCallTest, ACallWhoseDeadlinePassedWhileQueuedDoesNotRun) {
  HoldThread();
  v1::CreateSessionRequest create;
  create.set_user_id("late");
  v1::CreateSessionResponse created;
  grpc::ClientContext unary;
  unary.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  EXPECT_EQ(session_stub_->Create(&unary, create, &created).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);

  auto context = Context();
  auto stream = session_stub_->Pipe(context.get());
  v1::PipeRequest request;
  v1::PipeCall* call = request.add_calls();
  call->set_id(7);
  *call->mutable_create() = create;
  call->mutable_timeout()->set_nanos(50'000'000);
  const absl::Time sent = absl::Now();
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(testing::WaitFor([&] { return server_->offload()->queued() == 2; }));
  // The Pipe call's deadline is the server's reading time + 50 ms, which
  // is at most this much later than ours.
  absl::SleepFor(sent + absl::Milliseconds(60) - absl::Now());
  release_.Notify();

  v1::PipeResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).id(), 7u);
  EXPECT_EQ(response.results(0).code(), static_cast<int32_t>(grpc::StatusCode::DEADLINE_EXCEEDED));
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
  // Both ran in order on the one thread: neither created a session.
  EXPECT_EQ(UserSessions("late"), 0u);
}

// A full pool refuses at once, UNAVAILABLE with reason OVERLOADED and
// nothing done; a malformed request_id is still INVALID_ARGUMENT.
TEST_F(OffloadedCallTest, AFullPoolRefusesUnavailableOverloadedAfterValidation) {
  HoldThread();
  for (int i = 0; i < 2; ++i) {
    server_->offload()->Run([](absl::Status) {});
  }
  v1::CreateSessionRequest create;
  create.set_user_id("crowd");
  v1::CreateSessionResponse created;
  const grpc::Status refused = session_stub_->Create(Context().get(), create, &created);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ErrorInfoOf(refused).reason(), "OVERLOADED");
  create.set_request_id(std::string(200, 'r'));
  const grpc::Status malformed = session_stub_->Create(Context().get(), create, &created);
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorInfoOf(malformed).metadata().at("field"), "request_id");
  release_.Notify();
  ASSERT_TRUE(testing::WaitFor([&] { return server_->offload()->queued() == 0; }));
  EXPECT_EQ(UserSessions("crowd"), 0u);
}

// At shutdown, once the grace has passed, a call still waiting for the pool
// is answered UNAVAILABLE without running: the drain does not wait for the
// backlog (only for the calls running).
TEST_F(OffloadedCallTest, ShutdownFailsTheQueuedCallsAtItsDeadline) {
  HoldThread();
  grpc::Status answer;
  std::thread caller([&] {
    v1::CreateSessionRequest create;
    create.set_user_id("shut");
    v1::CreateSessionResponse created;
    answer = session_stub_->Create(Context().get(), create, &created);
  });
  ASSERT_TRUE(testing::WaitFor([&] { return server_->offload()->queued() == 1; }));
  std::thread shutdown([&] { server_->Shutdown(absl::Now() + absl::Milliseconds(100)); });
  // Emptied while the thread is still held: failed, not run.
  EXPECT_TRUE(testing::WaitFor([&] { return server_->offload()->queued() == 0; }));
  caller.join();
  EXPECT_NE(answer.error_code(), grpc::StatusCode::OK);
  release_.Notify();
  shutdown.join();
  auto page = sessions_->ListUserSessionsPage("shut", "", 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->sessions.empty());
}

// One Pipe stream gets at most PipeReactor::kMaxOffloadedPerStream places
// of the shared pool at once; its further calls wait in the stream, and a
// call of another client still gets a place.
class StreamQuotaTest : public OffloadedCallTest {
 protected:
  StreamQuotaTest() { offload_queue_ = 1024; }
};

TEST_F(StreamQuotaTest, AStreamHoldsAtMostItsQuotaOfThePool) {
  constexpr size_t kQuota = PipeReactor::kMaxOffloadedPerStream;
  constexpr int kCalls = 100;
  static_assert(kCalls > static_cast<int>(kQuota));
  HoldThread();
  auto context = Context();
  auto stream = session_stub_->Pipe(context.get());
  v1::PipeRequest request;
  for (int i = 1; i <= kCalls; ++i) {
    v1::PipeCall* call = request.add_calls();
    call->set_id(static_cast<uint64_t>(i));
    call->mutable_get_opt_out()->set_subject("s" + std::to_string(i));
  }
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(testing::WaitFor([&] { return server_->offload()->queued() == kQuota; }));
  // Another client's call is queued behind the stream's quota, not its 100.
  grpc::Status other;
  std::thread unary([&] {
    v1::GetOptOutRequest get;
    get.set_subject("other");
    v1::GetOptOutResponse got;
    other = analytics_stub_->GetOptOut(Context().get(), get, &got);
  });
  ASSERT_TRUE(testing::WaitFor([&] { return server_->offload()->queued() == kQuota + 1; }));
  EXPECT_EQ(server_->offload()->queued(), kQuota + 1);
  release_.Notify();
  ASSERT_TRUE(stream->WritesDone());
  std::set<uint64_t> answered;
  v1::PipeResponse response;
  while (stream->Read(&response)) {
    for (const v1::PipeResult& r : response.results()) {
      EXPECT_EQ(r.code(), 0) << r.message();
      answered.insert(r.id());
    }
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered.size(), static_cast<size_t>(kCalls));
  unary.join();
  EXPECT_TRUE(other.ok()) << other.error_message();
}

}  // namespace
}  // namespace stateside::rpc

// Who may call POST /drain: peer classification (loopback or not), the
// bearer token rule, the refusal answers, and that a guarded handler never
// runs for a refused request.
#include "sidecar/admin/access.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stateside::admin {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

HttpRequest From(std::string address, std::string authorization = "") {
  HttpRequest request;
  request.method = "POST";
  request.path = request.target = "/drain";
  request.peer_address = std::move(address);
  if (!authorization.empty()) request.headers.emplace_back("Authorization", authorization);
  return request;
}

AdminAccess WithToken() {
  return AdminAccess([](std::string_view token) { return token == kToken; });
}

TEST(IsLoopbackAddressTest, LoopbackRangesAreLoopback) {
  for (const char* ip : {"127.0.0.1", "127.0.0.2", "127.255.255.254", "::1",
                         "::ffff:127.0.0.1", "::ffff:127.1.2.3"}) {
    EXPECT_TRUE(IsLoopbackAddress(ip)) << ip;
  }
}

TEST(IsLoopbackAddressTest, EverythingElseIsNot) {
  for (const char* ip : {"10.0.0.1", "192.0.2.2", "0.0.0.0", "128.0.0.1",
                         "::", "fd00::2", "::ffff:10.0.0.1", "::2", "",
                         "localhost", "127.0.0.1:80", "127.0.0.1 ", "garbage"}) {
    EXPECT_FALSE(IsLoopbackAddress(ip)) << ip;
  }
}

TEST(AdminAccessTest, WithoutTokenOnlyLoopbackPasses) {
  const AdminAccess access(nullptr);
  EXPECT_EQ(access.Check(From("127.0.0.1")), std::nullopt);
  EXPECT_EQ(access.Check(From("::1")), std::nullopt);
  EXPECT_EQ(access.Check(From("::ffff:127.0.0.1")), std::nullopt);
  EXPECT_EQ(access.Check(From("192.0.2.2")), Refusal::kNotLoopback);
  EXPECT_EQ(access.Check(From("::ffff:10.1.2.3")), Refusal::kNotLoopback);
  // A header does not help when no token is configured.
  EXPECT_EQ(access.Check(From("10.1.2.3", std::string("Bearer ") + kToken)),
            Refusal::kNotLoopback);
}

TEST(AdminAccessTest, WithTokenEveryPeerNeedsIt) {
  const AdminAccess access = WithToken();
  for (const char* peer : {"127.0.0.1", "192.0.2.2"}) {
    SCOPED_TRACE(peer);
    EXPECT_EQ(access.Check(From(peer)), Refusal::kMissingToken);
    EXPECT_EQ(access.Check(From(peer, "Basic YWRtaW46YWRtaW4=")), Refusal::kMissingToken);
    EXPECT_EQ(access.Check(From(peer, "Bearer ")), Refusal::kMissingToken);
    EXPECT_EQ(access.Check(From(peer, kToken)), Refusal::kMissingToken);
    EXPECT_EQ(access.Check(From(peer, "Bearer wrong-token")), Refusal::kBadToken);
    EXPECT_EQ(access.Check(From(peer, std::string("Bearer ") + kToken + "x")),
              Refusal::kBadToken);
    EXPECT_EQ(access.Check(From(peer, std::string("Bearer ") + kToken)), std::nullopt);
    EXPECT_EQ(access.Check(From(peer, std::string("bearer  ") + kToken)), std::nullopt);
  }
}

TEST(AdminAccessTest, RefusalsSayWhyWithTheRightStatus) {
  HttpResponse not_loopback = AdminAccess::Refuse(Refusal::kNotLoopback);
  EXPECT_EQ(not_loopback.status, 403);
  EXPECT_EQ(not_loopback.content_type, "application/json");
  EXPECT_THAT(not_loopback.body, HasSubstr(R"({"error": ")"));
  EXPECT_THAT(not_loopback.body, HasSubstr("loopback"));

  HttpResponse missing = AdminAccess::Refuse(Refusal::kMissingToken);
  EXPECT_EQ(missing.status, 401);
  ASSERT_EQ(missing.headers.size(), 1u);
  EXPECT_EQ(missing.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(missing.headers[0].second, R"(Bearer realm="stateside-admin")");

  HttpResponse bad = AdminAccess::Refuse(Refusal::kBadToken);
  EXPECT_EQ(bad.status, 401);
  ASSERT_EQ(bad.headers.size(), 1u);
  EXPECT_THAT(bad.headers[0].second, HasSubstr(R"(error="invalid_token")"));
  EXPECT_EQ(RefusalName(Refusal::kNotLoopback), "not_loopback");
  EXPECT_EQ(RefusalName(Refusal::kMissingToken), "missing_token");
  EXPECT_EQ(RefusalName(Refusal::kBadToken), "bad_token");
}

TEST(AdminAccessTest, GuardKeepsRefusedRequestsFromTheHandler) {
  int handled = 0;
  std::vector<Refusal> refused;
  HttpHandler guarded = AdminAccess(nullptr).Guard(
      [&](const HttpRequest&) {
        ++handled;
        return HttpResponse::Text(202, "ok\n");
      },
      [&](const HttpRequest&, Refusal r) { refused.push_back(r); });
  EXPECT_EQ(guarded(From("192.0.2.2")).status, 403);
  EXPECT_EQ(handled, 0);
  EXPECT_THAT(refused, ::testing::ElementsAre(Refusal::kNotLoopback));
  EXPECT_EQ(guarded(From("127.0.0.1")).status, 202);
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(refused.size(), 1u);
}

}  // namespace
}  // namespace stateside::admin

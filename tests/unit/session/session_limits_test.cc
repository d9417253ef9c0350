// SessionManager limits and input validation: every excess is
// INVALID_ARGUMENT naming the limit, and leaves the stored data unchanged.
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/session/session_manager.h"
#include "tests/unit/session/session_test_fixture.h"

namespace stateside::testing {
namespace {

#define EXPECT_LIMIT(status, limit)                                          \
  do {                                                                       \
    const ::absl::Status stateside_l_ = (status);                            \
    EXPECT_EQ(stateside_l_.code(), ::absl::StatusCode::kInvalidArgument)     \
        << stateside_l_;                                                     \
    EXPECT_NE(stateside_l_.message().find(limit), ::absl::string_view::npos) \
        << stateside_l_;                                                     \
  } while (0)

class SessionLimitsTest : public SessionManagerTest {
 protected:
  SessionLimitsTest() {
    session::SessionPolicy policy = TestPolicy();
    policy.limits.max_attributes = 4;
    policy.limits.max_attribute_name_bytes = 16;
    policy.limits.max_attribute_bytes = 1000;
    policy.limits.max_total_bytes = 2000;
    policy.limits.max_user_id_bytes = 32;
    Rebuild(policy);
  }

  absl::Status CreateWith(absl::flat_hash_map<std::string, std::string> attrs,
                          std::string user_id = "alice") {
    session::CreateParams params;
    params.user_id = std::move(user_id);
    params.attributes = std::move(attrs);
    return manager_->Create(params).status();
  }

  // Expects `update` to be refused naming `limit`, with `s` unchanged.
  void ExpectRefusedUnchanged(const session::Session& s, const session::UpdateParams& update,
                              std::string_view limit) {
    const session::StoredSession before = Raw(s.info.id);
    absl::Status status =
        manager_->Update(session::SessionKey::Id(s.info.id), update).status();
    EXPECT_LIMIT(status, std::string(limit));
    const session::StoredSession after = Raw(s.info.id);
    EXPECT_EQ(after.attributes, before.attributes);
    EXPECT_EQ(after.version, before.version);
    EXPECT_EQ(after.last_access, before.last_access);
  }
};

TEST_F(SessionLimitsTest, ValueSizeLimitIsNamedWithTheSizes) {
  session::SessionPolicy policy = TestPolicy();  // default: 64 KiB per value
  Rebuild(policy);
  absl::Status s = CreateWith({{"x", std::string(70000, 'v')}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "attribute 'x' is 70000 bytes; the limit (max_attribute_bytes) "
            "is 65536");
  EXPECT_EQ(store_.size(), 0u);
}

TEST_F(SessionLimitsTest, CreateBeyondALimitStoresNothing) {
  EXPECT_LIMIT(
      CreateWith({{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}),
      "max_attributes");
  EXPECT_LIMIT(CreateWith({{"a", std::string(1001, 'v')}}),
               "max_attribute_bytes");
  EXPECT_LIMIT(CreateWith({{"a", std::string(1000, 'v')},
                           {"b", std::string(1000, 'v')}}),
               "max_total_bytes");  // each fits, the envelopes together not
  EXPECT_LIMIT(CreateWith({{std::string(17, 'n'), "v"}}),
               "max_attribute_name_bytes");
  EXPECT_LIMIT(CreateWith({}, std::string(33, 'u')), "max_user_id_bytes");
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_EQ(events_.count("created"), 0);
}

TEST_F(SessionLimitsTest, ExactlyAtTheLimitsIsAccepted) {
  EXPECT_TRUE(CreateWith({{std::string(16, 'n'), std::string(1000, 'v')}},
                         std::string(32, 'u'))
                  .ok());
  EXPECT_TRUE(CreateWith({{"a", "1"}, {"b", "2"}, {"c", ""}, {"d", "4"}}).ok());
}

TEST_F(SessionLimitsTest, AttributeNamesMustBePrintableAscii) {
  const std::vector<std::string> bad = {
      "",
      std::string("\0user", 5),  // would collide with the sealed user id
      std::string("a\0b", 3),
      "tab\there",
      "new\nline",
      "del\x7f",
      "caf\xc3\xa9",
  };
  for (const std::string& name : bad) {
    absl::Status s = CreateWith({{name, "v"}});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument)
        << absl::CHexEscape(name) << ": " << s;
  }
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_TRUE(CreateWith({{"a-b_c.d:e/f {}", "v"}, {" ", "space"}}).ok());
}

TEST_F(SessionLimitsTest, ErrorMessagesDoNotEchoHugeOrBinaryNames) {
  Rebuild(TestPolicy());
  absl::Status s = CreateWith({{std::string(100000, 'n') + "\x01", "v"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 300u) << s.message().substr(0, 300);
}

TEST_F(SessionLimitsTest, UpdateBeyondALimitChangesNothing) {
  session::Session s = MustCreate("alice", {{"a", std::string(900, 'v')}, {"b", "2"}});
  session::UpdateParams update;
  update.set = {{"c", "3"}, {"d", "4"}, {"e", "5"}};  // merged: 5 > 4
  ExpectRefusedUnchanged(s, update, "max_attributes");

  update.set = {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}};
  ExpectRefusedUnchanged(s, update, "max_attributes");  // 5 in one request

  update.set = {{"c", std::string(1001, 'v')}};
  ExpectRefusedUnchanged(s, update, "max_attribute_bytes");

  update.set = {{"c", std::string(1000, 'v')}};  // 900 + 1000 + overhead
  ExpectRefusedUnchanged(s, update, "max_total_bytes");

  update.set = {{std::string(17, 'n'), "v"}};
  ExpectRefusedUnchanged(s, update, "max_attribute_name_bytes");

  update.set = {{"bad\x01", "v"}};
  ExpectRefusedUnchanged(s, update, "printable ASCII");

  update.set = {};
  update.remove = {"bad\x01"};
  ExpectRefusedUnchanged(s, update, "printable ASCII");

  update.set = {{"a", "x"}};
  update.remove = {"a"};
  ExpectRefusedUnchanged(s, update, "both set and deleted");

  // Room made in the same request is counted.
  update.set = {{"c", std::string(1000, 'v')}};
  update.remove = {"a"};
  EXPECT_TRUE(manager_->Update(session::SessionKey::Id(s.info.id), update).ok());
}

TEST_F(SessionLimitsTest, UpdateWithEmptyValueAndNothingIsFine) {
  session::Session s = MustCreate("alice", {});
  session::UpdateParams update;
  update.set = {{"empty", ""}};
  ASSERT_TRUE(manager_->Update(session::SessionKey::Id(s.info.id), update).ok());
  EXPECT_EQ(manager_->Get(session::SessionKey::Id(s.info.id))->attributes.at("empty"),
            "");
  absl::StatusOr<session::SessionInfo> noop =
      manager_->Update(session::SessionKey::Id(s.info.id), session::UpdateParams{});
  ASSERT_TRUE(noop.ok()) << noop.status();
  EXPECT_EQ(noop->version, 3u);
}

TEST_F(SessionLimitsTest, InvalidInputIsReportedBeforeTheKeyIsLookedUp) {
  session::UpdateParams update;
  update.set = {{"", "v"}};
  EXPECT_EQ(
      manager_->Update(session::SessionKey::Id("nonsense"), update).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(events_.total_not_found(), 0);
}

TEST_F(SessionLimitsTest, AFullMemoryStoreIsResourceExhausted) {
  session::MemorySessionStore small(2);
  session::SessionManager manager(&small, &sealer_, signer_.get(), random_.get(),
                         &clock_, TestPolicy(), &events_);
  ASSERT_TRUE(manager.Create(session::CreateParams{}).ok());
  ASSERT_TRUE(manager.Create(session::CreateParams{}).ok());
  absl::StatusOr<session::Session> third = manager.Create(session::CreateParams{});
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted)
      << third.status();
  EXPECT_EQ(small.size(), 2u);
  clock_.Advance(absl::Minutes(30));  // both idle-expired: room again
  EXPECT_TRUE(manager.Create(session::CreateParams{}).ok());
}

}  // namespace
}  // namespace stateside::testing

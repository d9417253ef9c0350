// statesidectl's realtime commands in-process against the fake
// RealtimeService: publish, subscribe (streams, filtering, --count,
// signals), presence and history, their --json forms and usage errors.
#include <signal.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/tools/cli.h"
#include "client/tools/cli_realtime_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/wait.h"
#include "tests/unit/client/fake_realtime_service.h"
#include "tests/unit/client/fake_sidecar_fixture.h"
#include "tests/unit/client/statesidectl_fixture.h"

namespace stateside {
namespace {

using client_internal::Rpc;
using testing::CliResult;
using testing::FakeRealtimeService;
using testing::OverflowGap;
using testing::RedisGap;
using testing::Ref;
using testing::RoomDelivery;
using testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using nlohmann::json;

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class StatesidectlRealtimeTest : public testing::FakeSidecarTest<FakeRealtimeService> {
 protected:
  // statesidectl --socket <fake> args...
  CliResult Run(std::vector<std::string> args) const {
    return testing::RunStatesidectlAt(socket_, args);
  }

  // Runs a command that must succeed (stderr shown otherwise).
  CliResult RunOk(std::vector<std::string> args) const {
    CliResult r = Run(args);
    EXPECT_EQ(r.exit_status, 0) << absl::StrJoin(args, " ") << "\n" << r.err;
    return r;
  }

  // Runs a streaming command on a thread; Join() waits for it. The test
  // drives the fake meanwhile (the output is read only after Join). If a
  // failed assertion left it running, the destructor ends its stream (and a
  // pending Subscribe gives up within --timeout) and joins, so a failure
  // neither hangs nor aborts the binary.
  struct Background {
    const std::unique_ptr<FakeRealtimeService>* fake;
    std::thread thread;
    CliResult result{-1, "", ""};
    CliResult Join() {
      thread.join();
      return result;
    }
    ~Background() {
      if (!thread.joinable()) return;
      if (*fake != nullptr) (*fake)->EndStreams(grpc::Status(grpc::StatusCode::ABORTED, "test"));
      thread.join();
      ADD_FAILURE() << "left running; stderr: " << result.err;
    }
  };
  std::unique_ptr<Background> Start(std::vector<std::string> args) const {
    auto bg = std::make_unique<Background>();
    bg->fake = &fake_;
    bg->thread = std::thread([this, bg = bg.get(), args] { bg->result = Run(args); });
    return bg;
  }
  // Waits until a started subscribe has its stream open.
  void AwaitStream() const {
    ASSERT_TRUE(WaitFor([&] { return fake_->streams() == 1; }));
  }
};

// --- publish ---

TEST_F(StatesidectlRealtimeTest, PublishToARoomPrintsSequenceAndInstances) {
  const CliResult r = Run({"publish", "--room", "lobby", "--event", "chat", "hello there"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "sequence 12, sent to 2 instance(s)\n");
  const v1::PublishRequest p = fake_->last_publish();
  EXPECT_EQ(p.room(), "lobby");
  EXPECT_EQ(p.event(), "chat");
  EXPECT_EQ(p.payload(), "hello there");
  EXPECT_EQ(p.request_id().size(), 32u);  // a fresh one
  ASSERT_EQ(Run({"publish", "--room", "lobby", "--request-id", "note-7", "x"}).exit_status, 0);
  EXPECT_EQ(fake_->last_publish().request_id(), "note-7");
}

TEST_F(StatesidectlRealtimeTest, PublishJsonIsSequenceAndInstances) {
  const CliResult room = Run({"publish", "--json", "--room", "lobby", "x"});
  ASSERT_EQ(room.exit_status, 0) << room.err;
  EXPECT_EQ(json::parse(room.out), (json{{"sequence", 12}, {"instances", 2}}));
  const CliResult user = Run({"publish", "--user", "alice", "x", "--json"});
  ASSERT_EQ(user.exit_status, 0) << user.err;
  EXPECT_EQ(json::parse(user.out), (json{{"sequence", 0}, {"instances", 2}}));
}

TEST_F(StatesidectlRealtimeTest, PublishMapsEachTargetAndExceptForm) {
  ASSERT_EQ(RunOk({"publish", "--user", "alice", "x"}).exit_status, 0);
  EXPECT_EQ(fake_->last_publish().user_id(), "alice");

  const CliResult local = Run({"publish", "--conn", "c1", "x"});
  ASSERT_EQ(local.exit_status, 0) << local.err;
  EXPECT_EQ(local.out, "sent to 2 instance(s)\n");
  EXPECT_EQ(fake_->last_publish().connection().instance_id(), "");
  EXPECT_EQ(fake_->last_publish().connection().conn_id(), "c1");

  // Split at the first '/': connection ids may contain one.
  ASSERT_EQ(RunOk({"publish", "--conn", "inst-1/c/2", "x"}).exit_status, 0);
  EXPECT_EQ(fake_->last_publish().connection().instance_id(), "inst-1");
  EXPECT_EQ(fake_->last_publish().connection().conn_id(), "c/2");

  ASSERT_EQ(RunOk({"publish", "--all", "--except", "c2", "--except", "i2/c3", "x"}).exit_status, 0);
  const v1::PublishRequest p = fake_->last_publish();
  EXPECT_TRUE(p.all());
  EXPECT_EQ(p.event(), "");
  ASSERT_EQ(p.exclude_size(), 2);
  EXPECT_EQ(p.exclude(0).instance_id(), "");
  EXPECT_EQ(p.exclude(0).conn_id(), "c2");
  EXPECT_EQ(p.exclude(1).instance_id(), "i2");
  EXPECT_EQ(p.exclude(1).conn_id(), "c3");
}

TEST_F(StatesidectlRealtimeTest, PublishPayloadBeginningWithDashGoesAfterDoubleDash) {
  ASSERT_EQ(RunOk({"publish", "--room", "lobby", "--", "-1"}).exit_status, 0);
  EXPECT_EQ(fake_->last_publish().payload(), "-1");
}

TEST_F(StatesidectlRealtimeTest, PublishNeedsExactlyOneTargetAndAPayload) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"publish", "x"},
           {"publish", "--room", "lobby", "--user", "alice", "x"},
           {"publish", "--all", "--conn", "c1", "x"},
           {"publish", "--room", "a", "--room", "b", "x"},
           {"publish", "--room", "lobby"},
           {"publish", "--room", "", "x"},
       }) {
    const CliResult r = Run(args);
    EXPECT_EQ(r.exit_status, 2) << absl::StrJoin(args, " ") << "\n" << r.err;
  }
  EXPECT_EQ(fake_->calls(Rpc::kPublish), 0);
}

TEST_F(StatesidectlRealtimeTest, BadConnectionFormsAreUsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"publish", "--conn", "", "x"},
           {"publish", "--conn", "/c1", "x"},
           {"publish", "--conn", "inst-1/", "x"},
           {"publish", "--conn", "/", "x"},
           {"publish", "--all", "--except", "/c1", "x"},
           {"publish", "--all", "--except", "i1/", "x"},
       }) {
    const CliResult r = Run(args);
    EXPECT_EQ(r.exit_status, 2) << absl::StrJoin(args, " ");
    EXPECT_THAT(r.err, HasSubstr("CONN")) << absl::StrJoin(args, " ");
  }
  EXPECT_EQ(fake_->calls(Rpc::kPublish), 0);
}

TEST_F(StatesidectlRealtimeTest, PublishFailureIsExitOne) {
  fake_->FailNext(Rpc::kPublish, 1,
                  grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too fast"));
  const CliResult r = Run({"publish", "--room", "lobby", "x"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_EQ(r.err, "statesidectl: RESOURCE_EXHAUSTED: too fast\n");
  EXPECT_EQ(fake_->calls(Rpc::kPublish), 1);
}

// --- subscribe ---

TEST_F(StatesidectlRealtimeTest, SubscribeCountExitsAfterThatManyDeliveries) {
  auto bg = Start({"subscribe", "--count", "2"});
  AwaitStream();
  fake_->PushEvent(OverflowGap(4));
  fake_->PushEvent(RoomDelivery("lobby", 1, "chat", "one", {"c1"}));
  fake_->PushEvent(RoomDelivery("lobby", 2, "", "two", {"c2"}));
  fake_->PushEvent(RoomDelivery("lobby", 3, "chat", "three", {"c1"}));
  const CliResult r = bg->Join();
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("gap subscriber-overflow dropped=4",
                                        "room lobby #1 chat: one", "room lobby #2: two"));
  EXPECT_EQ(fake_->last_subscribe().connections_size(), 0);
  EXPECT_TRUE(WaitFor([&] { return fake_->streams() == 0; }));
}

TEST_F(StatesidectlRealtimeTest, SubscribeJsonIsOneObjectPerLine) {
  auto bg = Start({"subscribe", "--json", "--count", "2"});
  AwaitStream();
  fake_->PushEvent(RedisGap(1'700'000'000, 1'700'000'002));
  fake_->PushEvent(RoomDelivery("lobby", 12, "chat", "hello", {"c1", "c2"}));
  fake_->PushEvent(RoomDelivery("lobby", 13, "bin", std::string("\0\xff", 2), {"c1"}));
  const CliResult r = bg->Join();
  ASSERT_EQ(r.exit_status, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(json::parse(lines[0]), (json{{"kind", "gap"},
                                         {"reason", "redis-disconnected"},
                                         {"dropped", 0},
                                         {"from", "2023-11-14T22:13:20.000Z"},
                                         {"to", "2023-11-14T22:13:22.000Z"}}));
  EXPECT_EQ(json::parse(lines[1]), (json{{"kind", "delivery"},
                                         {"target", "room"},
                                         {"to", "lobby"},
                                         {"event", "chat"},
                                         {"payload", "hello"},
                                         {"sequence", 12},
                                         {"conn_ids", {"c1", "c2"}},
                                         {"origin", "inst-2"},
                                         {"published_at", "2023-11-14T22:13:20.250Z"}}));
  const json binary = json::parse(lines[2]);
  EXPECT_FALSE(binary.contains("payload"));
  EXPECT_EQ(binary["payload_base64"], "AP8=");
}

TEST_F(StatesidectlRealtimeTest, SubscribeTextPrintsUnprintablePayloadsInBase64) {
  auto bg = Start({"subscribe", "--count", "2"});
  AwaitStream();
  fake_->PushEvent(RoomDelivery("lobby", 1, "bin", std::string("\0\xff", 2), {}));
  fake_->PushEvent(RoomDelivery("lobby", 2, "nl", "two\nlines", {}));
  const CliResult r = bg->Join();
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("room lobby #1 bin: base64:AP8=",
                                        "room lobby #2 nl: base64:dHdvCmxpbmVz"));
}

TEST_F(StatesidectlRealtimeTest, SubscribeWithConnRegistersItAndPrintsOnlyItsEvents) {
  auto bg = Start({"subscribe", "--conn", "c1", "--user", "alice", "--room", "lobby",
                   "--room", "r2", "--count", "1"});
  AwaitStream();
  fake_->PushEvent(RoomDelivery("lobby", 1, "chat", "not for c1", {"c2"}));
  fake_->PushEvent(OverflowGap(1));
  fake_->PushEvent(RoomDelivery("lobby", 2, "chat", "for c1", {"c2", "c1"}));
  const CliResult r = bg->Join();
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(Lines(r.out),
              ElementsAre("gap subscriber-overflow dropped=1", "room lobby #2 chat: for c1"));
  const v1::SubscribeRequest s = fake_->last_subscribe();
  ASSERT_EQ(s.connections_size(), 1);
  EXPECT_EQ(s.connections(0).conn_id(), "c1");
  EXPECT_EQ(s.connections(0).user_id(), "alice");
  EXPECT_THAT(s.connections(0).rooms(), ElementsAre("lobby", "r2"));
}

TEST_F(StatesidectlRealtimeTest, SubscribeBadFlagsAreUsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"subscribe", "--user", "alice"},
           {"subscribe", "--room", "lobby"},
           {"subscribe", "--conn", ""},
           {"subscribe", "--count", "0"},
           {"subscribe", "--count", "-1"},
           {"subscribe", "--count", "many"},
       }) {
    EXPECT_EQ(Run(args).exit_status, 2) << absl::StrJoin(args, " ");
  }
  EXPECT_EQ(fake_->calls(Rpc::kSubscribe), 0);
}

TEST_F(StatesidectlRealtimeTest, SubscribeStreamFailureIsExitOne) {
  auto bg = Start({"subscribe"});
  AwaitStream();
  fake_->PushEvent(RoomDelivery("lobby", 1, "chat", "one", {}));
  fake_->EndStreams(grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone"));
  const CliResult r = bg->Join();
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_EQ(r.out, "room lobby #1 chat: one\n");
  EXPECT_EQ(r.err, "statesidectl: UNAVAILABLE: gone\n");
}

TEST_F(StatesidectlRealtimeTest, SubscribeSidecarGoneIsExitOne) {
  auto bg = Start({"subscribe"});
  AwaitStream();
  fake_.reset();
  const CliResult r = bg->Join();
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.err, HasSubstr("statesidectl: UNAVAILABLE"));
}

TEST_F(StatesidectlRealtimeTest, SubscribeRefusedIsExitOne) {
  fake_->FailNext(Rpc::kSubscribe, 1,
                  grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "conn_id: too long"));
  const CliResult r = Run({"subscribe", "--conn", "c1"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_EQ(r.err, "statesidectl: INVALID_ARGUMENT: conn_id: too long\n");
}

// The handlers are installed before the stream opens, so once the fake sees
// the stream a signal reaches statesidectl's handler, not the default
// action (which would end this test binary).
TEST_F(StatesidectlRealtimeTest, SubscribeEndsCleanlyOnSigint) {
  auto bg = Start({"subscribe"});
  AwaitStream();
  fake_->PushEvent(RoomDelivery("lobby", 1, "chat", "one", {}));
  ASSERT_TRUE(WaitFor([&] { return fake_->written() >= 2; }));  // subscribed + one
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  const CliResult r = bg->Join();
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // The stream was cancelled: the sidecar unregisters its connections.
  EXPECT_TRUE(WaitFor([&] { return fake_->streams() == 0; }));
}

TEST_F(StatesidectlRealtimeTest, SubscribeEndsCleanlyOnSigterm) {
  auto bg = Start({"subscribe", "--conn", "c1"});
  AwaitStream();
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  const CliResult r = bg->Join();
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_TRUE(WaitFor([&] { return fake_->streams() == 0; }));
  // The previous disposition is back.
  struct sigaction current = {};
  ASSERT_EQ(sigaction(SIGTERM, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_DFL);
}

// --- presence ---

TEST_F(StatesidectlRealtimeTest, PresenceOfARoomListsEveryPage) {
  fake_->SetRoomMembers({Ref("i1", "a"), Ref("i1", "b"), Ref("i2", "c/d")}, 2);
  const CliResult r = Run({"presence", "--room", "lobby"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "i1/a\ni1/b\ni2/c/d\n");
  EXPECT_EQ(r.err, "3 connection(s)\n");
  EXPECT_EQ(fake_->calls(Rpc::kRoomMembers), 2);
  EXPECT_EQ(fake_->last_room_members().room(), "lobby");
}

TEST_F(StatesidectlRealtimeTest, PresenceJsonHasCountAndConnections) {
  fake_->SetRoomMembers({Ref("i1", "a"), Ref("i2", "b")}, 1);
  const CliResult room = Run({"presence", "--json", "--room", "lobby"});
  ASSERT_EQ(room.exit_status, 0) << room.err;
  EXPECT_EQ(json::parse(room.out),
            (json{{"count", 2},
                  {"connections", {{{"instance", "i1"}, {"conn", "a"}},
                                   {{"instance", "i2"}, {"conn", "b"}}}}}));

  fake_->SetUserConnections({Ref("i3", "z")});
  const CliResult user = Run({"presence", "--json", "--user", "alice"});
  ASSERT_EQ(user.exit_status, 0) << user.err;
  EXPECT_EQ(json::parse(user.out),
            (json{{"count", 1}, {"connections", {{{"instance", "i3"}, {"conn", "z"}}}}}));
  EXPECT_EQ(fake_->last_user_connections().user_id(), "alice");
}

TEST_F(StatesidectlRealtimeTest, PresenceOfAUserListsItsConnections) {
  fake_->SetUserConnections({Ref("i1", "a"), Ref("i2", "b")});
  const CliResult r = Run({"presence", "--user", "alice"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "i1/a\ni2/b\n");
  EXPECT_EQ(r.err, "2 connection(s)\n");
}

TEST_F(StatesidectlRealtimeTest, PresenceNeedsExactlyOneOfRoomAndUser) {
  EXPECT_EQ(Run({"presence"}).exit_status, 2);
  EXPECT_EQ(Run({"presence", "--room", "a", "--user", "b"}).exit_status, 2);
  EXPECT_EQ(Run({"presence", "--room", ""}).exit_status, 2);
  EXPECT_EQ(fake_->calls(Rpc::kRoomMembers), 0);
  EXPECT_EQ(fake_->calls(Rpc::kUserConnections), 0);
}

TEST_F(StatesidectlRealtimeTest, PresenceStopsOnARepeatedPageToken) {
  fake_->SetRoomMembers({Ref("i1", "a")}, 1);
  fake_->SetStuckPageToken("again");
  const CliResult r = Run({"presence", "--room", "lobby"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_THAT(r.err, HasSubstr("INTERNAL"));
  EXPECT_EQ(fake_->calls(Rpc::kRoomMembers), 2);
}

// --- history ---

class StatesidectlHistoryTest : public StatesidectlRealtimeTest {
 protected:
  void SetUp() override {
    StatesidectlRealtimeTest::SetUp();
    v1::HistoryResponse response;
    *response.add_events() = RoomDelivery("lobby", 4, "chat", "four", {}).delivery();
    *response.add_events() = RoomDelivery("lobby", 5, "chat", "five", {}).delivery();
    response.set_complete(false);
    response.set_first_sequence(4);
    response.set_last_sequence(9);
    response.set_more(true);
    fake_->SetHistory(response);
  }
};

TEST_F(StatesidectlHistoryTest, HistoryPrintsEventsAndCompleteness) {
  const CliResult r = Run({"history", "--room", "lobby", "--after", "2", "--limit", "2"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_THAT(Lines(r.out),
              ElementsAre("room lobby #4 chat: four", "room lobby #5 chat: five",
                          "complete=no first_sequence=4 last_sequence=9 more=yes"));
  EXPECT_EQ(fake_->last_history().room(), "lobby");
  EXPECT_EQ(fake_->last_history().after_sequence(), 2u);
  EXPECT_EQ(fake_->last_history().limit(), 2);
}

TEST_F(StatesidectlHistoryTest, HistoryJson) {
  const CliResult r = Run({"history", "--json", "--room", "lobby"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  const json parsed = json::parse(r.out);
  EXPECT_EQ(parsed["room"], "lobby");
  ASSERT_EQ(parsed["events"].size(), 2u);
  EXPECT_EQ(parsed["events"][1]["sequence"], 5);
  EXPECT_EQ(parsed["events"][1]["payload"], "five");
  EXPECT_EQ(parsed["complete"], false);
  EXPECT_EQ(parsed["first_sequence"], 4);
  EXPECT_EQ(parsed["last_sequence"], 9);
  EXPECT_EQ(parsed["more"], true);
  EXPECT_EQ(fake_->last_history().after_sequence(), 0u);
  EXPECT_EQ(fake_->last_history().limit(), 0);
}

TEST_F(StatesidectlHistoryTest, HistoryBadArgumentsAreUsageErrors) {
  EXPECT_EQ(Run({"history"}).exit_status, 2);
  EXPECT_EQ(Run({"history", "--room", ""}).exit_status, 2);
  EXPECT_EQ(Run({"history", "--room", "lobby", "--after", "-1"}).exit_status, 2);
  EXPECT_EQ(Run({"history", "--room", "lobby", "--limit", "0"}).exit_status, 2);
  EXPECT_EQ(Run({"history", "--room", "lobby", "--limit", "1001"}).exit_status, 2);
  EXPECT_EQ(fake_->calls(Rpc::kHistory), 0);
}

// --- formatting helpers ---

TEST(RealtimeFormatTest, ConnectionArgumentsSplitAtTheFirstSlash) {
  EXPECT_EQ(cli::ParseConnectionArg("c1").value(), (ConnectionRef{"", "c1"}));
  EXPECT_EQ(cli::ParseConnectionArg("i1/c1").value(), (ConnectionRef{"i1", "c1"}));
  EXPECT_EQ(cli::ParseConnectionArg("i1/c/1").value(), (ConnectionRef{"i1", "c/1"}));
  for (const char* bad : {"", "/", "/c1", "i1/"}) {
    EXPECT_EQ(cli::ParseConnectionArg(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

// --resume's form: the sequence after the last '=', the target before it;
// printed back the same way (a resume gap names its point so).
TEST(RealtimeFormatTest, ResumePointsParseAndPrintTheSameForm) {
  for (const char* text : {"room:lobby=12", "room:a=b:c=0", "user:ann=18446744073709551615",
                           "conn:c1=3", "conn:i1/c/1=4", "all=7"}) {
    absl::StatusOr<StreamPosition> point = cli::ParseStreamPosition(text);
    ASSERT_TRUE(point.ok()) << text << ": " << point.status();
    EXPECT_EQ(cli::FormatStreamPosition(*point), text);
  }
  EXPECT_EQ(cli::ParseStreamPosition("room:a=b:c=0")->target.name, "a=b:c");
  EXPECT_EQ(cli::ParseStreamPosition("conn:i1/c/1=4")->target.connection,
            (ConnectionRef{"i1", "c/1"}));
  for (const char* bad : {"", "all", "all=", "all=x", "all=+1", "user:ann=-1", "user:=1",
                          "users:ann=1", "ann=1", "conn:i1/=1", "room:r=99999999999999999999"}) {
    EXPECT_EQ(cli::ParseStreamPosition(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  Gap gap;
  gap.reason = Gap::Reason::kResumeIncomplete;
  gap.resume = cli::ParseStreamPosition("user:ann=3").value();
  gap.first_sequence = 9;
  EXPECT_EQ(cli::FormatEvent(RealtimeEvent(gap)),
            "gap resume-incomplete dropped=0 resume=user:ann=3 first_sequence=9");
  const cli::Json json = cli::EventToJson(RealtimeEvent(gap));
  EXPECT_EQ(json["resume"], "user:ann=3");
  EXPECT_EQ(json["first_sequence"], 9);
}

TEST(RealtimeFormatTest, DeliveryLinesShowWhatIsThere) {
  Delivery all;
  all.target = Target::kAll;
  EXPECT_EQ(cli::FormatDelivery(all), "all:");
  all.event = "ping";
  all.payload = "{\"a\":1}";
  EXPECT_EQ(cli::FormatDelivery(all), "all ping: {\"a\":1}");
  Delivery user;
  user.target = Target::kUser;
  user.to = "alice";
  user.payload = "héllo";
  EXPECT_EQ(cli::FormatDelivery(user), "user alice: héllo");
}

}  // namespace
}  // namespace stateside

// radar-app's WebSocket contract: hello, join/leave with acks,
// room and user-targeted messages, errors, the upgrade without a session and
// the bound on a client that does not read. Against a real sidecar and a
// real radar-app process shared by the suite (RadarAppTest).
#include <poll.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/app/app_pod.h"
#include "stateside/client.h"
#include "tests/integration/app/shared_pod_test.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

TEST_F(RadarAppTest, BroadcastReachesSocketsJoinedToTheRoomOnly) {
  const std::string alice = UniqueUser("caster");
  const auto cookie = LoginAs(alice);
  const std::string room = UniqueUser("room");
  const std::string other_room = UniqueUser("other");
  json hello;
  auto member = OpenSocket(cookie, &hello);
  auto outsider = OpenSocket(LoginAs(UniqueUser("outsider")));
  // Another socket of alice's, in both rooms for the whole test: /broadcast
  // into a room needs one of the caller's connections in it.
  auto speaker = OpenSocket(LoginAs(alice));
  ASSERT_NE(member, nullptr);
  ASSERT_NE(outsider, nullptr);
  ASSERT_NE(speaker, nullptr);
  Join(*speaker, room);
  Join(*speaker, other_room);
  EXPECT_EQ(hello["instance"], pod().instance());
  EXPECT_EQ(hello["user"], alice);
  EXPECT_FALSE(hello.value("conn", "").empty());
  Join(*member, room);
  Join(*outsider, other_room);

  HttpResponse response =
      Call("POST", "/broadcast", json{{"room", room}, {"msg", "hello room"}}.dump(), {cookie});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_GE(Body(response)["instances"].get<int>(), 1);
  EXPECT_EQ(Body(response)["sequence"], 1);
  auto got = member->ReadUntil("hello room", absl::Seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  json event = json::parse(*got);
  EXPECT_EQ(event["event"], "message");
  EXPECT_EQ(event["room"], room);
  EXPECT_EQ(event["msg"], "hello room");
  EXPECT_EQ(event["from"], alice);
  EXPECT_EQ(event["instance"], pod().instance());

  // The outsider's next message is its own room's, not the first room's.
  ASSERT_EQ(Call("POST", "/broadcast", json{{"room", other_room}, {"msg", "elsewhere"}}.dump(),
                 {cookie}).status,
            200);
  auto next = outsider->Read(absl::Seconds(10));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(json::parse(next->text)["msg"], "elsewhere");

  // After leaving, the room's messages stop.
  ASSERT_TRUE(member->Send(json{{"leave", room}}.dump()).ok());
  auto left = member->ReadUntil("\"left\"");
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(json::parse(*left), (json{{"left", room}}));
  ASSERT_EQ(Call("POST", "/broadcast", json{{"room", room}, {"msg", "gone"}}.dump(), {cookie})
                .status,
            200);
  ASSERT_EQ(Call("POST", "/broadcast", json{{"user", alice}, {"msg", "marker"}}.dump(), {cookie})
                .status,
            200);
  auto after = member->Read(absl::Seconds(10));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(json::parse(after->text)["msg"], "marker");
}


TEST_F(RadarAppTest, BroadcastIntoARoomNeedsOneOfTheCallersConnectionsInIt) {
  const std::string mallory = UniqueUser("mallory");
  const auto cookie = LoginAs(mallory);
  const std::string room = UniqueUser("guarded");
  const std::string body = json{{"room", room}, {"msg", "spam"}}.dump();
  auto member = OpenSocket(LoginAs(UniqueUser("member")));
  ASSERT_NE(member, nullptr);
  Join(*member, room);

  // No socket at all, then a socket in another room: 403, nothing published.
  HttpResponse refused = Call("POST", "/broadcast", body, {cookie});
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_THAT(Body(refused).value("error", ""), HasSubstr("join the room"));
  auto socket = OpenSocket(cookie);
  ASSERT_NE(socket, nullptr);
  Join(*socket, UniqueUser("elsewhere"));
  EXPECT_EQ(Call("POST", "/broadcast", body, {cookie}).status, 403);

  // Joined: the broadcast goes out, and it is the room's first event.
  Join(*socket, room);
  HttpResponse sent = Call("POST", "/broadcast", json{{"room", room}, {"msg", "hi"}}.dump(), {cookie});
  ASSERT_EQ(sent.status, 200) << sent.body;
  EXPECT_EQ(Body(sent)["sequence"], 1) << "the refused broadcasts were never published";
  auto got = member->Read(absl::Seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(json::parse(got->text)["msg"], "hi");

  // Left again: refused again.
  ASSERT_TRUE(socket->Send(json{{"leave", room}}.dump()).ok());
  ASSERT_TRUE(socket->ReadUntil("\"left\"").ok());
  EXPECT_EQ(Call("POST", "/broadcast", body, {cookie}).status, 403);
}

TEST_F(RadarAppTest, UserTargetedMessageReachesEveryConnectionOfTheUser) {
  const std::string bob = UniqueUser("bob");
  const auto bob_cookie = LoginAs(bob);
  auto first = OpenSocket(bob_cookie);
  auto second = OpenSocket(LoginAs(bob));  // another session of bob's
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  const std::string alice = UniqueUser("alice");
  HttpResponse response = Call("POST", "/broadcast", json{{"user", bob}, {"msg", "psst"}}.dump(),
                               {LoginAs(alice)});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(Body(response)["sequence"], 1);  // the first of bob's stream
  for (WebSocketClient* ws : {first.get(), second.get()}) {
    auto got = ws->ReadUntil("psst", absl::Seconds(10));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(json::parse(*got),
              (json{{"event", "message"}, {"user", bob}, {"msg", "psst"}, {"from", alice},
                    {"instance", pod().instance()}, {"sequence", 1}}));
  }
}


// The socket's sidecar calls run one at a time on the client's Async forms:
// joins and leaves sent back to back apply (and are answered) in order, and
// the unregister of a socket closed with a join still running goes after it.
TEST_F(RadarAppTest, PipelinedJoinsAndLeavesApplyInOrderAndTheCloseUnregistersLast) {
  const std::string user = UniqueUser("pipeliner");
  json hello;
  auto ws = OpenSocket(LoginAs(user), &hello);
  ASSERT_NE(ws, nullptr);
  const std::string conn_id = hello.value("conn", "");
  const std::string a = UniqueUser("room-a");
  const std::string b = UniqueUser("room-b");
  const std::vector<json> sent = {json{{"join", a}}, json{{"leave", a}}, json{{"join", b}},
                                  json{{"leave", b}}, json{{"join", a}}};
  for (const json& message : sent) ASSERT_TRUE(ws->Send(message.dump()).ok());
  for (const json& message : sent) {
    auto ack = ws->Read(absl::Seconds(10));
    ASSERT_TRUE(ack.ok()) << ack.status();
    const bool join = message.contains("join");
    EXPECT_EQ(json::parse(ack->text, nullptr, false),
              (json{{join ? "joined" : "left", message[join ? "join" : "leave"]}}));
  }
  ClientOptions options;
  options.socket_path = pod().socket_path();
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  const auto members = [&](const std::string& room) {
    auto page = (*client)->RoomMembers(room);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->members : std::vector<ConnectionRef>{};
  };
  ASSERT_EQ(members(a).size(), 1u);
  EXPECT_EQ(members(a)[0].conn_id, conn_id);
  EXPECT_TRUE(members(b).empty());

  // A join, and the close right behind it: the join is answered first (the
  // close frame is read after its answer), the unregister comes last and
  // leaves no membership behind.
  ASSERT_TRUE(ws->Send(json{{"join", b}}.dump()).ok());
  ws.reset();
  EXPECT_TRUE(WaitFor([&] {
    auto mine = (*client)->UserConnections(user);
    return mine.ok() && mine->empty() && members(a).empty() && members(b).empty();
  })) << "the closed socket is still registered or in a room";
}

TEST_F(RadarAppTest, BadWebSocketMessagesAreAnsweredWithAnError) {
  auto ws = OpenSocket(LoginAs(UniqueUser("chatty")));
  ASSERT_NE(ws, nullptr);
  for (const std::string text : {"not json", "[1]", R"({"join":5})", R"({"join":""})",
                                 R"({"dance":"room"})", R"({"join":"has space"})"}) {
    ASSERT_TRUE(ws->Send(text).ok());
    auto reply = ws->Read(absl::Seconds(10));
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_FALSE(reply->closed) << text;
    EXPECT_EQ(json::parse(reply->text)["event"], "error") << text << " → " << reply->text;
  }
  Join(*ws, "still-works");
}


TEST_F(RadarAppTest, WebSocketUpgradeWithoutASessionIs401) {
  const Headers upgrade = {{"Connection", "Upgrade"},
                           {"Upgrade", "websocket"},
                           {"Sec-WebSocket-Version", "13"},
                           {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}};
  for (const Headers& cookie :
       {Headers{}, Headers{{"Cookie", std::string(kCookieName) + "=forged.value"}}}) {
    // The refusal as HTTP (Beast 1.74's synchronous client handshake does
    // not hand back a refused response, so WebSocketClient cannot show it).
    Headers headers = upgrade;
    headers.insert(headers.end(), cookie.begin(), cookie.end());
    HttpResponse response = Call("GET", "/ws", "", headers);
    EXPECT_EQ(response.status, 401);
    EXPECT_EQ(Body(response), (json{{"error", "no valid session"}}));
    EXPECT_EQ(response.Header("X-Instance-Id"), pod().instance());
    // And as a WebSocket client sees it: no connection.
    auto ws = WebSocketClient::Connect(pod().port(), "/ws", cookie);
    ASSERT_FALSE(ws.ok());
    EXPECT_EQ(ws.status().code(), absl::StatusCode::kFailedPrecondition) << ws.status();
  }
  // A plain GET /ws (no upgrade) is not a WebSocket either.
  EXPECT_EQ(Call("GET", "/ws").status, 426);
}


TEST_F(RadarAppTest, AClientThatStopsReadingIsClosedWithoutGrowingMemory) {
  const std::string user = UniqueUser("sleeper");
  const auto cookie = LoginAs(user);
  // A WebSocket opened by hand that never reads after the handshake.
  const int fd = RawConnect(pod().port(),
                            "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                            "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Cookie: " + cookie.second + "\r\n\r\n");
  ASSERT_GE(fd, 0);
  ASSERT_THAT(RawRead(fd, absl::Seconds(10), "\r\n\r\n"),
              ::testing::StartsWith("HTTP/1.1 101"));
  // Messages to the user pile up (kernel buffers first, then the app's
  // bounded queue) until the app gives up on the connection.
  const std::string msg(15000, 'm');
  const std::string body = json{{"user", user}, {"msg", msg}}.dump();
  bool gave_up = false;
  for (int i = 1; i <= 3000 && !gave_up; ++i) {
    auto response = pod().Call("POST", "/broadcast", body, {cookie});
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->status, 200) << response->body;
    // The log grows; reading it now and then is enough.
    if (i % 25 == 0) gave_up = absl::StrContains(pod().app().ReadLog(), "client not reading");
  }
  ASSERT_TRUE(gave_up) << "the app kept queueing for a client that does not read";
  // And the connection ends: what was already in flight, then EOF.
  bool eof = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  char buf[65536];
  while (!eof && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    eof = read(fd, buf, sizeof(buf)) <= 0;
  }
  EXPECT_TRUE(eof) << "the connection stayed open";
  close(fd);
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

}  // namespace
}  // namespace stateside::testing

// statesidectl's realtime recovery and cluster-wide options (the real binary)
// against a real sidecar, on the memory store and on a real redis-server:
// `subscribe --resume` replays what each named stream logged after its
// sequence, `connections join|leave|disconnect` act on the connections a
// target selects, and bad input is a usage error (exit 2) naming what is
// wrong.
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/sidecar_process.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using testing::RunResult;

enum class Backend { kMemory, kRedis };

class StatesidectlRealtimeSidecarTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    testing::SidecarProcessOptions options;
    options.socket_path = dir_.File("api.sock");
    options.log_path = dir_.File("sidecar.log");
    auto started = testing::StartBackendSidecar(GetParam() == Backend::kRedis, std::move(options));
    ASSERT_TRUE(started.ok()) << started.status();
    backend_ = std::make_unique<testing::BackendSidecar>(*std::move(started));
  }

  void TearDown() override {
    if (backend_ != nullptr) testing::StopSidecar(backend_->sidecar.process, absl::Seconds(10));
  }

  std::vector<std::string> Argv(std::vector<std::string> args) {
    args.insert(args.begin(),
                {testing::BinPath("statesidectl"), "--socket", dir_.File("api.sock")});
    return args;
  }

  // statesidectl --socket <sidecar> args...
  RunResult Ctl(std::vector<std::string> args) {
    return testing::Run(Argv(std::move(args)), {}, absl::Seconds(30));
  }

  // The connections `presence` lists (INSTANCE/CONN).
  std::vector<std::string> Presence(const std::string& option, const std::string& name) {
    const RunResult r = Ctl({"--json", "presence", option, name});
    EXPECT_EQ(r.exit_status, 0) << r.err;
    std::vector<std::string> out;
    if (r.exit_status != 0) return out;
    const nlohmann::json answer = nlohmann::json::parse(r.out);
    for (const auto& c : answer["connections"]) {
      out.push_back(absl::StrCat(c["instance"].get<std::string>(), "/",
                                 c["conn"].get<std::string>()));
    }
    return out;
  }

  std::string SidecarLog() const { return backend_->sidecar.process.ReadLog(); }

  testing::TempDir dir_;
  std::unique_ptr<testing::BackendSidecar> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StatesidectlRealtimeSidecarTest,
                         ::testing::Values(Backend::kMemory, Backend::kRedis),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kMemory ? "Memory" : "Redis";
                         });

// "<payload>@<sequence>" of each JSON delivery line.
std::vector<std::string> Deliveries(const std::string& out) {
  std::vector<std::string> got;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    const auto json = nlohmann::json::parse(line);
    if (json["kind"] != "delivery") continue;
    got.push_back(
        absl::StrCat(json["payload"].get<std::string>(), "@", json["sequence"].get<uint64_t>()));
  }
  return got;
}

TEST_P(StatesidectlRealtimeSidecarTest, SubscribeResumesAfterTheSequenceOfEachStream) {
  for (const char* payload : {"u1", "u2", "u3"}) {
    const RunResult r = Ctl({"publish", "--user", "ann", "--event", "e", payload});
    ASSERT_EQ(r.exit_status, 0) << r.err << SidecarLog();
  }
  for (const char* payload : {"r1", "r2"}) {
    ASSERT_EQ(Ctl({"publish", "--room", "lobby", payload}).exit_status, 0);
  }
  // ann's stream after 1, the room's from its start; in the order given.
  const RunResult resumed =
      Ctl({"--json", "subscribe", "--conn", "tab", "--user", "ann", "--room", "lobby",
           "--resume", "user:ann=1", "--resume", "room:lobby=0", "--count", "4"});
  ASSERT_EQ(resumed.exit_status, 0) << resumed.err << SidecarLog();
  EXPECT_THAT(Deliveries(resumed.out), ::testing::ElementsAre("u2@2", "u3@3", "r1@1", "r2@2"));

  // Text, streams that are up to date: nothing replayed, the next event
  // is the first line (published before the stream opened or after, it is
  // after the resume point).
  testing::SubprocessOptions options;
  options.argv = Argv({"subscribe", "--conn", "tab", "--user", "ann", "--resume", "user:ann=3",
                       "--resume", "conn:tab=0", "--resume", "all=0", "--count", "1"});
  options.log_path = dir_.File("up-to-date.log");
  auto stream = testing::Subprocess::Start(options);
  ASSERT_TRUE(stream.ok()) << stream.status();
  ASSERT_EQ(Ctl({"publish", "--user", "ann", "--event", "e", "u4"}).exit_status, 0);
  EXPECT_EQ(stream->Wait(absl::Seconds(20)), 0) << stream->ReadLog() << SidecarLog();
  EXPECT_EQ(stream->ReadLog(), "user ann #4 e: u4\n");
}

TEST_P(StatesidectlRealtimeSidecarTest, BadResumePointsAreUsageErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bogus:x=1", "unknown target 'bogus'"},
      {"rooms=1", "unknown target 'rooms'"},
      {"user:ann=abc", "sequence 'abc' is not a number"},
      {"user:ann=-1", "sequence '-1' is not a number"},
      {"user:ann=18446744073709551616",
       "sequence '18446744073709551616' is not a number from 0 to 2^64-1"},
      {"user:ann", "no '=N' sequence"},
      {"room:=3", "empty room"},
      {"conn:/c=1", "expected CONN or INSTANCE/CONN: empty instance id"},
  };
  for (const auto& [text, message] : cases) {
    const RunResult r = Ctl({"subscribe", "--resume", text});
    EXPECT_EQ(r.exit_status, 2) << text << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat("--resume '", text, "': ", message))) << text;
  }
}

TEST_P(StatesidectlRealtimeSidecarTest, ConnectionsJoinLeaveAndDisconnectClusterWide) {
  testing::SubprocessOptions options;
  options.argv = Argv({"--json", "subscribe", "--conn", "tab", "--user", "ann"});
  options.log_path = dir_.File("subscribe.log");
  auto stream = testing::Subprocess::Start(options);
  ASSERT_TRUE(stream.ok()) << stream.status();
  ASSERT_TRUE(testing::WaitFor([&] { return Presence("--user", "ann").size() == 1; }))
      << stream->ReadLog() << SidecarLog();
  const std::string tab = Presence("--user", "ann").at(0);

  RunResult r = Ctl({"connections", "join", "--user", "ann", "lobby", "news"});
  ASSERT_EQ(r.exit_status, 0) << r.err << SidecarLog();
  EXPECT_EQ(r.out, "sent to 1 instance(s)\n");
  ASSERT_TRUE(testing::WaitFor([&] {
    return Presence("--room", "lobby") == std::vector<std::string>{tab} &&
           Presence("--room", "news") == std::vector<std::string>{tab};
  })) << SidecarLog();

  r = Ctl({"--json", "connections", "leave", "--room", "lobby", "news"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["instances"], 1);
  ASSERT_TRUE(testing::WaitFor([&] { return Presence("--room", "news").empty(); }));
  EXPECT_EQ(Presence("--room", "lobby"), std::vector<std::string>{tab});

  // Excepted: nothing happens to it. An event published to it afterwards
  // (it reaches the instance after the disconnect would have) is the first
  // thing the stream prints, and it is still registered.
  const auto lines = [&]() -> std::vector<std::string> {
    return absl::StrSplit(stream->ReadLog(), '\n', absl::SkipEmpty());
  };
  ASSERT_EQ(Ctl({"connections", "disconnect", "--all", "--except", tab}).exit_status, 0);
  ASSERT_EQ(Ctl({"publish", "--conn", "tab", "after-except"}).exit_status, 0);
  ASSERT_TRUE(testing::WaitFor([&] { return !stream->ReadLog().empty(); })) << SidecarLog();
  std::vector<std::string> printed = lines();
  ASSERT_EQ(printed.size(), 1u) << stream->ReadLog();
  EXPECT_EQ(nlohmann::json::parse(printed[0])["payload"], "after-except") << printed[0];
  EXPECT_EQ(Presence("--user", "ann"), std::vector<std::string>{tab});

  ASSERT_EQ(Ctl({"connections", "disconnect", "--conn", "tab"}).exit_status, 0);
  ASSERT_TRUE(testing::WaitFor([&] { return lines().size() == 2; })) << SidecarLog();
  printed = lines();
  const auto line = nlohmann::json::parse(printed[1]);
  EXPECT_EQ(line["kind"], "disconnect");
  EXPECT_EQ(line["conn_ids"], nlohmann::json::array({"tab"}));
  EXPECT_TRUE(Presence("--user", "ann").empty());
  stream->Signal(SIGINT);
  EXPECT_EQ(stream->Wait(absl::Seconds(10)), 0);
}

// `args` followed by `count` values made of `value` and 0, 1, …, each after
// `option` unless it is empty.
std::vector<std::string> Repeated(std::vector<std::string> args, const std::string& option,
                                  const std::string& value, int count) {
  for (int i = 0; i < count; ++i) {
    if (!option.empty()) args.push_back(option);
    args.push_back(absl::StrCat(value, i));
  }
  return args;
}

TEST_P(StatesidectlRealtimeSidecarTest, BadConnectionsOperationsAreUsageErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"connections"}, "A subcommand is required"},
      {{"connections", "join", "lobby"}, "connections join: give exactly one of"},
      {{"connections", "leave", "--user", "ann", "--room", "r", "lobby"},
       "connections leave: give exactly one of"},
      {{"connections", "join", "--user", "ann"}, "rooms is required"},
      {{"connections", "disconnect", "--conn", "pod/"}, "--conn 'pod/'"},
      {{"connections", "disconnect", "--user", ""}, "--user: empty"},
      {{"connections", "disconnect", "--all", "--except", "/c"}, "--except '/c'"},
      {Repeated({"connections", "join", "--all"}, "", "r", 257), "ROOM: at most 256, got 257"},
      {{"subscribe", "--resume", "user:ann=1", "--resume", "room:r=2", "--resume", "user:ann=3"},
       "--resume 'user:ann=3': that stream is given twice"},
      {Repeated({"subscribe"}, "--resume", "user:u=", 257), "--resume: at most 256, got 257"},
      {Repeated({"subscribe", "--conn", "c"}, "--room", "r", 257),
       "--room: at most 256, got 257"},
  };
  for (const auto& [args, message] : cases) {
    const RunResult r = Ctl(args);
    EXPECT_EQ(r.exit_status, 2) << ::testing::PrintToString(args) << r.err;
    EXPECT_THAT(r.err, HasSubstr(message)) << ::testing::PrintToString(args);
  }
  // A room realtime refuses: the sidecar's INVALID_ARGUMENT, exit 1.
  const RunResult refused = Ctl({"connections", "join", "--all", "no spaces"});
  EXPECT_EQ(refused.exit_status, 1) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("INVALID_ARGUMENT"));
}

}  // namespace
}  // namespace stateside

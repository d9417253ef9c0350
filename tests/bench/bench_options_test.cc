#include "tests/bench/bench_options.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stateside::bench {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<ParsedCommandLine> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "stateside-bench");
  return ParseBenchOptions(args);
}

TEST(BenchOptionsTest, DefaultsNeedOnlySocketAndOp) {
  auto parsed = Parse({"--socket", "/tmp/s.sock", "--op", "ping"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->options.has_value());
  const BenchOptions& o = *parsed->options;
  EXPECT_EQ(o.socket_path, "/tmp/s.sock");
  EXPECT_EQ(o.op, Op::kPing);
  EXPECT_EQ(o.transport, TransportKind::kUnary);
  EXPECT_EQ(o.inflight, 1u);
  EXPECT_EQ(o.channels, 1u);
  EXPECT_EQ(o.size_bytes, 1024u);
  EXPECT_EQ(o.duration, absl::Seconds(10));
  EXPECT_EQ(o.warmup, absl::Seconds(1));
  EXPECT_FALSE(o.json);
  EXPECT_FALSE(o.server_pid.has_value());
}

TEST(BenchOptionsTest, ParsesEveryFlag) {
  auto parsed = Parse({"--socket", "/s", "--op", "session-get", "--inflight",
                       "64", "--duration", "2.5", "--size", "4096", "--json",
                       "--session", "abc.def", "--channels", "4", "--warmup",
                       "0", "--transport", "stream", "--server-pid", "42"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const BenchOptions& o = *parsed->options;
  EXPECT_EQ(o.op, Op::kSessionGet);
  EXPECT_EQ(o.inflight, 64u);
  EXPECT_EQ(o.duration, absl::Milliseconds(2500));
  EXPECT_EQ(o.size_bytes, 4096u);
  EXPECT_TRUE(o.json);
  EXPECT_EQ(o.session, "abc.def");
  EXPECT_EQ(o.channels, 4u);
  EXPECT_EQ(o.warmup, absl::ZeroDuration());
  EXPECT_EQ(o.transport, TransportKind::kStream);
  EXPECT_EQ(o.server_pid, 42);
}

// --socket then names the frame socket itself; only the ops it carries.
TEST(BenchOptionsTest, FramesTransportTakesTheSessionOpsOnly) {
  for (const char* op : {"session-get", "session-update"}) {
    auto parsed = Parse({"--socket", "/tmp/s.sock.frames", "--op", op, "--transport", "frames",
                         "--channels", "2"});
    ASSERT_TRUE(parsed.ok()) << op << ": " << parsed.status();
    EXPECT_EQ(parsed->options->transport, TransportKind::kFrames);
    EXPECT_EQ(parsed->options->socket_path, "/tmp/s.sock.frames");
    EXPECT_EQ(parsed->options->channels, 2u);
    EXPECT_STREQ(TransportName(parsed->options->transport), "frames");
  }
  for (const char* op : {"ping", "session-create", "optout-get"}) {
    auto parsed = Parse({"--socket", "/s", "--op", op, "--transport", "frames"});
    ASSERT_FALSE(parsed.ok()) << op;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("--transport frames"));
  }
  auto help = Parse({"--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_THAT(help->help, HasSubstr("frames (the frame socket's protocol"));
}

TEST(BenchOptionsTest, EmptyCallsRunOnThePipeStreamAndTheFrameSocketOnly) {
  for (const char* transport : {"stream", "frames"}) {
    auto parsed = Parse({"--socket", "/s", "--op", "empty", "--transport", transport});
    ASSERT_TRUE(parsed.ok()) << transport << ": " << parsed.status();
    EXPECT_EQ(parsed->options->op, Op::kEmpty);
    EXPECT_STREQ(OpName(Op::kEmpty), "empty");
    EXPECT_FALSE(OpUsesSession(Op::kEmpty));
  }
  for (const char* transport : {"unary", "client-stream", "client-unary", "client-frames"}) {
    auto parsed = Parse({"--socket", "/s", "--op", "empty", "--transport", transport});
    ASSERT_FALSE(parsed.ok()) << transport;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()),
                HasSubstr(std::string("--op empty: only on --transport stream or frames")));
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(transport));
  }
  // No session behind it: --session is refused as for the other non-session ops.
  auto with_session =
      Parse({"--socket", "/s", "--op", "empty", "--transport", "stream", "--session", "x"});
  EXPECT_FALSE(with_session.ok());
}

TEST(BenchOptionsTest, EveryOpNameRoundTrips) {
  for (Op op : {Op::kPing, Op::kSessionGet, Op::kSessionUpdate,
                Op::kSessionCreate, Op::kOptOutGet}) {
    auto parsed = Parse({"--socket", "/s", "--op", std::string(OpName(op))});
    ASSERT_TRUE(parsed.ok()) << OpName(op);
    EXPECT_EQ(parsed->options->op, op);
  }
  EXPECT_STREQ(OpRpc(Op::kPing), "grpc.health.v1.Health/Check");
}

TEST(BenchOptionsTest, HelpIsNotAnError) {
  auto parsed = Parse({"--help"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->options.has_value());
  EXPECT_THAT(parsed->help, HasSubstr("--inflight"));
}

TEST(BenchOptionsTest, CpuOfTakesNamedGroupsOfPids) {
  auto parsed = Parse({"--socket", "/s", "--op", "ping", "--cpu-of", "masters=11,12,13",
                       "--cpu-of", "replicas=14"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const BenchOptions& o = *parsed->options;
  ASSERT_EQ(o.cpu_of.size(), 2u);
  EXPECT_EQ(o.cpu_of[0].name, "masters");
  EXPECT_EQ(o.cpu_of[0].pids, (std::vector<pid_t>{11, 12, 13}));
  EXPECT_EQ(o.cpu_of[1].name, "replicas");
  EXPECT_EQ(o.cpu_of[1].pids, (std::vector<pid_t>{14}));
}

TEST(BenchOptionsTest, BadUsageNamesTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--op", "ping"}, "--socket"},
      {{"--socket", "/s"}, "--op"},
      {{"--socket", "/s", "--op", "nope"}, "--op"},
      {{"--socket", "/s", "--op", "ping", "--inflight", "0"}, "--inflight"},
      {{"--socket", "/s", "--op", "ping", "--inflight", "x"}, "--inflight"},
      {{"--socket", "/s", "--op", "ping", "--duration", "0"}, "--duration"},
      {{"--socket", "/s", "--op", "ping", "--duration", "-1"}, "--duration"},
      {{"--socket", "/s", "--op", "ping", "--warmup", "nan"}, "--warmup"},
      {{"--socket", "/s", "--op", "ping", "--channels", "0"}, "--channels"},
      {{"--socket", "/s", "--op", "ping", "--size", "-5"}, "--size"},
      {{"--socket", "/s", "--op", "ping", "--transport", "tcp"}, "--transport"},
      {{"--socket", "/s", "--op", "ping", "--session", "x"}, "--session"},
      {{"--socket", "/s", "--op", "ping", "--server-pid", "0"}, "--server-pid"},
      {{"--socket", "/s", "--op", "ping", "--cpu-of", "redis"}, "--cpu-of"},
      {{"--socket", "/s", "--op", "ping", "--cpu-of", "=1"}, "--cpu-of"},
      {{"--socket", "/s", "--op", "ping", "--cpu-of", "redis=1,x"}, "--cpu-of"},
      {{"--socket", "/s", "--op", "ping", "--cpu-of", "redis=0"}, "--cpu-of"},
      {{"--socket", std::string(200, 'x'), "--op", "ping"}, "--socket"},
      {{"--socket", "/s", "--op", "ping", "extra"}, "extra"},
  };
  for (const auto& [args, flag] : cases) {
    auto parsed = Parse(args);
    ASSERT_FALSE(parsed.ok()) << flag;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(flag));
  }
}

}  // namespace
}  // namespace stateside::bench

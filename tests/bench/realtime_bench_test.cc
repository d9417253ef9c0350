#include "tests/bench/realtime_bench.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace stateside::bench {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<ParsedCommandLine> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "stateside-bench");
  return ParseBenchOptions(args);
}

// `base` (flag, value pairs) with the flags of `more` replacing the same
// flags of `base` (CLI11 refuses a flag given twice).
std::vector<std::string> Args(std::vector<std::pair<std::string, std::string>> base,
                              const std::vector<std::string>& more) {
  std::vector<std::string> args;
  for (const auto& [flag, value] : base) {
    bool replaced = false;
    for (const std::string& m : more) replaced = replaced || m == flag;
    if (!replaced) {
      args.push_back(flag);
      args.push_back(value);
    }
  }
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::vector<std::string> XInstance(const std::vector<std::string>& more = {}) {
  return Args({{"--socket", "/a.sock"},
               {"--op", "realtime-xinstance"},
               {"--publish-socket", "/b.sock"},
               {"--rate", "1000"}},
              more);
}

std::vector<std::string> Fanout(const std::vector<std::string>& more = {}) {
  return Args({{"--socket", "/a.sock"}, {"--op", "realtime-fanout"}, {"--rate", "500"}}, more);
}

TEST(RealtimeOptionsTest, CrossInstanceParsesEveryFlag) {
  auto parsed = Parse(XInstance({"--size", "256", "--connections", "3", "--duration", "5",
                                 "--server-pid", "41", "--publish-server-pid", "42", "--json"}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const BenchOptions& o = *parsed->options;
  EXPECT_EQ(o.op, Op::kRealtimeXInstance);
  EXPECT_TRUE(OpIsRealtime(o.op));
  EXPECT_EQ(o.socket_path, "/a.sock");
  EXPECT_EQ(o.publish_socket, "/b.sock");
  EXPECT_EQ(o.rate, 1000);
  EXPECT_EQ(o.size_bytes, 256u);
  EXPECT_EQ(o.connections, 3u);
  EXPECT_EQ(o.duration, absl::Seconds(5));
  EXPECT_EQ(o.server_pid, 41);
  EXPECT_EQ(o.publish_server_pid, 42);
  EXPECT_TRUE(o.json);
}

TEST(RealtimeOptionsTest, FanoutNeedsOnlySocketAndRate) {
  auto parsed = Parse(Fanout({"--connections", "1000", "--rate", "2.5"}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const BenchOptions& o = *parsed->options;
  EXPECT_EQ(o.op, Op::kRealtimeFanout);
  EXPECT_EQ(o.rate, 2.5);
  EXPECT_EQ(o.connections, 1000u);
  EXPECT_EQ(o.size_bytes, 1024u);
  EXPECT_TRUE(o.publish_socket.empty());
  EXPECT_FALSE(o.publish_server_pid.has_value());
}

TEST(RealtimeOptionsTest, ClosedLoopOpsAreUnchanged) {
  auto parsed = Parse({"--socket", "/s", "--op", "session-get", "--inflight", "8"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(OpIsRealtime(parsed->options->op));
  EXPECT_EQ(parsed->options->inflight, 8u);
  EXPECT_EQ(parsed->options->rate, 0);
}

TEST(RealtimeOptionsTest, HelpListsTheRealtimeFlags) {
  auto parsed = Parse({"--help"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_THAT(parsed->help, HasSubstr("--publish-socket"));
  EXPECT_THAT(parsed->help, HasSubstr("realtime-fanout"));
}

TEST(RealtimeOptionsTest, BadUsageNamesTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--socket", "/a", "--op", "realtime-xinstance", "--rate", "10"}, "--publish-socket"},
      {{"--socket", "/a", "--op", "realtime-fanout"}, "--rate"},
      {Fanout({"--rate", "0"}), "--rate"},
      {Fanout({"--rate", "-5"}), "--rate"},
      {Fanout({"--rate", "nan"}), "--rate"},
      {Fanout({"--rate", "inf"}), "--rate"},
      {Fanout({"--rate", "2000000"}), "--rate"},
      {Fanout({"--rate", "fast"}), "--rate"},
      {Fanout({"--rate", "500000", "--duration", "100"}), "--rate"},
      {Fanout({"--connections", "0"}), "--connections"},
      {Fanout({"--connections", "100001"}), "--connections"},
      {Fanout({"--size", "23"}), "--size"},
      {Fanout({"--size", "65537"}), "--size"},
      {Fanout({"--inflight", "4"}), "--inflight"},
      {Fanout({"--channels", "2"}), "--channels"},
      {Fanout({"--transport", "stream"}), "--transport"},
      {Fanout({"--publish-socket", "/b"}), "--publish-socket"},
      {Fanout({"--publish-server-pid", "42"}), "--publish-server-pid"},
      {Fanout({"--session", "x"}), "--session"},
      {XInstance({"--publish-socket", "/a.sock"}), "--publish-socket"},
      {XInstance({"--publish-socket", std::string(200, 'x')}), "--publish-socket"},
      {XInstance({"--publish-server-pid", "0"}), "--publish-server-pid"},
      {{"--socket", "/s", "--op", "ping", "--rate", "10"}, "--rate"},
      {{"--socket", "/s", "--op", "session-get", "--connections", "2"}, "--connections"},
      {{"--socket", "/s", "--op", "ping", "--publish-socket", "/b"}, "--publish-socket"},
      {{"--socket", "/s", "--op", "ping", "--publish-server-pid", "3"}, "--publish-server-pid"},
  };
  for (const auto& [args, flag] : cases) {
    auto parsed = Parse(args);
    ASSERT_FALSE(parsed.ok()) << flag << " " << args.back();
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(flag)) << args.back();
  }
}

TEST(RealtimePayloadTest, StampRoundTripsAndFillerPadsToSize) {
  const PayloadStamp stamp{0x0123456789abcdefULL, 77, 1'700'000'000'123'456'789};
  const std::string payload = EncodeRealtimePayload(stamp, 40, "xy");
  ASSERT_EQ(payload.size(), 40u);
  EXPECT_EQ(payload.substr(kRealtimeHeaderBytes), "xyxyxyxyxyxyxyxy");
  auto decoded = DecodeRealtimePayload(payload);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->run_id, stamp.run_id);
  EXPECT_EQ(decoded->sequence, 77u);
  EXPECT_EQ(decoded->sent_ns, stamp.sent_ns);
}

TEST(RealtimePayloadTest, NeverShorterThanTheHeaderAndShortOnesDoNotDecode) {
  EXPECT_EQ(EncodeRealtimePayload({1, 2, 3}, 3, "").size(), kRealtimeHeaderBytes);
  EXPECT_FALSE(DecodeRealtimePayload("").has_value());
  EXPECT_FALSE(DecodeRealtimePayload(std::string(kRealtimeHeaderBytes - 1, 'a')).has_value());
}

constexpr uint64_t kRun = 9;

// Publishes sequences [0, count): the first `warmup` unmeasured, sent at
// 1000 * i ns, each answered OK 50 ns later.
void PublishAll(RealtimeLedger& ledger, uint64_t count, uint64_t warmup) {
  for (uint64_t i = 0; i < count; ++i) {
    const int64_t sent = static_cast<int64_t>(1000 * i);
    ledger.OnSent(i, sent, i >= warmup);
    ledger.OnPublishDone(i, sent + 50, grpc::StatusCode::OK);
  }
}

void Receive(RealtimeLedger& ledger, uint64_t sequence, int64_t latency, size_t conns = 1) {
  const int64_t sent = static_cast<int64_t>(1000 * sequence);
  ledger.OnReceived({kRun, sequence, sent}, sent + latency, conns, latency / 2);
}

TEST(RealtimeLedgerTest, EveryEventDeliveredOnceHasNoLossAndExactLatencies) {
  RealtimeLedger ledger(/*connections=*/3);
  PublishAll(ledger, 10, /*warmup=*/4);
  for (uint64_t i = 0; i < 10; ++i) Receive(ledger, i, 100 + static_cast<int64_t>(i), 3);
  EXPECT_TRUE(ledger.AwaitAllReceived(absl::Now()));
  const RealtimeResult r = ledger.Tally();
  EXPECT_EQ(r.published, 6u);  // 4..9
  EXPECT_EQ(r.publish_errors, 0u);
  EXPECT_EQ(r.delivered, 6u);
  EXPECT_EQ(r.deliveries, 18u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.duplicates + r.out_of_order + r.short_deliveries + r.unknown, 0u);
  EXPECT_EQ(r.latency.count(), 6u);
  EXPECT_EQ(r.latency.min(), 104u);  // warm-up latencies (100..103) left out
  EXPECT_EQ(r.latency.max(), 109u);
  EXPECT_EQ(r.latency.Percentile(50), 106u);
  EXPECT_DOUBLE_EQ(r.latency.mean(), 106.5);
  EXPECT_EQ(r.publish_rpc.count(), 6u);
  EXPECT_EQ(r.publish_rpc.max(), 50u);
  EXPECT_EQ(r.from_sidecar.max(), 54u);
}

TEST(RealtimeLedgerTest, AMissingSequenceIsLostAndAwaited) {
  RealtimeLedger ledger(1);
  PublishAll(ledger, 5, 0);
  for (uint64_t i : {0, 1, 3, 4}) Receive(ledger, i, 10);
  EXPECT_FALSE(ledger.AwaitAllReceived(absl::Now() + absl::Milliseconds(1)));
  RealtimeResult r = ledger.Tally();
  EXPECT_EQ(r.delivered, 4u);
  EXPECT_EQ(r.lost, 1u);
  // Arriving late, it is no longer lost.
  Receive(ledger, 2, 5000);
  EXPECT_TRUE(ledger.AwaitAllReceived(absl::Now()));
  r = ledger.Tally();
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.out_of_order, 1u);
  EXPECT_EQ(r.latency.max(), 5000u);
}

TEST(RealtimeLedgerTest, AFailedPublishIsAnErrorByCodeNotALoss) {
  RealtimeLedger ledger(1);
  ledger.OnSent(0, 0, true);
  ledger.OnSent(1, 10, true);
  ledger.OnSent(2, 20, true);
  ledger.OnPublishDone(0, 5, grpc::StatusCode::UNAVAILABLE);
  ledger.OnPublishDone(1, 15, grpc::StatusCode::DEADLINE_EXCEEDED);
  ledger.OnPublishDone(2, 25, grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(ledger.AwaitAllReceived(absl::Now()));
  const RealtimeResult r = ledger.Tally();
  EXPECT_EQ(r.published, 3u);
  EXPECT_EQ(r.publish_errors, 3u);
  EXPECT_EQ(r.errors_by_code[grpc::StatusCode::UNAVAILABLE], 2u);
  EXPECT_EQ(r.errors_by_code[grpc::StatusCode::DEADLINE_EXCEEDED], 1u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_EQ(r.publish_rpc.count(), 0u);
}

TEST(RealtimeLedgerTest, ADeliveryMayOvertakeItsPublishReply) {
  RealtimeLedger ledger(1);
  ledger.OnSent(0, 0, true);
  EXPECT_FALSE(ledger.AwaitPublishesDone(absl::Now() + absl::Milliseconds(1)));
  ledger.OnReceived({kRun, 0, 0}, 70, 1, std::nullopt);
  EXPECT_FALSE(ledger.AwaitAllReceived(absl::Now() + absl::Milliseconds(1)));
  ledger.OnPublishDone(0, 90, grpc::StatusCode::OK);
  EXPECT_TRUE(ledger.AwaitPublishesDone(absl::Now()));
  EXPECT_TRUE(ledger.AwaitAllReceived(absl::Now()));
  const RealtimeResult r = ledger.Tally();
  EXPECT_EQ(r.delivered, 1u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.latency.max(), 70u);
  EXPECT_EQ(r.from_sidecar.count(), 0u);
}

TEST(RealtimeLedgerTest, CountsDuplicatesShortDeliveriesUnknownsAndGaps) {
  RealtimeLedger ledger(/*connections=*/100);
  PublishAll(ledger, 3, 0);
  Receive(ledger, 0, 10, 100);
  Receive(ledger, 0, 20, 100);  // a second copy
  Receive(ledger, 1, 10, 99);   // one connection short
  Receive(ledger, 2, 10, 100);
  Receive(ledger, 3, 10, 100);  // never published
  ledger.OnUnknown();
  ledger.OnGap(7);
  ledger.OnGap(2);
  const RealtimeResult r = ledger.Tally();
  EXPECT_EQ(r.delivered, 3u);
  EXPECT_EQ(r.deliveries, 299u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.short_deliveries, 1u);
  EXPECT_EQ(r.unknown, 2u);
  EXPECT_EQ(r.gaps, 2u);
  EXPECT_EQ(r.gap_dropped, 9u);
  EXPECT_EQ(r.latency.count(), 3u);  // the duplicate is not a second latency
}

TEST(RealtimeLedgerTest, SequencesOutOfOrderOrRepeatedAtSendAreIgnored) {
  RealtimeLedger ledger(1);
  ledger.OnSent(1, 0, true);  // 0 expected first
  ledger.OnSent(0, 0, true);
  ledger.OnSent(0, 0, true);  // twice
  ledger.OnPublishDone(0, 1, grpc::StatusCode::OK);
  ledger.OnPublishDone(0, 1, grpc::StatusCode::OK);
  ledger.OnPublishDone(5, 1, grpc::StatusCode::OK);
  EXPECT_TRUE(ledger.AwaitPublishesDone(absl::Now()));
  EXPECT_EQ(ledger.Tally().published, 1u);
}

BenchOptions FanoutOptions() {
  auto parsed = Parse(Fanout({"--connections", "100", "--server-pid", "7", "--size", "64"}));
  return *parsed->options;
}

RealtimeResult SampleResult() {
  RealtimeLedger ledger(100);
  PublishAll(ledger, 2000, 0);
  for (uint64_t i = 0; i < 1999; ++i) Receive(ledger, i, 1'000'000, 100);
  RealtimeResult r = ledger.Tally();
  r.window = absl::Seconds(4);
  r.server_cpu = absl::Milliseconds(400);
  r.client_cpu = absl::Milliseconds(100);
  r.max_schedule_lag = absl::Microseconds(12);
  r.instance = "a-1";
  r.admin_address = "127.0.0.1:9999";
  return r;
}

TEST(RealtimeReportTest, JsonHasTheFieldsScriptsReadWithCorrectValues) {
  const nlohmann::json j =
      nlohmann::json::parse(FormatRealtimeJson(FanoutOptions(), SampleResult(), {"w"}));
  EXPECT_EQ(j["op"], "realtime-fanout");
  EXPECT_EQ(j["rate"], 500.0);
  EXPECT_EQ(j["connections"], 100);
  EXPECT_EQ(j["size_bytes"], 64);
  EXPECT_EQ(j["published"], 2000);
  EXPECT_EQ(j["delivered"], 1999);
  EXPECT_EQ(j["deliveries"], 199900);
  EXPECT_EQ(j["lost"], 1);
  EXPECT_EQ(j["publish_errors"], 0);
  EXPECT_TRUE(j["errors_by_code"].empty());
  EXPECT_EQ(j["events_per_second"], 499.8);  // 1999 / 4 s
  EXPECT_EQ(j["deliveries_per_second"], 49975.0);
  EXPECT_EQ(j["p50_us"], 1000.0);  // inside the histogram's 0.8%
  EXPECT_NEAR(j["p99_us"].get<double>(), 1000.0, 8.0);
  EXPECT_EQ(j["max_us"], 1000.0);
  EXPECT_EQ(j["publish_p99_us"], 0.1);  // 50 ns
  EXPECT_EQ(j["max_schedule_lag_us"], 12.0);
  EXPECT_EQ(j["server_pid"], 7);
  EXPECT_EQ(j["server_cpu_us_per_event"], 200.0);  // 400 ms / 2000 events
  EXPECT_EQ(j["server_cpu_us_per_delivery"], 2.0);
  EXPECT_EQ(j["server_cpu_cores"], 0.1);
  EXPECT_EQ(j["client_cpu_us_per_event"], 50.0);
  EXPECT_FALSE(j.contains("publish_server_pid"));
  EXPECT_EQ(j["admin_address"], "127.0.0.1:9999");
  EXPECT_EQ(j["warnings"], nlohmann::json::array({"w"}));
}

TEST(RealtimeReportTest, TextShowsRatesLatencyLossAndCpu) {
  const std::string text = FormatRealtimeText(FanoutOptions(), SampleResult(), {"careful"});
  EXPECT_THAT(text, HasSubstr("op=realtime-fanout"));
  EXPECT_THAT(text, HasSubstr("2000 published (0 failed), 1999 delivered, 1 lost"));
  EXPECT_THAT(text, HasSubstr("499.8 events/s, 49975.0 deliveries/s"));
  EXPECT_THAT(text, HasSubstr("max 1000.0"));
  EXPECT_THAT(text, HasSubstr("200.0 µs/event, 2.00 µs/delivery"));
  EXPECT_THAT(text, HasSubstr("warning: careful"));
}

}  // namespace
}  // namespace stateside::bench

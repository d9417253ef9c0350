#include "tests/bench/report.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace stateside::bench {
namespace {

using ::testing::HasSubstr;

RunResult SampleResult() {
  RunResult r;
  for (int i = 1; i <= 1000; ++i) r.latency.Record(static_cast<uint64_t>(i) * 1000);
  r.calls = r.latency.count();
  r.errors = 3;
  r.errors_by_code[grpc::StatusCode::UNAVAILABLE] = 3;
  r.window = absl::Seconds(2);
  r.server_cpu = absl::Milliseconds(100);
  r.client_cpu = absl::Milliseconds(50);
  return r;
}

BenchOptions SampleOptions() {
  BenchOptions o;
  o.op = Op::kSessionGet;
  o.inflight = 64;
  o.server_pid = 77;
  return o;
}

TEST(ReportTest, JsonHasTheFieldsScriptsReadWithCorrectValues) {
  const nlohmann::json j =
      nlohmann::json::parse(FormatJson(SampleOptions(), SampleResult(), {"w"}));
  EXPECT_EQ(j["op"], "session-get");
  EXPECT_EQ(j["transport"], "unary");
  EXPECT_EQ(j["inflight"], 64);
  EXPECT_EQ(j["duration_s"], 2.0);
  EXPECT_EQ(j["calls"], 1000);
  EXPECT_EQ(j["errors"], 3);
  EXPECT_EQ(j["errors_by_code"]["UNAVAILABLE"], 3);
  EXPECT_EQ(j["calls_per_second"], 500.0);
  EXPECT_NEAR(j["p50_us"].get<double>(), 500, 5);
  EXPECT_NEAR(j["p90_us"].get<double>(), 900, 9);
  EXPECT_NEAR(j["p99_us"].get<double>(), 990, 10);
  EXPECT_EQ(j["max_us"], 1000.0);
  // 100 ms over 1003 handled calls.
  EXPECT_NEAR(j["server_cpu_us_per_call"].get<double>(), 99.7, 0.1);
  EXPECT_EQ(j["server_cpu_cores"], 0.05);
  EXPECT_EQ(j["server_pid"], 77);
  EXPECT_EQ(j["warnings"][0], "w");
}

TEST(ReportTest, JsonHasTheCpuOfEachGroupPerCallOrNull) {
  BenchOptions o = SampleOptions();
  o.cpu_of = {{"masters", {1, 2}}, {"gone", {3}}};
  RunResult r = SampleResult();
  r.cpu_of = {absl::Milliseconds(50), std::nullopt};
  const nlohmann::json j = nlohmann::json::parse(FormatJson(o, r, {}));
  // 50 ms over 1003 handled calls.
  EXPECT_NEAR(j["cpu_us_per_call"]["masters"].get<double>(), 49.9, 0.1);
  EXPECT_TRUE(j["cpu_us_per_call"]["gone"].is_null());
  EXPECT_THAT(FormatText(o, r, {}), HasSubstr("masters CPU  49.9 µs/call (1,2)"));
  EXPECT_FALSE(nlohmann::json::parse(FormatJson(SampleOptions(), SampleResult(), {}))
                   .contains("cpu_us_per_call"));
}

TEST(ReportTest, JsonLeavesServerFieldsOutWithoutAPid) {
  BenchOptions o = SampleOptions();
  o.server_pid.reset();
  const nlohmann::json j = nlohmann::json::parse(FormatJson(o, SampleResult(), {}));
  EXPECT_FALSE(j.contains("server_cpu_us_per_call"));
}

TEST(ReportTest, TextNamesThePingRpcAndErrors) {
  BenchOptions o = SampleOptions();
  o.op = Op::kPing;
  const std::string text = FormatText(o, SampleResult(), {});
  EXPECT_THAT(text, HasSubstr("grpc.health.v1.Health/Check"));
  EXPECT_THAT(text, HasSubstr("UNAVAILABLE=3"));
  EXPECT_THAT(text, HasSubstr("500.0 calls/s"));
}

TEST(ReportTest, StatusCodeNames) {
  EXPECT_EQ(StatusCodeName(4), "DEADLINE_EXCEEDED");
  EXPECT_EQ(StatusCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(99), "CODE_99");
}

}  // namespace
}  // namespace stateside::bench

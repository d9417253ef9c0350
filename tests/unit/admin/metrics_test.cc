// Metrics: exact counts, histogram buckets, label caps, and an exposition
// that promtool accepts.
#include "sidecar/admin/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/admin/process_stats.h"
#include "tests/support/fake_clock.h"
#include "tests/support/subprocess.h"

namespace stateside::admin {
namespace {

using Labels = std::map<std::string, std::string>;

// The value of one sample of the text exposition, matched by name and by
// its full label set (order-independent); nullopt if absent.
std::optional<double> Sample(const std::string& text, const std::string& name,
                             const Labels& labels = {}) {
  // absl::string_view: Debian's Abseil does not alias std::string_view.
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    absl::string_view series = line.substr(0, space);
    size_t brace = series.find('{');
    if (series.substr(0, brace) != name) continue;
    Labels found;
    if (brace != absl::string_view::npos) {
      absl::string_view body = series.substr(brace + 1);
      absl::ConsumeSuffix(&body, "}");
      // Our test label values hold no commas or escaped quotes.
      for (absl::string_view pair : absl::StrSplit(body, ',', absl::SkipEmpty())) {
        size_t eq = pair.find('=');
        absl::string_view value = pair.substr(eq + 1);
        absl::ConsumePrefix(&value, "\"");
        absl::ConsumeSuffix(&value, "\"");
        found[std::string(pair.substr(0, eq))] = std::string(value);
      }
    }
    if (found != labels) continue;
    double v = 0;
    absl::string_view number = line.substr(space + 1);
    if (number == "+Inf") return HUGE_VAL;
    if (!absl::SimpleAtod(number, &v)) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

int CountSeries(const std::string& text, const std::string& name) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, name + "{") || absl::StartsWith(line, name + " ")) ++n;
  }
  return n;
}

class MetricsTest : public ::testing::Test {
 protected:
  testing::FakeClock clock_;
  Metrics metrics_{{.instance_id = "pod-a-1", .version = "0.1.0", .clock = &clock_}};
};

TEST_F(MetricsTest, TenRpcsCountTen) {
  for (int i = 0; i < 10; ++i) metrics_.RecordRpc("SessionService/Get", "OK", 0.002);
  for (int i = 0; i < 3; ++i) {
    metrics_.RecordRpc("SessionService/Get", "NOT_FOUND", 0.0004);
  }
  std::string text = metrics_.Serialize();
  EXPECT_EQ(Sample(text, "stateside_rpc_requests_total",
                   {{"method", "SessionService/Get"}, {"code", "OK"}}),
            10);
  EXPECT_EQ(Sample(text, "stateside_rpc_requests_total",
                   {{"method", "SessionService/Get"}, {"code", "NOT_FOUND"}}),
            3);
  Labels get = {{"method", "SessionService/Get"}};
  EXPECT_EQ(Sample(text, "stateside_rpc_duration_seconds_count", get), 13);
  EXPECT_NEAR(*Sample(text, "stateside_rpc_duration_seconds_sum", get), 0.0212, 1e-9);
  auto bucket = [&](const char* le) {
    return Sample(text, "stateside_rpc_duration_seconds_bucket",
                  {{"method", "SessionService/Get"}, {"le", le}});
  };
  EXPECT_EQ(bucket("0.00025"), 0);
  EXPECT_EQ(bucket("0.0005"), 3);
  EXPECT_EQ(bucket("0.001"), 3);
  EXPECT_EQ(bucket("0.0025"), 13);
  EXPECT_EQ(bucket("+Inf"), 13);
}

TEST_F(MetricsTest, InFlightFollowsStartsAndFinishes) {
  for (int i = 0; i < 3; ++i) metrics_.RpcStarted();
  metrics_.RpcFinished();
  EXPECT_EQ(Sample(metrics_.Serialize(), "stateside_rpc_in_flight"), 2);
}

TEST_F(MetricsTest, OffloadWaitingFollowsQueuesAndStarts) {
  for (int i = 0; i < 3; ++i) metrics_.OffloadQueued();
  metrics_.OffloadStarted();
  EXPECT_EQ(Sample(metrics_.Serialize(), "stateside_offload_waiting"), 2);
}

TEST_F(MetricsTest, RedisFamiliesMove) {
  for (int i = 0; i < 5; ++i) metrics_.RedisCommand(0.0003);
  metrics_.RedisError("timeout");
  metrics_.RedisError("timeout");
  metrics_.RedisError("io");
  metrics_.RedisReconnected();
  metrics_.RedisMasterChanged();
  metrics_.RedisRedirect("moved");
  metrics_.RedisRedirect("moved");
  metrics_.RedisRedirect("ask");
  metrics_.RedisTopologyRefresh();
  metrics_.RedisRetry();
  metrics_.RedisRetry();
  metrics_.SetRedisConnected(true);
  metrics_.PipelineBatch(3);
  metrics_.PipelineBatch(100);
  std::string text = metrics_.Serialize();
  EXPECT_EQ(Sample(text, "stateside_redis_command_duration_seconds_count"), 5);
  EXPECT_EQ(Sample(text, "stateside_redis_errors_total", {{"kind", "timeout"}}), 2);
  EXPECT_EQ(Sample(text, "stateside_redis_errors_total", {{"kind", "io"}}), 1);
  EXPECT_EQ(Sample(text, "stateside_redis_reconnects_total"), 1);
  EXPECT_EQ(Sample(text, "stateside_redis_master_changes_total"), 1);
  EXPECT_EQ(Sample(text, "stateside_redis_redirects_total", {{"kind", "moved"}}), 2);
  EXPECT_EQ(Sample(text, "stateside_redis_redirects_total", {{"kind", "ask"}}), 1);
  EXPECT_EQ(Sample(text, "stateside_redis_topology_refreshes_total"), 1);
  EXPECT_EQ(Sample(text, "stateside_redis_retries_total"), 2);
  EXPECT_EQ(Sample(text, "stateside_redis_connected"), 1);
  EXPECT_EQ(Sample(text, "stateside_redis_pipeline_batch_size_bucket", {{"le", "2"}}), 0);
  EXPECT_EQ(Sample(text, "stateside_redis_pipeline_batch_size_bucket", {{"le", "4"}}), 1);
  EXPECT_EQ(Sample(text, "stateside_redis_pipeline_batch_size_bucket", {{"le", "128"}}), 2);
  EXPECT_EQ(Sample(text, "stateside_redis_pipeline_batch_size_sum"), 103);

  metrics_.SetRedisConnected(false);
  EXPECT_EQ(Sample(metrics_.Serialize(), "stateside_redis_connected"), 0);
}

// The near cache's totals come from several callers (a scrape, the status
// page) at once: each difference is counted once.
TEST_F(MetricsTest, NearCacheTotalsFromConcurrentCallersAreCountedOnce) {
  constexpr uint64_t kSteps = 2000;
  auto feed = [&] {
    for (uint64_t i = 1; i <= kSteps; ++i) {
      metrics_.SetNearCache({.hits = i, .flushes = i, .fills = i});
    }
  };
  std::thread a(feed);
  std::thread b(feed);
  a.join();
  b.join();
  const std::string text = metrics_.Serialize();
  EXPECT_EQ(Sample(text, "stateside_session_near_cache_lookups_total", {{"result", "hit"}}),
            kSteps);
  EXPECT_EQ(Sample(text, "stateside_session_near_cache_flushes_total", {}), kSteps);
  EXPECT_EQ(Sample(text, "stateside_session_near_cache_fills_total", {}), kSteps);
}

TEST_F(MetricsTest, KeyMismatchesAndTamperedMetadataAreExported) {
  std::string text = metrics_.Serialize();
  EXPECT_EQ(Sample(text, "stateside_key_mismatches"), 0);
  EXPECT_EQ(Sample(text, "stateside_session_not_found_total", {{"cause", "tampered_metadata"}}), 0);
  EXPECT_EQ(Sample(text, "stateside_session_decrypt_failures_total", {{"reason", "key_mismatch"}}),
            0);
  metrics_.SetKeyMismatches(2);
  MetricsSessionEvents adapter(&metrics_);
  adapter.SessionNotFound(session::NotFoundCause::kTamperedMetadata);
  adapter.DecryptFailed("key_mismatch");
  text = metrics_.Serialize();
  EXPECT_EQ(Sample(text, "stateside_key_mismatches"), 2);
  EXPECT_EQ(Sample(text, "stateside_session_not_found_total", {{"cause", "tampered_metadata"}}), 1);
  EXPECT_EQ(Sample(text, "stateside_session_decrypt_failures_total", {{"reason", "key_mismatch"}}),
            1);
}

TEST_F(MetricsTest, SessionEventsReportThroughTheInterface) {
  MetricsSessionEvents adapter(&metrics_);
  session::SessionEvents* events = &adapter;
  for (int i = 0; i < 10; ++i) events->SessionCreated();
  for (int i = 0; i < 4; ++i) events->SessionDestroyed();
  events->SessionNotFound(session::NotFoundCause::kBadSignature);
  events->SessionNotFound(session::NotFoundCause::kUnknown);
  events->SessionNotFound(session::NotFoundCause::kUnknown);
  events->DecryptFailed("auth_failed");
  events->KeyUsedForRead("k2024");
  events->KeyUsedForRead("k2024");
  events->KeyUsedForRead("k2023");
  events->VersionConflict();
  metrics_.SessionsExpired(7);
  metrics_.SetSessionsLive(1234);
  metrics_.SetAppConnections(17);

  std::string text = metrics_.Serialize();
  EXPECT_EQ(Sample(text, "stateside_sessions_created_total"), 10);
  EXPECT_EQ(Sample(text, "stateside_sessions_destroyed_total"), 4);
  EXPECT_EQ(Sample(text, "stateside_sessions_expired_total"), 7);
  EXPECT_EQ(Sample(text, "stateside_session_not_found_total", {{"cause", "bad_signature"}}), 1);
  EXPECT_EQ(Sample(text, "stateside_session_not_found_total", {{"cause", "unknown"}}), 2);
  EXPECT_EQ(Sample(text, "stateside_session_not_found_total", {{"cause", "malformed"}}), 0);
  EXPECT_EQ(Sample(text, "stateside_session_not_found_total", {{"cause", "undecryptable"}}), 0);
  EXPECT_EQ(Sample(text, "stateside_session_decrypt_failures_total", {{"reason", "auth_failed"}}), 1);
  EXPECT_EQ(Sample(text, "stateside_session_decrypt_failures_total", {{"reason", "unknown_key"}}), 0);
  EXPECT_EQ(Sample(text, "stateside_session_key_reads_total", {{"key_id", "k2024"}}), 2);
  EXPECT_EQ(Sample(text, "stateside_session_key_reads_total", {{"key_id", "k2023"}}), 1);
  EXPECT_EQ(Sample(text, "stateside_session_version_conflicts_total"), 1);
  EXPECT_EQ(Sample(text, "stateside_sessions_live"), 1234);
  EXPECT_EQ(Sample(text, "stateside_app_connections"), 17);
}

TEST_F(MetricsTest, ValuesHoldTotalsAndOneEntryPerSeries) {
  metrics_.SessionCreated();
  metrics_.SessionCreated();
  metrics_.SessionNotFound(session::NotFoundCause::kBadSignature);
  metrics_.SessionNotFound(session::NotFoundCause::kUnknown);
  metrics_.SessionNotFound(session::NotFoundCause::kUnknown);
  metrics_.KeyUsedForRead("k1");
  metrics_.RedisCommand(0.002);
  metrics_.RedisCommand(0.004);
  const std::map<std::string, double> values = metrics_.Values();
  auto value = [&](const std::string& name) {
    auto it = values.find(name);
    return it == values.end() ? -1.0 : it->second;
  };
  EXPECT_EQ(value("stateside_sessions_created_total"), 2);
  EXPECT_EQ(value("stateside_session_not_found_total"), 3);
  EXPECT_EQ(value("stateside_session_not_found_total{cause=\"unknown\"}"), 2);
  EXPECT_EQ(value("stateside_session_not_found_total{cause=\"bad_signature\"}"), 1);
  EXPECT_EQ(value("stateside_session_key_reads_total{key_id=\"k1\"}"), 1);
  EXPECT_EQ(value("stateside_redis_command_duration_seconds_count"), 2);
  EXPECT_NEAR(value("stateside_redis_command_duration_seconds_sum"), 0.006, 1e-9);
}

TEST_F(MetricsTest, DrainStateIsOneHot) {
  auto state = [&](const std::string& text, const char* s) {
    return Sample(text, "stateside_drain_state", {{"state", s}});
  };
  std::string text = metrics_.Serialize();
  EXPECT_EQ(state(text, "serving"), 1);
  EXPECT_EQ(state(text, "draining"), 0);
  EXPECT_EQ(state(text, "drained"), 0);

  metrics_.SetDrainState(DrainPhase::kDraining);
  text = metrics_.Serialize();
  EXPECT_EQ(state(text, "serving"), 0);
  EXPECT_EQ(state(text, "draining"), 1);
  metrics_.SetDrainState(DrainPhase::kDrained);
  text = metrics_.Serialize();
  EXPECT_EQ(state(text, "draining"), 0);
  EXPECT_EQ(state(text, "drained"), 1);
}

TEST_F(MetricsTest, DrainOutcomesAreCounted) {
  metrics_.DrainFinished(3.5, /*timed_out=*/false);
  metrics_.DrainFinished(10.0, /*timed_out=*/true);
  metrics_.ForcedExit();
  std::string text = metrics_.Serialize();
  EXPECT_EQ(Sample(text, "stateside_drain_duration_seconds_count"), 2);
  EXPECT_EQ(Sample(text, "stateside_drain_duration_seconds_bucket", {{"le", "5"}}), 1);
  EXPECT_EQ(Sample(text, "stateside_drain_duration_seconds_bucket", {{"le", "10"}}), 2);
  EXPECT_EQ(Sample(text, "stateside_drain_timeouts_total"), 1);
  EXPECT_EQ(Sample(text, "stateside_forced_exits_total"), 1);
}

TEST_F(MetricsTest, AdminRefusalsAreCountedByRouteAndReason) {
  const std::string name = "stateside_admin_requests_refused_total";
  std::string text = metrics_.Serialize();
  // Every known reason exists at 0 before the first refusal.
  for (const char* reason : {"not_loopback", "missing_token", "bad_token"}) {
    EXPECT_EQ(Sample(text, name, {{"route", "/drain"}, {"reason", reason}}), 0) << reason;
  }
  EXPECT_EQ(Sample(text, name, {{"route", "*"}, {"reason", "too_many_connections"}}), 0);
  metrics_.AdminRequestRefused("/drain", "not_loopback");
  metrics_.AdminRequestRefused("/drain", "not_loopback");
  metrics_.AdminRequestRefused("*", "too_many_connections");
  text = metrics_.Serialize();
  EXPECT_EQ(Sample(text, name, {{"route", "/drain"}, {"reason", "not_loopback"}}), 2);
  EXPECT_EQ(Sample(text, name, {{"route", "/drain"}, {"reason", "bad_token"}}), 0);
  EXPECT_EQ(Sample(text, name, {{"route", "*"}, {"reason", "too_many_connections"}}), 1);
}

TEST_F(MetricsTest, UptimeFollowsTheClock) {
  EXPECT_EQ(Sample(metrics_.Serialize(), "stateside_uptime_seconds"), 0);
  clock_.Advance(absl::Seconds(90));
  EXPECT_EQ(Sample(metrics_.Serialize(), "stateside_uptime_seconds"), 90);
}

TEST_F(MetricsTest, BuildInfoCarriesVersionAndInstance) {
  EXPECT_EQ(Sample(metrics_.Serialize(), "stateside_build_info",
                   {{"version", "0.1.0"}, {"instance", "pod-a-1"}}),
            1);
}

TEST_F(MetricsTest, ProcessGaugesAreReadAtScrape) {
  std::string before = metrics_.Serialize();
  EXPECT_GT(*Sample(before, "process_resident_memory_bytes"), 1e5);
  EXPECT_GT(*Sample(before, "process_start_time_seconds"), 1.6e9);
  EXPECT_GT(*Sample(before, "process_max_fds"), 0);
  ASSERT_TRUE(Sample(before, "process_cpu_seconds_total"));
  int fds[10];
  for (int& fd : fds) fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::string during = metrics_.Serialize();
  for (int fd : fds) close(fd);
  EXPECT_GE(*Sample(during, "process_open_fds"), *Sample(before, "process_open_fds") + 10);
}

TEST_F(MetricsTest, LabelValuesAreCapped) {
  const int extra = 44;
  for (size_t i = 0; i < Metrics::kMaxSeriesPerFamily + extra; ++i) {
    metrics_.KeyUsedForRead(absl::StrCat("key", i));
  }
  std::string text = metrics_.Serialize();
  EXPECT_EQ(CountSeries(text, "stateside_session_key_reads_total"),
            static_cast<int>(Metrics::kMaxSeriesPerFamily) + 1);
  EXPECT_EQ(Sample(text, "stateside_session_key_reads_total", {{"key_id", "other"}}), extra);
  EXPECT_EQ(Sample(text, "stateside_session_key_reads_total", {{"key_id", "key0"}}), 1);
}

TEST_F(MetricsTest, ConcurrentRecordingLosesNothing) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done) metrics_.Serialize();
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics_.RpcStarted();
        metrics_.RecordRpc(t % 2 ? "A/B" : "C/D", "OK", 0.001);
        metrics_.SessionCreated();
        metrics_.RpcFinished();
      }
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  scraper.join();
  std::string text = metrics_.Serialize();
  EXPECT_EQ(*Sample(text, "stateside_rpc_requests_total", {{"method", "A/B"}, {"code", "OK"}}) +
                *Sample(text, "stateside_rpc_requests_total", {{"method", "C/D"}, {"code", "OK"}}),
            kThreads * kPerThread);
  EXPECT_EQ(Sample(text, "stateside_sessions_created_total"), kThreads * kPerThread);
  EXPECT_EQ(Sample(text, "stateside_rpc_in_flight"), 0);
}

TEST_F(MetricsTest, ExpositionPassesPromtool) {
  if (access("/usr/bin/promtool", X_OK) != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  // A workload touching every family, including a label value that needs
  // escaping.
  MetricsSessionEvents events(&metrics_);
  metrics_.RpcStarted();
  metrics_.RecordRpc("SessionService/Create", "OK", 0.0001);
  metrics_.RecordRpc("SessionService/Get", "NOT_FOUND", 0.2);
  metrics_.RedisCommand(0.001);
  metrics_.RedisError("reply \"ERR\" \\ odd\nkind");
  metrics_.RedisReconnected();
  metrics_.SetRedisConnected(true);
  metrics_.PipelineBatch(12);
  events.SessionCreated();
  events.SessionDestroyed();
  events.SessionNotFound(session::NotFoundCause::kUndecryptable);
  events.DecryptFailed("unknown_key");
  events.KeyUsedForRead("k1");
  events.VersionConflict();
  metrics_.SessionsExpired();
  metrics_.SetSessionsLive(3);
  metrics_.SetNearCache({10, 4, 1, 3, 2, 1, 5, 4096, true, 7, 1});
  metrics_.SetAppConnections(2);
  metrics_.SetDrainState(DrainPhase::kDraining);
  metrics_.DrainFinished(1.5, true);
  metrics_.ForcedExit();
  clock_.Advance(absl::Seconds(5));
  std::string text = metrics_.Serialize();

  auto result = stateside::testing::Run({"/usr/bin/promtool", "check", "metrics"}, {},
                                        absl::Seconds(30), text);
  EXPECT_EQ(result.exit_status, 0) << result.out << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "");
  // promtool must be able to fail: a counter without _total is reported.
  auto bad = stateside::testing::Run(
      {"/usr/bin/promtool", "check", "metrics"}, {}, absl::Seconds(30),
      "# HELP bad_requests Bad.\n# TYPE bad_requests counter\nbad_requests 1\n");
  EXPECT_NE(bad.exit_status, 0);
}

TEST(ProcessStatsTest, ReadsThisProcess) {
  auto stats = ReadProcessStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->resident_memory_bytes, 0);
  EXPECT_GE(stats->virtual_memory_bytes, stats->resident_memory_bytes);
  EXPECT_GE(stats->open_fds, 3);  // stdin, stdout, stderr at least
  EXPECT_GT(stats->start_time_seconds, 1.6e9);
  EXPECT_LE(stats->start_time_seconds, absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()) + 1);
}

}  // namespace
}  // namespace stateside::admin

// The lock-free recordings behind the data path's metrics: counts from
// many threads sum exactly, a histogram buckets as prometheus-cpp's does,
// and what a scrape exports (buckets, _sum, _count) is exact while threads
// record and another scrapes.
#include "sidecar/admin/sharded_metrics.h"

#include <prometheus/histogram.h>

#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sidecar/admin/metrics.h"

namespace stateside::admin {
namespace {

constexpr int kThreads = 2 * static_cast<int>(internal::kShards) + 3;  // shared shards too

template <typename F>
void OnThreads(int n, F f) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back([&f, t] { f(t); });
  for (std::thread& t : threads) t.join();
}

TEST(ShardedCountsTest, ThreadsSumExactlyAndDrainResets) {
  internal::ShardedCounts counts(11);  // two cache lines per shard
  OnThreads(kThreads, [&](int t) {
    for (int i = 0; i < 1000; ++i) counts.Add(static_cast<size_t>(t % 11));
    counts.Add(10, 7);
  });
  std::vector<uint64_t> totals = counts.Drain();
  ASSERT_EQ(totals.size(), 11u);
  uint64_t all = 0;
  for (size_t i = 0; i < totals.size(); ++i) {
    uint64_t want = 0;
    for (int t = 0; t < kThreads; ++t) want += (t % 11 == static_cast<int>(i)) ? 1000 : 0;
    if (i == 10) want += 7 * kThreads;
    EXPECT_EQ(totals[i], want) << i;
    all += totals[i];
  }
  EXPECT_EQ(all, 1000u * kThreads + 7u * kThreads);
  EXPECT_EQ(counts.Drain(), std::vector<uint64_t>(11, 0));
}

TEST(ShardedHistogramTest, BucketsAsPrometheusCppDoes) {
  const std::vector<double> bounds = {0.001, 0.01, 0.1, 1};
  internal::ShardedHistogram sharded(bounds);
  prometheus::Histogram direct(bounds);
  // Below, on and between the bounds, and past the last.
  for (double v : {0.0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.99, 1.0,
                   1.5, 100.0, -3.0}) {
    sharded.Observe(v);
    direct.Observe(v);
  }
  internal::ShardedHistogram::Drained d = sharded.Drain();
  prometheus::Histogram fed(bounds);
  fed.ObserveMultiple(d.buckets, d.sum);
  const prometheus::ClientMetric want = direct.Collect();
  const prometheus::ClientMetric got = fed.Collect();
  ASSERT_EQ(got.histogram.bucket.size(), want.histogram.bucket.size());
  for (size_t i = 0; i < want.histogram.bucket.size(); ++i) {
    EXPECT_EQ(got.histogram.bucket[i].cumulative_count,
              want.histogram.bucket[i].cumulative_count)
        << "le " << want.histogram.bucket[i].upper_bound;
  }
  EXPECT_EQ(got.histogram.sample_count, 12u);
  EXPECT_EQ(got.histogram.sample_count, want.histogram.sample_count);
  EXPECT_EQ(got.histogram.sample_sum, want.histogram.sample_sum);
  EXPECT_EQ(d.count, 12u);
  const internal::ShardedHistogram::Drained empty = sharded.Drain();
  EXPECT_EQ(empty.count, 0u);
  EXPECT_EQ(empty.sum, 0);
}

TEST(SeriesTableTest, OneSeriesPerLabelFromAnyThreadAndACap) {
  internal::SeriesTable<internal::ShardedCounts> table(
      8, [] { return std::make_unique<internal::ShardedCounts>(1); });
  std::vector<std::vector<internal::ShardedCounts*>> seen(kThreads);
  OnThreads(kThreads, [&](int t) {
    for (int i = 0; i < 8; ++i) {
      internal::ShardedCounts* c = table.Find(absl::StrCat("l", (i + t) % 8));
      c->Add(0);
      seen[t].push_back(c);
    }
  });
  std::set<internal::ShardedCounts*> distinct;
  for (const auto& v : seen) distinct.insert(v.begin(), v.end());
  EXPECT_EQ(distinct.size(), 8u);
  EXPECT_EQ(table.Find("ninth"), nullptr);
  std::map<std::string, uint64_t> counted;
  table.ForEach([&](const std::string& label, internal::ShardedCounts& c) {
    counted[label] = c.Drain()[0];
  });
  ASSERT_EQ(counted.size(), 8u);
  for (const auto& [label, n] : counted) EXPECT_EQ(n, static_cast<uint64_t>(kThreads)) << label;
}

// The value of one sample line, `series` written as in the exposition
// (labels in name order, then a bucket's "le", as prometheus-cpp writes
// them).
double SampleOf(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      double v = 0;
      EXPECT_TRUE(absl::SimpleAtod(line.substr(series.size() + 1), &v)) << line;
      return v;
    }
  }
  ADD_FAILURE() << "no sample " << series;
  return NAN;
}

// Every data-path recording from many threads while another thread
// scrapes: the last scrape's counts, buckets and sums are exact (the values
// observed are sums of powers of two, exact in any order of addition).
TEST(MetricsAggregationTest, ThreadsSumExactlyAtScrape) {
  Metrics metrics({.instance_id = "i", .version = "v"});
  constexpr int kPerThread = 500;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) metrics.Serialize();
  });
  OnThreads(kThreads, [&](int t) {
    for (int i = 0; i < kPerThread; ++i) {
      metrics.RecordRpc("SessionService/Pipe.Get", i % 4 == 0 ? 5 : 0, 0.0009765625);
      metrics.RecordRpc("SessionService/Get", "OK", 0.5);
      metrics.RedisCommand(0.00006103515625);  // 2^-14: the 0.0001 bucket
      metrics.PipelineBatch(static_cast<size_t>(1 + t % 3));  // 1, 2, 3
      metrics.KeyUsedForRead(t % 2 ? "k1" : "k2");
      metrics.RealtimeDelivered(2);
    }
  });
  done = true;
  scraper.join();
  const std::string text = metrics.Serialize();
  const double total = static_cast<double>(kThreads) * kPerThread;
  const std::string pipe_get = "method=\"SessionService/Pipe.Get\"";
  EXPECT_EQ(SampleOf(text, "stateside_rpc_requests_total{code=\"OK\"," + pipe_get + "}"),
            total * 3 / 4);
  EXPECT_EQ(SampleOf(text, "stateside_rpc_requests_total{code=\"NOT_FOUND\"," + pipe_get + "}"),
            total / 4);
  EXPECT_EQ(SampleOf(text, "stateside_rpc_duration_seconds_count{" + pipe_get + "}"), total);
  EXPECT_EQ(SampleOf(text, "stateside_rpc_duration_seconds_sum{" + pipe_get + "}"),
            total * 0.0009765625);
  EXPECT_EQ(SampleOf(text, "stateside_rpc_duration_seconds_bucket{" + pipe_get + ",le=\"0.0005\"}"), 0);
  EXPECT_EQ(SampleOf(text, "stateside_rpc_duration_seconds_bucket{" + pipe_get + ",le=\"0.001\"}"), total);
  EXPECT_EQ(SampleOf(text, "stateside_rpc_requests_total{code=\"OK\",method=\"SessionService/Get\"}"),
            total);
  EXPECT_EQ(SampleOf(text, "stateside_rpc_duration_seconds_sum{method=\"SessionService/Get\"}"),
            total * 0.5);
  EXPECT_EQ(SampleOf(text, "stateside_redis_command_duration_seconds_count"), total);
  EXPECT_EQ(SampleOf(text, "stateside_redis_command_duration_seconds_sum"),
            total * 0.00006103515625);
  EXPECT_EQ(SampleOf(text, "stateside_redis_command_duration_seconds_bucket{le=\"5e-05\"}"), 0);
  EXPECT_EQ(SampleOf(text, "stateside_redis_command_duration_seconds_bucket{le=\"0.0001\"}"), total);
  double batches = 0;
  double batch_sum = 0;
  double ones = 0;
  for (int t = 0; t < kThreads; ++t) {
    batches += kPerThread;
    batch_sum += kPerThread * (1 + t % 3);
    if (t % 3 == 0) ones += kPerThread;
  }
  EXPECT_EQ(SampleOf(text, "stateside_redis_pipeline_batch_size_count"), batches);
  EXPECT_EQ(SampleOf(text, "stateside_redis_pipeline_batch_size_sum"), batch_sum);
  EXPECT_EQ(SampleOf(text, "stateside_redis_pipeline_batch_size_bucket{le=\"1\"}"), ones);
  EXPECT_EQ(SampleOf(text, "stateside_session_key_reads_total{key_id=\"k1\"}") +
                SampleOf(text, "stateside_session_key_reads_total{key_id=\"k2\"}"),
            total);
  EXPECT_EQ(SampleOf(text, "stateside_realtime_delivered_total"), total);
  EXPECT_EQ(SampleOf(text, "stateside_realtime_delivery_latency_seconds_count"), total);
  EXPECT_EQ(SampleOf(text, "stateside_realtime_delivery_latency_seconds_sum"), total * 2);
  // Values() reads the same totals.
  std::map<std::string, double> values = metrics.Values();
  EXPECT_EQ(values["stateside_realtime_delivered_total"], total);
  EXPECT_EQ(values["stateside_rpc_duration_seconds_count"], 2 * total);
}

TEST(MetricsAggregationTest, ASeriesAppearsAtItsFirstRecording) {
  Metrics metrics({.instance_id = "i", .version = "v"});
  const std::string before = metrics.Serialize();
  EXPECT_EQ(before.find("method=\"A/B\""), std::string::npos);
  EXPECT_EQ(before.find("stateside_session_key_reads_total{"), std::string::npos);
  metrics.RecordRpc("A/B", 16, 0.25);
  metrics.RecordRpc("A/B", 99, 0.25);  // out of range: UNKNOWN
  const std::string after = metrics.Serialize();
  EXPECT_EQ(SampleOf(after, "stateside_rpc_requests_total{code=\"UNAUTHENTICATED\",method=\"A/B\"}"), 1);
  EXPECT_EQ(SampleOf(after, "stateside_rpc_requests_total{code=\"UNKNOWN\",method=\"A/B\"}"), 1);
  EXPECT_EQ(after.find("code=\"OK\""), std::string::npos);
  EXPECT_EQ(GrpcCodeName(5), "NOT_FOUND");
  EXPECT_EQ(GrpcCodeName(-1), "UNKNOWN");
}

}  // namespace
}  // namespace stateside::admin

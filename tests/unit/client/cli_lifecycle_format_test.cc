// The pure parts of statesidectl's lifecycle commands: HTTP replies,
// Prometheus sample lines, drain notices.
#include "client/tools/cli_format.h"
#include "client/tools/http_get.h"
#include "gtest/gtest.h"

namespace stateside::cli {
namespace {

TEST(HttpResponseTest, ContentLengthBoundsTheBody) {
  auto r = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
}

TEST(HttpResponseTest, ChunkedBodyIsReassembled) {
  auto r = ParseHttpResponse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "abcde");
}

TEST(HttpResponseTest, BodyUntilCloseWithoutLength) {
  auto r = ParseHttpResponse("HTTP/1.0 503 Service Unavailable\r\n\r\ndraining");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "draining");
}

TEST(HttpResponseTest, GarbageIsDataLoss) {
  for (const char* raw : {"", "SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                          "HTTP/1.1 200 OK"}) {
    EXPECT_EQ(ParseHttpResponse(raw).status().code(), absl::StatusCode::kDataLoss) << raw;
  }
}

TEST(MetricSampleTest, ParsesNameLabelsAndValue) {
  auto s = ParseMetricSample(R"(a_total{m="x\"y",c="OK"} 1.5e3 1700000000)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)["name"], "a_total");
  EXPECT_EQ((*s)["labels"]["m"], "x\"y");
  EXPECT_EQ((*s)["labels"]["c"], "OK");
  EXPECT_EQ((*s)["value"], 1500.0);
}

TEST(MetricSampleTest, NonFiniteValuesStayText) {
  auto s = ParseMetricSample("h_bucket{le=\"+Inf\"} +Inf");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)["value"], "+Inf");
  EXPECT_EQ((*s)["labels"]["le"], "+Inf");
}

TEST(MetricSampleTest, CommentsAndJunkAreNotSamples) {
  for (const char* line : {"# HELP x y", "", "x", "x{a=1} 2", "x{a=\"1} 2", "x abc",
                           "{a=\"b\"} 1", "9x 1"}) {
    EXPECT_FALSE(ParseMetricSample(line).ok()) << line;
  }
}

TEST(DrainNoticeFormatTest, DeadlineOnlyWhenSet) {
  EXPECT_EQ(FormatDrainNotice({DrainState::kServing, absl::InfiniteFuture()}), "SERVING");
  EXPECT_EQ(FormatDrainNotice({DrainState::kDraining, absl::FromUnixSeconds(0)}),
            "DRAINING deadline=1970-01-01T00:00:00.000Z");
  EXPECT_EQ(DumpJsonLine(DrainNoticeToJson({DrainState::kDrained, absl::InfiniteFuture()})),
            "{\"state\":\"DRAINED\"}\n");
}

}  // namespace
}  // namespace stateside::cli

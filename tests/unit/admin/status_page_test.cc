// The admin status page: every value from the document is escaped, missing
// fields show as a dash, and the page loads nothing but its stylesheet.
#include "sidecar/admin/status_page.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stateside::admin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(StatusPageTest, EscapesMarkupCharacters) {
  EXPECT_EQ(HtmlEscape(R"(<a href="x">'&'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape("pod-1"), "pod-1");
}

TEST(StatusPageTest, EscapesEveryValueOfTheDocument) {
  const nlohmann::json info = {
      {"id", "<script>alert(1)</script>"},
      {"not_ready_reasons", {"<b>why</b>"}},
      {"instances",
       {{"list", {{{"id", "<img src=x>"}, {"drain_state", "SERVING"}, {"ready", true}}}}}},
      {"sessions", {{"not_found_by_cause", {{"<cause>", 2}}}}},
      {"keys", {{{"id", "k<1>"}, {"primary", true}, {"session_reads", 3}}}},
  };
  const std::string page = RenderStatusPage(info);
  EXPECT_THAT(page, Not(HasSubstr("<script")));
  EXPECT_THAT(page, Not(HasSubstr("<img")));
  EXPECT_THAT(page, Not(HasSubstr("<b>why")));
  EXPECT_THAT(page, Not(HasSubstr("<cause>")));
  EXPECT_THAT(page, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(page, HasSubstr("k&lt;1&gt;"));
}

// A registry record written by another process may hold bytes that are not
// UTF-8: the page still renders (nlohmann's strict dump would throw).
TEST(StatusPageTest, BytesThatAreNotUtf8DoNotBreakThePage) {
  const nlohmann::json info = {
      {"id", "pod-\xff"},
      {"not_ready_reasons", {"bad \xc3\x28 bytes"}},
      {"instances", {{"list", {{{"id", "x\xfe"}, {"tags", {"\xff\xff"}}}}}}},
  };
  std::string page;
  EXPECT_NO_THROW(page = RenderStatusPage(info));
  EXPECT_THAT(page, HasSubstr("<html"));
}

TEST(StatusPageTest, ShowsTheDataAndRefreshesWithoutScript) {
  const nlohmann::json info = {
      {"id", "pod-2"},
      {"version", "0.1.0"},
      {"drain_state", "DRAINING"},
      {"ready", false},
      {"not_ready_reasons", {"draining"}},
      {"backend_status", {{"kind", "redis"}, {"topology", "standalone"},
                          {"nodes", {{{"address", "127.0.0.1:6379"}, {"role", ""},
                                      {"connected", true},
                                      {"mean_latency_seconds", 0.00025},
                                      {"last_latency_seconds", nullptr}}}}}},
      {"realtime", {{"connections", 4}, {"gaps_by_reason", {{"overflow", 1}}}}},
      {"instances", {{"error", ""}, {"list", nlohmann::json::array()}}},
  };
  const std::string page = RenderStatusPage(info);
  EXPECT_THAT(page, HasSubstr("<td id=\"instance-id\">pod-2</td>"));
  EXPECT_THAT(page, HasSubstr("<td id=\"drain-state\">DRAINING</td>"));
  EXPECT_THAT(page, HasSubstr("<td id=\"ready\">no (draining)</td>"));
  EXPECT_THAT(page, HasSubstr("127.0.0.1:6379"));
  // A node's latency, and a dash where none was measured.
  EXPECT_THAT(page, HasSubstr("<td>0.250 ms</td><td>&#8212;</td></tr>"));
  EXPECT_THAT(page, HasSubstr("<th scope=\"row\">overflow</th><td>1</td>"));
  EXPECT_THAT(page, HasSubstr("http-equiv=\"refresh\""));
  EXPECT_THAT(page, Not(HasSubstr("<script")));
  EXPECT_THAT(page, Not(HasSubstr("style=")));
  // An empty error is no error.
  EXPECT_THAT(page, Not(HasSubstr("listing failed")));
  EXPECT_THAT(RenderStatusPage({{"instances", {{"error", "READONLY <x>"}}}}),
              HasSubstr("last listing failed:</strong> READONLY &lt;x&gt;"));
  // Absent sections render, with dashes, instead of failing.
  EXPECT_THAT(RenderStatusPage(nlohmann::json::object()), HasSubstr("&#8212;"));
  EXPECT_THAT(std::string(kStatusPagePolicy), HasSubstr("default-src 'none'"));
}

}  // namespace
}  // namespace stateside::admin

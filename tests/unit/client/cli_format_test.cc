// statesidectl's argument parsing and output formatting, and UTF-8 checks.
#include "client/tools/cli_format.h"

#include "client/src/utf8.h"
#include "gtest/gtest.h"

namespace stateside::cli {
namespace {

TEST(ParseAssignmentTest, ValueIsTheRawTextAfterTheFirstEquals) {
  EXPECT_EQ(*ParseAssignment("cart=[]"), std::make_pair(std::string("cart"), std::string("[]")));
  EXPECT_EQ(ParseAssignment("a=b=c")->second, "b=c");
  EXPECT_EQ(ParseAssignment("a=")->second, "");
  EXPECT_EQ(ParseAssignment("a= x ")->second, " x ");
  EXPECT_EQ(ParseAssignment("a=\xff")->second, "\xff");
}

TEST(ParseAssignmentTest, MissingEqualsOrNameIsInvalid) {
  EXPECT_EQ(ParseAssignment("cart").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAssignment("=v").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAssignment("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EscapeForDisplayTest, PrintableTextIsKept) {
  EXPECT_EQ(EscapeForDisplay("[] {\"a\": 1}"), "[] {\\\"a\\\": 1}");
  EXPECT_EQ(EscapeForDisplay("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 stays
  EXPECT_EQ(EscapeForDisplay("a\\b"), "a\\\\b");
}

TEST(EscapeForDisplayTest, ControlAndInvalidBytesAreEscaped) {
  EXPECT_EQ(EscapeForDisplay(std::string("\0\x01\x7f", 3)), "\\x00\\x01\\x7f");
  EXPECT_EQ(EscapeForDisplay("a\nb\tc\r"), "a\\nb\\tc\\r");
  // Not valid UTF-8: every high byte is escaped, so the output is ASCII.
  EXPECT_EQ(EscapeForDisplay("caf\xc3\xa9\xff"), "caf\\xc3\\xa9\\xff");
  // A terminal escape sequence cannot reach the terminal.
  EXPECT_EQ(EscapeForDisplay("\x1b[2J"), "\\x1b[2J");
}

TEST(FormatTest, TimestampIsRfc3339UtcWithMilliseconds) {
  EXPECT_EQ(FormatTimestamp(absl::FromUnixMillis(1'700'000'000'123)),
            "2023-11-14T22:13:20.123Z");
}

TEST(FormatTest, JsonPutsNonUtf8ValuesInBase64) {
  Session s;
  s.info.id = "id";
  s.cookie = "id.sig";
  s.attributes = {{"text", "h\xc3\xa9llo"}, {"bin", std::string("\0\xff", 2)}};
  const Json json = SessionToJson(s);
  EXPECT_EQ(json["attributes"]["text"], "h\xc3\xa9llo");
  EXPECT_FALSE(json["attributes"].contains("bin"));
  EXPECT_EQ(json["binary_attributes"]["bin"], "AP8=");
  EXPECT_EQ(json["cookie"], "id.sig");
  // Dumps without throwing, and the shape is stable with no attributes.
  EXPECT_FALSE(DumpJson(json).empty());
  const Json empty = SessionToJson(Session{});
  EXPECT_TRUE(empty["attributes"].is_object());
  EXPECT_TRUE(empty["binary_attributes"].is_object());
}

TEST(Utf8Test, AcceptsValidAndRejectsInvalidSequences) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9"));          // é
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));      // €
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));  // 😀
  EXPECT_TRUE(IsValidUtf8(std::string("\0", 1)));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xe2\x28\xa1"));      // bad continuation
}

}  // namespace
}  // namespace stateside::cli

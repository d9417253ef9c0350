// The frame socket's framing (proto/frames.h): whole frames, partial
// input, and the headers that break a stream.
#include "proto/frames.h"

#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace stateside::rpc {
namespace {

std::string Frame(std::string_view payload) {
  std::string out;
  AppendFrameHeader(&out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
  return out;
}

TEST(FramesTest, TheHeaderIsTheLittleEndianLength) {
  std::string out;
  AppendFrameHeader(&out, 0x01020304);
  EXPECT_EQ(out, std::string("\x04\x03\x02\x01", 4));
}

TEST(FramesTest, AWholeFrameIsReadAndConsumed) {
  const std::string bytes = Frame("hello") + Frame("world!");
  std::string_view payload;
  size_t consumed = 0;
  ASSERT_EQ(ParseFrame(bytes, 100, &payload, &consumed), FrameParse::kFrame);
  EXPECT_EQ(payload, "hello");
  EXPECT_EQ(consumed, 9u);
  ASSERT_EQ(ParseFrame(std::string_view(bytes).substr(consumed), 100, &payload, &consumed),
            FrameParse::kFrame);
  EXPECT_EQ(payload, "world!");
  EXPECT_EQ(consumed, 10u);
}

TEST(FramesTest, TruncatedInputNeedsMoreAtEveryLength) {
  const std::string bytes = Frame("hello");
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::string_view payload;
    size_t consumed = 0;
    EXPECT_EQ(ParseFrame(std::string_view(bytes).substr(0, n), 100, &payload, &consumed),
              FrameParse::kNeedMore)
        << n;
  }
}

TEST(FramesTest, AZeroLengthIsBroken) {
  std::string_view payload;
  size_t consumed = 0;
  EXPECT_EQ(ParseFrame(std::string("\0\0\0\0", 4), 100, &payload, &consumed),
            FrameParse::kZeroLength);
}

TEST(FramesTest, AnOversizedLengthIsBrokenAsSoonAsTheHeaderIsIn) {
  std::string_view payload;
  size_t consumed = 0;
  std::string header;
  AppendFrameHeader(&header, 101);
  EXPECT_EQ(ParseFrame(header, 100, &payload, &consumed), FrameParse::kOversized);
  header.clear();
  AppendFrameHeader(&header, 100);
  EXPECT_EQ(ParseFrame(header, 100, &payload, &consumed), FrameParse::kNeedMore);
  // Garbage reads as a huge length: broken at once, nothing allocated.
  EXPECT_EQ(ParseFrame("GET / HTTP/1.1\r\n", 4 << 20, &payload, &consumed),
            FrameParse::kOversized);
  EXPECT_EQ(ParseFrame(std::string("\xff\xff\xff\xff", 4), 4 << 20, &payload, &consumed),
            FrameParse::kOversized);
}

TEST(FramesTest, TheLimitItselfIsAllowed) {
  const std::string bytes = Frame(std::string(100, 'x'));
  std::string_view payload;
  size_t consumed = 0;
  ASSERT_EQ(ParseFrame(bytes, 100, &payload, &consumed), FrameParse::kFrame);
  EXPECT_EQ(payload.size(), 100u);
}

}  // namespace
}  // namespace stateside::rpc

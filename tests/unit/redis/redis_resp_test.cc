// The RESP codec (encoding, incremental parsing, garbage, size bound), script
// naming and the mapping of Redis error replies to statuses.
#include <hiredis/hiredis.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/resp.h"
#include "sidecar/crypto/digest.h"

namespace stateside::redis {
namespace {

std::vector<Reply> ParseAll(RespParser& parser) {
  std::vector<Reply> out;
  while (true) {
    absl::StatusOr<std::optional<Reply>> r = parser.Next();
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || !r->has_value()) return out;
    out.push_back(**r);
  }
}

TEST(RespEncodeTest, CommandsAreBinarySafeMultiBulks) {
  EXPECT_EQ(EncodeCommand({"SET", "k", "v"}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
  const std::string nul("a\0\r\nb", 5);
  EXPECT_EQ(EncodeCommand({"GET", nul}), std::string("*2\r\n$3\r\nGET\r\n$5\r\na\0\r\nb\r\n", 24));
  EXPECT_EQ(EncodeCommand({"X", ""}), "*2\r\n$1\r\nX\r\n$0\r\n\r\n");
}

// AppendCommand encodes by itself: the bytes are hiredis's, for every
// number of digits of a count or a length, appended after what is there.
TEST(RespEncodeTest, AppendsWhatHiredisFormats) {
  for (size_t count : {0u, 1u, 9u, 10u, 11u, 100u}) {
    for (size_t size : {0u, 1u, 9u, 10u, 99u, 100u, 1024u, 100000u}) {
      std::vector<std::string> args;
      for (size_t i = 0; i < count; ++i) args.push_back(std::string(size + i % 3, static_cast<char>('a' + i % 26)));
      std::vector<const char*> argv;
      std::vector<size_t> argvlen;
      for (const std::string& a : args) {
        argv.push_back(a.data());
        argvlen.push_back(a.size());
      }
      char* formatted = nullptr;
      const int len = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()),
                                             argv.data(), argvlen.data());
      ASSERT_GT(len, 0);
      const std::string expected = "before" + std::string(formatted, static_cast<size_t>(len));
      free(formatted);
      std::string out = "before";
      AppendCommand(args, &out);
      EXPECT_EQ(out, expected) << count << " arguments of " << size << " bytes";
    }
  }
}

TEST(RespParserTest, DecodesEveryReplyType) {
  RespParser parser;
  parser.Feed("+OK\r\n-ERR wrong\r\n:-42\r\n$3\r\nabc\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
              "*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n$2\r\nxy\r\n");
  std::vector<Reply> r = ParseAll(parser);
  ASSERT_EQ(r.size(), 9u);
  EXPECT_TRUE(r[0].is_status());
  EXPECT_EQ(r[0].str, "OK");
  EXPECT_TRUE(r[1].is_error());
  EXPECT_EQ(r[1].str, "ERR wrong");
  EXPECT_EQ(r[2].integer, -42);
  EXPECT_EQ(r[3].str, "abc");
  EXPECT_TRUE(r[4].is_string());
  EXPECT_EQ(r[4].str, "");
  EXPECT_TRUE(r[5].is_nil());
  EXPECT_TRUE(r[6].is_nil());
  EXPECT_TRUE(r[7].is_array());
  EXPECT_TRUE(r[7].elements.empty());
  ASSERT_TRUE(r[8].is_array());
  ASSERT_EQ(r[8].elements.size(), 3u);
  EXPECT_EQ(r[8].elements[1].elements[0].str, "a");
  EXPECT_TRUE(r[8].elements[1].elements[1].is_nil());
  EXPECT_EQ(r[8].elements[2].str, "xy");
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(RespParserTest, ByteAtATimeGivesTheSameReplies) {
  const std::string stream = "*2\r\n$5\r\nhe\r\nl\r\n:7\r\n+PONG\r\n";
  RespParser parser;
  std::vector<Reply> got;
  for (char c : stream) {
    parser.Feed(&c, 1);
    for (Reply& r : ParseAll(parser)) got.push_back(std::move(r));
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].elements[0].str, "he\r\nl") << "a bulk may contain CRLF";
  EXPECT_EQ(got[0].elements[1].integer, 7);
  EXPECT_EQ(got[1].str, "PONG");
}

TEST(RespParserTest, GarbageIsAProtocolErrorAndStaysOne) {
  RespParser parser;
  parser.Feed("HTTP/1.1 400 Bad Request\r\n\r\n");
  absl::StatusOr<std::optional<Reply>> r = parser.Next();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("protocol error"), absl::string_view::npos) << r.status();
  parser.Feed("+OK\r\n");
  EXPECT_FALSE(parser.Next().ok()) << "a broken stream is never trusted again";
}

TEST(RespParserTest, BadLengthIsAProtocolError) {
  RespParser parser;
  parser.Feed("$abc\r\n");
  EXPECT_FALSE(parser.Next().ok());
}

TEST(RespParserTest, AReplyLargerThanTheBoundIsRefused) {
  RespParser parser(/*max_reply_bytes=*/1024);
  parser.Feed("$1000000\r\n");
  parser.Feed(std::string(2000, 'x'));
  absl::StatusOr<std::optional<Reply>> r = parser.Next();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("larger than 1024"), absl::string_view::npos) << r.status();
}

std::string Bulks(int n, size_t size) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += "$" + std::to_string(size) + "\r\n" + std::string(size, 'x') + "\r\n";
  }
  return out;
}

// hiredis 0.14 would calloc a table of 10^8 pointers (800 MB) for this line
// alone and then take one reply object per element the server sends.
TEST(RespParserTest, AHugeDeclaredArrayFailsAtItsDeclaration) {
  RespParser parser;
  parser.Feed("*100000000\r\n");
  absl::StatusOr<std::optional<Reply>> r = parser.Next();
  ASSERT_FALSE(r.ok()) << "refused before any element arrives";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(r.status().message(),
            "protocol error: reply has more than 1048576 elements (max_reply_elements); "
            "an array declared 100000000");
  parser.Feed(":1\r\n");
  EXPECT_FALSE(parser.Next().ok()) << "and the stream stays broken";
}

TEST(RespParserTest, ElementsAreCountedOverEveryArrayOfOneReply) {
  RespParser parser(RespParser::kDefaultMaxReplyBytes, /*max_reply_elements=*/10);
  // 2 + 4 + 4 = 10 elements: at the bound.
  parser.Feed("*2\r\n*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n*4\r\n:1\r\n:2\r\n:3\r\n$-1\r\n");
  std::vector<Reply> ok = ParseAll(parser);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].elements[1].elements.size(), 4u);
  // The count starts again with each reply; 2 + 4 + 5 = 11 is one too many.
  parser.Feed("*2\r\n*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n*5\r\n");
  absl::StatusOr<std::optional<Reply>> r = parser.Next();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("more than 10 elements (max_reply_elements)"),
            absl::string_view::npos) << r.status();
}

TEST(RespParserTest, TheStringsOfOneReplyAreBoundedTogether) {
  RespParser parser(/*max_reply_bytes=*/1000);
  // Three replies of 400 bytes each pass; one array of three does not, though
  // no single bulk (nor what is buffered at any time) reaches the bound.
  parser.Feed(Bulks(3, 400));
  EXPECT_EQ(ParseAll(parser).size(), 3u);
  parser.Feed("*3\r\n");
  for (int i = 0; i < 2; ++i) {
    parser.Feed(Bulks(1, 400));
    absl::StatusOr<std::optional<Reply>> r = parser.Next();
    ASSERT_TRUE(r.ok()) << "bulk " << i << ": " << r.status();
    EXPECT_FALSE(r->has_value());
  }
  parser.Feed(Bulks(1, 400));
  absl::StatusOr<std::optional<Reply>> r = parser.Next();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "protocol error: reply larger than 1000 bytes (max_reply_bytes)");
}

TEST(RespParserTest, TheIncompleteRestCountsWithWhatWasDecoded) {
  RespParser parser(/*max_reply_bytes=*/1000);
  parser.Feed("*2\r\n" + Bulks(1, 600) + "$600\r\n" + std::string(300, 'x'));
  absl::StatusOr<std::optional<Reply>> r = parser.Next();
  ASSERT_TRUE(r.ok()) << "600 decoded + 306 buffered: " << r.status();
  parser.Feed(std::string(200, 'x'));
  r = parser.Next();
  ASSERT_FALSE(r.ok()) << "600 decoded + 506 buffered";
  EXPECT_NE(r.status().message().find("larger than 1000 bytes"), absl::string_view::npos)
      << r.status();
}

TEST(Sha1Test, MatchesPublishedVectors) {
  EXPECT_EQ(crypto::Sha1Hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(crypto::Sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(crypto::Sha1Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(crypto::Sha1Hex(std::string(1000000, 'a')), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // Lengths around the padding boundary (55, 56, 63, 64 bytes) all differ.
  EXPECT_NE(crypto::Sha1Hex(std::string(55, 'a')), crypto::Sha1Hex(std::string(56, 'a')));
  EXPECT_EQ(crypto::Sha1Hex(std::string(64, 'a')), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

TEST(RedisScriptTest, CallIsEvalshaWithKeysThenArgs) {
  auto script = RedisScript::Create("return 1");
  RedisCommand c = script->Call({"k1", "k2"}, {"a"});
  EXPECT_EQ(c.args, (std::vector<std::string>{"EVALSHA", script->sha1(), "2", "k1", "k2", "a"}));
  EXPECT_EQ(c.script, script);
  EXPECT_EQ(script->sha1(), crypto::Sha1Hex("return 1"));
}

TEST(RedisErrorTest, RetryableErrorsAreUnavailable) {
  EXPECT_EQ(ErrorReplyToStatus("LOADING Redis is loading").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReplyToStatus("READONLY You can't write").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReplyToStatus("MOVED 3999 127.0.0.1:6381").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReplyToStatus("NOAUTH Authentication required.").code(),
            absl::StatusCode::kUnavailable);
}

TEST(RedisErrorTest, OtherErrorsKeepTheServersMessage) {
  absl::Status s = ErrorReplyToStatus("ERR unknown command 'FOO'");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "redis: ERR unknown command 'FOO'");
  EXPECT_EQ(ErrorReplyToStatus("OOM command not allowed").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorReplyToStatus("ASKING is fine").code(), absl::StatusCode::kInternal)
      << "only the whole word ASK is a redirection";
}

}  // namespace
}  // namespace stateside::redis

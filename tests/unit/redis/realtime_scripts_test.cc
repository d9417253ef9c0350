// Every realtime Lua script touches only the keys it is given: each
// redis.call / redis.pcall names its key as a literal KEYS[n] (or is a
// keyless command), so no key is derived inside Lua. Redis Cluster needs
// this (a script may only touch declared keys of one slot), and a
// single-node cluster does not check it for scripts without a shebang
// (redis_broker_cluster_test checks the slots of what is declared).
#include "sidecar/redis/realtime_scripts.h"

#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace stateside::redis {
namespace {

// The top-level arguments of the call that opens at `open` (the '(').
std::vector<std::string> Arguments(std::string_view source, size_t open) {
  std::vector<std::string> args(1);
  int depth = 0;
  char quote = 0;
  for (size_t i = open + 1; i < source.size(); ++i) {
    const char c = source[i];
    if (quote != 0) {
      if (c == '\\' && i + 1 < source.size()) {
        args.back() += c;
        args.back() += source[++i];
        continue;
      }
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '(' || c == '{' || c == '[') {
      ++depth;
    } else if (c == ')' || c == '}' || c == ']') {
      if (depth == 0) break;
      --depth;
    } else if (c == ',' && depth == 0) {
      args.emplace_back();
      continue;
    }
    args.back() += c;
  }
  for (std::string& a : args) a = std::string(absl::StripAsciiWhitespace(a));
  return args;
}

// Each call whose key is not a literal KEYS[n], described.
std::vector<std::string> UndeclaredKeys(std::string_view source) {
  std::vector<std::string> bad;
  for (size_t at = source.find("redis."); at != std::string_view::npos;
       at = source.find("redis.", at + 1)) {
    const std::string_view rest = source.substr(at);
    size_t open;
    if (rest.starts_with("redis.call(")) {
      open = at + 10;
    } else if (rest.starts_with("redis.pcall(")) {
      open = at + 11;
    } else {
      continue;  // redis.error_reply and the like
    }
    const std::vector<std::string> args = Arguments(source, open);
    std::string command = args[0];
    if (command.size() < 2 || (command.front() != '\'' && command.front() != '"')) {
      bad.push_back(absl::StrCat("command not a literal: ", command));
      continue;
    }
    command = absl::AsciiStrToUpper(command.substr(1, command.size() - 2));
    // Keyless; SPUBLISH's channel shares the room's slot by its name
    // (redis_sharded_pubsub_test runs it on a real Cluster).
    if (command == "PUBLISH" || command == "SPUBLISH" || command == "TIME") continue;
    const size_t key_at = command == "XINFO" ? 2 : 1;          // XINFO STREAM <key>
    const std::string key = key_at < args.size() ? args[key_at] : "";
    static const std::regex kDeclared(R"(KEYS\[[0-9]+\])");
    if (!std::regex_match(key, kDeclared)) {
      bad.push_back(absl::StrCat(command, " on ", key));
    }
  }
  return bad;
}

TEST(RealtimeScriptsTest, EveryScriptTouchesOnlyItsDeclaredKeys) {
  const std::string publish = realtime_scripts::PublishStream(false);
  const std::string append_user = realtime_scripts::AppendUserStream();
  const struct {
    const char* name;
    const char* source;
  } scripts[] = {
      {"index_add", realtime_scripts::kIndexAdd},
      {"index_remove", realtime_scripts::kIndexRemove},
      {"dead_index", realtime_scripts::kDeadIndex},
      {"drop_swept", realtime_scripts::kDropSwept},
      {"publish_stream", publish.c_str()},
      {"append_user_stream", append_user.c_str()},
      {"history", realtime_scripts::kHistory},
  };
  int calls = 0;
  for (const auto& script : scripts) {
    const std::string_view source = script.source;
    for (size_t at = source.find("redis."); at != std::string_view::npos;
         at = source.find("redis.", at + 1)) {
      calls += source.substr(at).starts_with("redis.call(") ? 1 : 0;
    }
    EXPECT_EQ(UndeclaredKeys(source), std::vector<std::string>()) << script.name;
  }
  EXPECT_GT(calls, 25) << "the check no longer finds the calls";
}

TEST(RealtimeScriptsTest, TheShardedStreamPublishDiffersOnlyBySpublish) {
  const std::string classic = realtime_scripts::PublishStream(false);
  const std::string sharded = realtime_scripts::PublishStream(true);
  EXPECT_NE(sharded.find("redis.call('SPUBLISH', ARGV[1], "), std::string::npos);
  EXPECT_EQ(sharded.find("'PUBLISH'"), std::string::npos);
  std::string back = sharded;
  back.replace(back.find("'SPUBLISH'"), 10, "'PUBLISH'");
  EXPECT_EQ(back, classic);
  EXPECT_EQ(UndeclaredKeys(sharded), std::vector<std::string>());
}

TEST(RealtimeScriptsTest, TheCheckCatchesKeysBuiltInsideLua) {
  // The previous layout's sweep and liveness checks.
  EXPECT_EQ(UndeclaredKeys("redis.call('HDEL', p .. 'rt:room:' .. tag, field)"),
            std::vector<std::string>{"HDEL on p .. 'rt:room:' .. tag"});
  EXPECT_EQ(UndeclaredKeys("if redis.call('EXISTS', ARGV[1] .. 'rt:alive:' .. inst) == 1"),
            std::vector<std::string>{"EXISTS on ARGV[1] .. 'rt:alive:' .. inst"});
  EXPECT_EQ(UndeclaredKeys("redis.pcall('XINFO', 'STREAM', KEYS[i])"),
            std::vector<std::string>{"XINFO on KEYS[i]"});
  EXPECT_EQ(UndeclaredKeys("redis.call(cmd, KEYS[1])"),
            std::vector<std::string>{"command not a literal: cmd"});
  EXPECT_TRUE(UndeclaredKeys("redis.call('PUBLISH', ARGV[1], 'x') redis.call('GET', KEYS[2])")
                  .empty());
}

}  // namespace
}  // namespace stateside::redis

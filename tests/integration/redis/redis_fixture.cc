// Shared redis-server and helpers for the Redis integration tests.
#include "tests/integration/redis/redis_fixture.h"

#include <unistd.h>

#include <atomic>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace stateside::testing {

redis::RedisOptions FastRedisOptions() {
  redis::RedisOptions o;
  o.connect_timeout = absl::Seconds(1);
  o.command_timeout = absl::Seconds(2);
  o.backoff_initial = absl::Milliseconds(10);
  o.backoff_max = absl::Milliseconds(200);
  return o;
}

RedisServer* SharedRedisServer() {
  // Destroyed (the process killed) at exit, after the shared client.
  static std::unique_ptr<RedisServer> server = [] {
    absl::StatusOr<std::unique_ptr<RedisServer>> s = RedisServer::Start();
    if (!s.ok()) {
      std::cerr << "cannot start redis-server: " << s.status() << "\n";
      return std::unique_ptr<RedisServer>();
    }
    return *std::move(s);
  }();
  return server.get();
}

redis::RedisClient* SharedRedisClient() {
  static std::unique_ptr<redis::RedisClient> client = [] {
    RedisServer* server = SharedRedisServer();
    return server == nullptr ? nullptr : ConnectedClient(server->url());
  }();
  return client.get();
}

std::unique_ptr<redis::RedisClient> ConnectedClient(const std::string& url,
                                                    redis::RedisOptions options) {
  absl::StatusOr<std::unique_ptr<redis::RedisClient>> c =
      redis::RedisClient::FromUrl(url, std::move(options));
  if (!c.ok()) {
    std::cerr << "redis client: " << c.status() << "\n";
    return nullptr;
  }
  if (!(*c)->WaitConnected(absl::Seconds(10))) {
    std::cerr << "redis client not connected: " << (*c)->last_error() << "\n";
    return nullptr;
  }
  return *std::move(c);
}

std::string UniquePrefix() {
  static std::atomic<int> counter{0};
  return absl::StrCat("t", counter.fetch_add(1), "-", getpid(), ":");
}

std::string DumpEverything(redis::RedisClient& client, const std::string& prefix,
                           int* key_count) {
  std::string dump;
  int keys = 0;
  std::string cursor = "0";
  do {
    absl::StatusOr<redis::Reply> page =
        client.Call({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    if (!page.ok() || page->elements.size() != 2) return "<scan failed>";
    cursor = page->elements[0].str;
    for (const redis::Reply& key : page->elements[1].elements) {
      ++keys;
      absl::StrAppend(&dump, "key ", key.str, "\n");
      absl::StatusOr<redis::Reply> type = client.Call({"TYPE", key.str});
      const std::string t = type.ok() ? type->str : "?";
      absl::StatusOr<redis::Reply> content;
      if (t == "hash") content = client.Call({"HGETALL", key.str});
      if (t == "zset") content = client.Call({"ZRANGE", key.str, "0", "-1", "WITHSCORES"});
      if (t == "string") content = client.Call({"GET", key.str});
      if (content.ok()) {
        for (const redis::Reply& e : content->elements) absl::StrAppend(&dump, e.str, "\n");
        absl::StrAppend(&dump, content->str, "\n");
      }
      absl::StatusOr<redis::Reply> raw = client.Call({"DUMP", key.str});
      if (raw.ok()) absl::StrAppend(&dump, raw->str, "\n");
    }
  } while (cursor != "0");
  if (key_count != nullptr) *key_count = keys;
  return dump;
}

}  // namespace stateside::testing

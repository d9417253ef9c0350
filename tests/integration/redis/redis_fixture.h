// Shared pieces of the Redis integration tests: a redis-server per test
// binary (started on first use, killed at exit), clients with test-friendly
// timeouts, unique key prefixes and a raw key dump for "nothing in the clear"
// checks.
#ifndef STATESIDE_TESTS_INTEGRATION_REDIS_REDIS_FIXTURE_H_
#define STATESIDE_TESTS_INTEGRATION_REDIS_REDIS_FIXTURE_H_

#include <memory>
#include <string>

#include "sidecar/redis/redis_client.h"
#include "tests/support/redis_server.h"

namespace stateside::testing {

// Short timeouts and backoff so fault tests finish quickly.
redis::RedisOptions FastRedisOptions();

// The binary's shared server (nullptr if it could not start; the reason is
// printed) and a connected client on it.
RedisServer* SharedRedisServer();
redis::RedisClient* SharedRedisClient();

// A client for `url` that is connected (nullptr + printed reason otherwise).
std::unique_ptr<redis::RedisClient> ConnectedClient(
    const std::string& url, redis::RedisOptions options = FastRedisOptions());

// "t<counter>-<pid>:", unique within the binary and across parallel binaries.
std::string UniquePrefix();

// Every key under `prefix` (SCAN), and a dump of what each holds: HGETALL,
// ZRANGE WITHSCORES or GET by type, plus DUMP (the RDB serialisation).
std::string DumpEverything(redis::RedisClient& client, const std::string& prefix,
                           int* key_count);

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_INTEGRATION_REDIS_REDIS_FIXTURE_H_

// REDIS_URL in every topology: any string parses or is refused with a
// message that never contains the password it may hold.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sidecar/redis/redis_options.h"
#include "tests/fuzz/fuzz_check.h"

using stateside::redis::RedisOptions;
using stateside::redis::RedisTopology;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string url(reinterpret_cast<const char*>(data), size);
  for (RedisTopology t : {RedisTopology::kStandalone, RedisTopology::kCluster,
                          RedisTopology::kSentinel}) {
    RedisOptions base;
    base.topology = t;
    auto parsed = stateside::redis::ParseRedisUrl(url, base);
    if (parsed.ok()) {
      FUZZ_CHECK(parsed->topology == t);
      FUZZ_CHECK(t == RedisTopology::kStandalone ? parsed->nodes.empty() : !parsed->nodes.empty());
      // The description shows the credentials as "user:***@" only.
      if (!parsed->password.empty()) {
        FUZZ_CHECK(parsed->Describe().find(parsed->username + ":***@") != std::string::npos);
      }
    }
  }
  return 0;
}

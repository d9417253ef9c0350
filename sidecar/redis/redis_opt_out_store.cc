// RedisOptOutStore: "<prefix>o:{<tag>}" = expiry (µs since the epoch), with a
// PEXPIRE of (expiry - now) as garbage collection. The stored expiry, not
// Redis's clock, decides, so instances with skewed clocks agree with their own
// `now` as in the memory store. See docs/REDIS_KEYS.md.
#include "sidecar/redis/redis_opt_out_store.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/status_macros.h"

namespace stateside::redis {

RedisOptOutStore::RedisOptOutStore(RedisClient* client, std::string prefix)
    : client_(client), prefix_(std::move(prefix)) {}

std::string RedisOptOutStore::Key(std::string_view tag) const {
  return absl::StrCat(prefix_, "o:{", absl::string_view(tag.data(), tag.size()), "}");
}

absl::Status RedisOptOutStore::Set(std::string_view tag, bool opted_out, absl::Time now,
                                   absl::Time expiry) {
  // A flag that would already be expired is the same as no flag.
  if (!opted_out || expiry <= now) {
    return client_->Call(RedisCommand({"DEL", Key(tag)})).status();
  }
  const int64_t ms = std::max<int64_t>(
      1, absl::ToInt64Milliseconds(absl::Ceil(expiry - now, absl::Milliseconds(1))));
  return client_
      ->Call(RedisCommand({"SET", Key(tag), std::to_string(absl::ToUnixMicros(expiry)), "PX",
                           std::to_string(ms)}))
      .status();
}

absl::StatusOr<bool> RedisOptOutStore::Get(std::string_view tag, absl::Time now) {
  ASSIGN_OR_RETURN(Reply reply, client_->Call(RedisCommand({"GET", Key(tag)})));
  if (reply.is_nil()) return false;
  int64_t expiry_us = 0;
  if (!reply.is_string() || !absl::SimpleAtoi(reply.str, &expiry_us)) {
    return absl::InternalError("redis opt-out store: unexpected value");
  }
  return now < absl::FromUnixMicros(expiry_us);
}

}  // namespace stateside::redis

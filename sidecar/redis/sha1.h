// SHA-1 as Redis names scripts (EVALSHA). Used only to name Lua scripts, never
// for security, so it lives here rather than in the crypto module. Pure
// function; thread-safe.
#ifndef STATESIDE_SIDECAR_REDIS_SHA1_H_
#define STATESIDE_SIDECAR_REDIS_SHA1_H_

#include <string>
#include <string_view>

namespace stateside::redis {

// Lower-case hex SHA-1 of `data` (40 chars), as SCRIPT LOAD returns it.
std::string Sha1Hex(std::string_view data);

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_SHA1_H_

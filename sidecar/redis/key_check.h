// Key check values in Redis: every sidecar sharing a Redis must hold the same
// key bytes under each key id, or what one seals the other cannot open. Under
//
//   <p>kcv:<key id>   string: Keyring::CheckValue of the key (16 hex chars)
//
// the first sidecar to see a key id publishes its check value (SET NX, no
// expiry: a key id names one key for good); every sidecar compares its own
// with what is stored, at start and whenever its Redis connection comes back.
// A key id whose stored value differs is a mismatch: the same id names other
// key bytes on another instance. The check value is not secret in the way the
// key is (8 bytes of an HMAC under the key), but it is never logged whole.
//
// Thread-safe (stateless functions over a thread-safe client).
#ifndef STATESIDE_SIDECAR_REDIS_KEY_CHECK_H_
#define STATESIDE_SIDECAR_REDIS_KEY_CHECK_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/redis/redis_client.h"

namespace stateside::redis {

// The Redis key of a key id's check value.
std::string KeyCheckKey(std::string_view prefix, std::string_view key_id);

// Publishes and compares the check value of every key of `keyring`: one
// pipelined round trip (SET NX and GET per key). Returns the ids that
// mismatch (empty: all agree). Redis errors pass through (UNAVAILABLE...).
// Blocking; REQUIRES: not on the client's I/O thread.
absl::StatusOr<std::vector<std::string>> CheckKeys(RedisClient* client,
                                                   std::string_view prefix,
                                                   const crypto::Keyring& keyring);

// The same without blocking, for the client's state listener (I/O thread).
// `done` runs once, on the I/O thread; it must not block. REQUIRES: keyring
// outlives the call.
void CheckKeysAsync(RedisClient* client, std::string_view prefix,
                    const crypto::Keyring& keyring,
                    absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)> done);

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_KEY_CHECK_H_

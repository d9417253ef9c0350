// The RESP2 codec: commands out, replies in. hiredis 0.14 does the byte work
// (redisFormatCommandArgv, redisReader*); this is the only file pair that
// touches hiredis types. Not thread-safe: a RespParser belongs to one
// connection, used on its I/O thread.
#ifndef STATESIDE_SIDECAR_REDIS_RESP_H_
#define STATESIDE_SIDECAR_REDIS_RESP_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sidecar/redis/reply.h"

struct redisReader;

namespace stateside::redis {

// Appends the RESP encoding of one command (a multi-bulk of its arguments,
// binary-safe) to *out.
void AppendCommand(const std::vector<std::string>& args, std::string* out);
std::string EncodeCommand(const std::vector<std::string>& args);

// Incremental reply decoder. Feed bytes as they arrive, then call Next()
// until it returns nullopt (needs more bytes).
class RespParser {
 public:
  // max_buffered: bytes of a not-yet-complete reply we accept before calling
  // the stream broken (a hostile or broken server cannot make us buffer
  // without bound).
  explicit RespParser(size_t max_buffered = 64u << 20);
  ~RespParser();
  RespParser(const RespParser&) = delete;
  RespParser& operator=(const RespParser&) = delete;

  void Feed(const char* data, size_t n);
  void Feed(std::string_view data) { Feed(data.data(), data.size()); }

  // The next complete reply, nullopt if more bytes are needed, or
  // INTERNAL("protocol error: ...") if the stream is not RESP. After an error
  // the parser is unusable (the connection must be reset).
  absl::StatusOr<std::optional<Reply>> Next();

  // Bytes fed but not yet consumed by a returned reply.
  size_t buffered() const;

 private:
  redisReader* reader_;
  const size_t max_buffered_;
  bool failed_ = false;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_RESP_H_

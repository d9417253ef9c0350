// The RESP2 codec: commands out (encoded here, straight into the caller's
// buffer), replies in (hiredis 0.14's redisReader* does the parsing, its
// object callbacks build our Reply); this is the only file pair that
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
struct redisReadTask;

namespace stateside::redis {

// Appends the RESP encoding of one command (a multi-bulk of its arguments,
// binary-safe) to *out.
void AppendCommand(const std::vector<std::string>& args, std::string* out);
std::string EncodeCommand(const std::vector<std::string>& args);

// Incremental reply decoder. Feed bytes as they arrive, then call Next()
// until it returns nullopt (needs more bytes).
//
// Each reply is bounded, so a hostile or broken server cannot make us
// allocate without bound:
// - max_reply_bytes: the string bytes of one reply (bulk, status and error
//   payloads of every element, decoded so far) plus the bytes buffered for
//   its incomplete rest. A single huge bulk and an array of many large bulks
//   are both caught, before the rest arrives.
// - max_reply_elements: the elements of one reply, summed over all its
//   arrays at any depth, checked when an array's length is *declared*
//   (`*100000000\r\n` fails there, before hiredis allocates its table).
// Past either bound Next() fails with INTERNAL("protocol error: reply ...
// (max_reply_...)") and the parser stays failed.
class RespParser {
 public:
  static constexpr size_t kDefaultMaxReplyBytes = 64u << 20;
  static constexpr size_t kDefaultMaxReplyElements = 1u << 20;

  explicit RespParser(size_t max_reply_bytes = kDefaultMaxReplyBytes,
                      size_t max_reply_elements = kDefaultMaxReplyElements);
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
  // hiredis's object callbacks (reader privdata = this): count, then build
  // the Reply in place.
  static void* CreateString(const redisReadTask* task, char* str, size_t len);
  static void* CreateArray(const redisReadTask* task, int elements);

  redisReader* reader_;
  const size_t max_reply_bytes_;
  const size_t max_reply_elements_;
  // The reply being decoded: string bytes and elements seen so far.
  size_t reply_bytes_ = 0;
  size_t reply_elements_ = 0;
  std::string bound_error_;  // set when a callback refused: why
  bool failed_ = false;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_RESP_H_

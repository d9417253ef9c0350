// RESP2 encoding and decoding over hiredis 0.14's codec functions.
#include "sidecar/redis/resp.h"

#include <hiredis/hiredis.h>

#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace stateside::redis {
namespace {

// Converts hiredis's reply tree into our value type. Depth is bounded by
// hiredis itself (it rejects nesting deeper than 7).
Reply Convert(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
      return Reply::String(std::string(r->str, r->len));
    case REDIS_REPLY_STATUS:
      return Reply::Status(std::string(r->str, r->len));
    case REDIS_REPLY_ERROR:
      return Reply::Error(std::string(r->str, r->len));
    case REDIS_REPLY_INTEGER:
      return Reply::Integer(r->integer);
    case REDIS_REPLY_ARRAY: {
      std::vector<Reply> elements;
      elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        elements.push_back(r->element[i] ? Convert(r->element[i]) : Reply::Nil());
      }
      return Reply::Array(std::move(elements));
    }
    default:
      return Reply::Nil();
  }
}

// hiredis's own object functions: static in hiredis.c, reachable only
// through a reader created with the defaults.
const redisReplyObjectFunctions& DefaultFunctions() {
  static const redisReplyObjectFunctions defaults = [] {
    redisReplyObjectFunctions fns{};
    if (redisReader* r = redisReaderCreate(); r != nullptr) {
      fns = *r->fn;
      redisReaderFree(r);
    }
    return fns;
  }();
  return defaults;
}

}  // namespace

void AppendCommand(const std::vector<std::string>& args, std::string* out) {
  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  argv.reserve(args.size());
  argvlen.reserve(args.size());
  for (const std::string& a : args) {
    argv.push_back(a.data());
    argvlen.push_back(a.size());
  }
  char* cmd = nullptr;
  const int len = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()),
                                         argv.data(), argvlen.data());
  if (len > 0 && cmd != nullptr) out->append(cmd, static_cast<size_t>(len));
  free(cmd);  // redisFreeCommand is newer than 0.14; the buffer is malloc'd
}

std::string EncodeCommand(const std::vector<std::string>& args) {
  std::string out;
  AppendCommand(args, &out);
  return out;
}

std::string Reply::DebugString() const {
  switch (type) {
    case Type::kNil:
      return "(nil)";
    case Type::kString:
      return absl::StrCat("\"", absl::CHexEscape(str), "\"");
    case Type::kStatus:
      return absl::StrCat("+", str);
    case Type::kError:
      return absl::StrCat("-", str);
    case Type::kInteger:
      return absl::StrCat("(integer) ", integer);
    case Type::kArray: {
      std::vector<std::string> parts;
      for (const Reply& e : elements) parts.push_back(e.DebugString());
      return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
    }
  }
  return "?";
}

// The bounds are checked where hiredis would allocate: a string's bytes
// before they are copied, an array's declared length before its table is
// calloc'ed. Refusing returns NULL, which hiredis reports as "Out of
// memory"; bound_error_ says what really happened.
void* RespParser::CreateString(const redisReadTask* task, char* str, size_t len) {
  auto* self = static_cast<RespParser*>(task->privdata);
  if (len > self->max_reply_bytes_ - self->reply_bytes_) {
    self->bound_error_ = absl::StrCat("reply larger than ", self->max_reply_bytes_,
                                      " bytes (max_reply_bytes)");
    return nullptr;
  }
  self->reply_bytes_ += len;
  return DefaultFunctions().createString(task, str, len);
}

void* RespParser::CreateArray(const redisReadTask* task, int elements) {
  auto* self = static_cast<RespParser*>(task->privdata);
  const size_t n = elements > 0 ? static_cast<size_t>(elements) : 0;
  if (n > self->max_reply_elements_ - self->reply_elements_) {
    self->bound_error_ = absl::StrCat("reply has more than ", self->max_reply_elements_,
                                      " elements (max_reply_elements); an array declared ",
                                      elements);
    return nullptr;
  }
  self->reply_elements_ += n;
  return DefaultFunctions().createArray(task, elements);
}

RespParser::RespParser(size_t max_reply_bytes, size_t max_reply_elements)
    : max_reply_bytes_(max_reply_bytes), max_reply_elements_(max_reply_elements) {
  static redisReplyObjectFunctions bounded = [] {
    redisReplyObjectFunctions fns = DefaultFunctions();
    fns.createString = &RespParser::CreateString;
    fns.createArray = &RespParser::CreateArray;
    return fns;
  }();
  reader_ = DefaultFunctions().createString == nullptr
                ? nullptr
                : redisReaderCreateWithFunctions(&bounded);
  if (reader_ != nullptr) reader_->privdata = this;
}

RespParser::~RespParser() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

void RespParser::Feed(const char* data, size_t n) {
  if (failed_ || reader_ == nullptr) return;
  if (redisReaderFeed(reader_, data, n) != REDIS_OK) failed_ = true;
}

size_t RespParser::buffered() const {
  return reader_ == nullptr ? 0 : reader_->len - reader_->pos;
}

absl::StatusOr<std::optional<Reply>> RespParser::Next() {
  if (reader_ == nullptr) return absl::InternalError("protocol error: out of memory");
  auto failure = [this] {
    failed_ = true;
    return absl::InternalError(absl::StrCat(
        "protocol error: ",
        !bound_error_.empty() ? bound_error_
                              : (reader_->errstr[0] ? reader_->errstr : "bad stream")));
  };
  if (failed_) return failure();
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return failure();
  if (raw == nullptr) {
    // Everything buffered belongs to the incomplete reply (the next one
    // starts only after it).
    if (buffered() > max_reply_bytes_ - reply_bytes_) {
      bound_error_ = absl::StrCat("reply larger than ", max_reply_bytes_,
                                  " bytes (max_reply_bytes)");
      return failure();
    }
    return std::optional<Reply>();
  }
  reply_bytes_ = 0;
  reply_elements_ = 0;
  Reply reply = Convert(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return std::optional<Reply>(std::move(reply));
}

}  // namespace stateside::redis

// RESP2 encoding and decoding over hiredis 0.14's codec functions.
#include "sidecar/redis/resp.h"

#include <hiredis/hiredis.h>

#include <cstring>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace stateside::redis {
namespace {

// The reply object hiredis builds for a task: a new root, or its slot in
// the parent array (sized by CreateArray, so the slots do not move).
// hiredis frees only the root (freeObject), never a child.
Reply* NewObject(const redisReadTask* task, Reply::Type type) {
  Reply* r = task->parent == nullptr
                 ? new Reply()
                 : &static_cast<Reply*>(task->parent->obj)->elements[task->idx];
  r->type = type;
  return r;
}

// The decimal digits of n.
size_t Digits(size_t n) {
  size_t digits = 1;
  while (n >= 10) {
    n /= 10;
    ++digits;
  }
  return digits;
}

// Writes "<marker><n>\r\n" at p; returns the end.
char* PutHeader(char* p, char marker, size_t n) {
  *p++ = marker;
  const size_t digits = Digits(n);
  for (size_t i = digits; i > 0; --i) {
    p[i - 1] = static_cast<char>('0' + n % 10);
    n /= 10;
  }
  p += digits;
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

}  // namespace

// Straight into *out, sized once: no argv tables, no intermediate buffer
// (the same bytes as hiredis's redisFormatCommandArgv).
void AppendCommand(const std::vector<std::string>& args, std::string* out) {
  size_t size = 1 + Digits(args.size()) + 2;
  for (const std::string& a : args) size += 1 + Digits(a.size()) + 2 + a.size() + 2;
  const size_t start = out->size();
  out->resize(start + size);
  char* p = PutHeader(out->data() + start, '*', args.size());
  for (const std::string& a : args) {
    p = PutHeader(p, '$', a.size());
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    p += a.size();
    *p++ = '\r';
    *p++ = '\n';
  }
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

// hiredis's object callbacks build our Reply directly, each string copied
// once out of the reader's buffer (no redisReply tree to convert). The
// bounds are checked where we would allocate: a string's bytes before they
// are copied, an array's declared length before its elements are. Refusing
// returns NULL, which hiredis reports as "Out of memory"; bound_error_ says
// what really happened.
void* RespParser::CreateString(const redisReadTask* task, char* str, size_t len) {
  auto* self = static_cast<RespParser*>(task->privdata);
  if (len > self->max_reply_bytes_ - self->reply_bytes_) {
    self->bound_error_ = absl::StrCat("reply larger than ", self->max_reply_bytes_,
                                      " bytes (max_reply_bytes)");
    return nullptr;
  }
  self->reply_bytes_ += len;
  const Reply::Type type = task->type == REDIS_REPLY_ERROR    ? Reply::Type::kError
                           : task->type == REDIS_REPLY_STATUS ? Reply::Type::kStatus
                                                              : Reply::Type::kString;
  Reply* r = NewObject(task, type);
  r->str.assign(str, len);
  return r;
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
  Reply* r = NewObject(task, Reply::Type::kArray);
  r->elements.resize(n);
  return r;
}

namespace {

void* CreateInteger(const redisReadTask* task, long long value) {  // NOLINT(runtime/int)
  Reply* r = NewObject(task, Reply::Type::kInteger);
  r->integer = value;
  return r;
}

void* CreateNil(const redisReadTask* task) { return NewObject(task, Reply::Type::kNil); }

void FreeObject(void* root) { delete static_cast<Reply*>(root); }

}  // namespace

RespParser::RespParser(size_t max_reply_bytes, size_t max_reply_elements)
    : max_reply_bytes_(max_reply_bytes), max_reply_elements_(max_reply_elements) {
  static redisReplyObjectFunctions functions = {&RespParser::CreateString,
                                                &RespParser::CreateArray, &CreateInteger,
                                                &CreateNil, &FreeObject};
  reader_ = redisReaderCreateWithFunctions(&functions);
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
  std::unique_ptr<Reply> reply(static_cast<Reply*>(raw));
  return std::optional<Reply>(std::move(*reply));
}

}  // namespace stateside::redis

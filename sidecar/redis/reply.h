// A decoded RESP2 reply, owned by value (no hiredis types leak out of resp.cc).
// A plain value type: not synchronised, safe to move between threads.
#ifndef STATESIDE_SIDECAR_REDIS_REPLY_H_
#define STATESIDE_SIDECAR_REDIS_REPLY_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace stateside::redis {

struct Reply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };

  Type type = Type::kNil;
  std::string str;              // kString (bulk), kStatus ("OK"), kError text
  int64_t integer = 0;          // kInteger
  std::vector<Reply> elements;  // kArray

  static Reply Nil() { return Reply{}; }
  static Reply String(std::string s) {
    Reply r;
    r.type = Type::kString;
    r.str = std::move(s);
    return r;
  }
  static Reply Status(std::string s) {
    Reply r;
    r.type = Type::kStatus;
    r.str = std::move(s);
    return r;
  }
  static Reply Integer(int64_t v) {
    Reply r;
    r.type = Type::kInteger;
    r.integer = v;
    return r;
  }
  static Reply Error(std::string s) {
    Reply r;
    r.type = Type::kError;
    r.str = std::move(s);
    return r;
  }
  static Reply Array(std::vector<Reply> e) {
    Reply r;
    r.type = Type::kArray;
    r.elements = std::move(e);
    return r;
  }

  bool is_nil() const { return type == Type::kNil; }
  bool is_string() const { return type == Type::kString; }
  bool is_integer() const { return type == Type::kInteger; }
  bool is_array() const { return type == Type::kArray; }
  bool is_error() const { return type == Type::kError; }
  bool is_status() const { return type == Type::kStatus; }

  // Debug rendering for test failure messages; may contain stored bytes, so
  // never log it in production paths.
  std::string DebugString() const;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REPLY_H_

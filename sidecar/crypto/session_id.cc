// Session id generation and syntax check.
#include "sidecar/crypto/session_id.h"

#include "sidecar/crypto/encoding.h"

namespace stateside::crypto {

absl::StatusOr<std::string> NewSessionId(RandomSource& random) {
  char bytes[kSessionIdBytes];
  absl::Status status = random.Fill(bytes, sizeof(bytes));
  if (!status.ok()) return status;
  return Base64UrlEncode(std::string_view(bytes, sizeof(bytes)));
}

bool IsWellFormedSessionId(std::string_view id) {
  if (id.size() != kSessionIdChars) return false;
  for (char c : id) {
    if (!IsBase64UrlChar(c)) return false;
  }
  return true;
}

}  // namespace stateside::crypto

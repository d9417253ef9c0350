// Memory for long-lived key material (master keys, index keys, envelope
// data keys and their cache; the cookie secrets are keyed into OpenSSL's HMAC
// contexts instead, see cookie.h): pages of their own, mapped with mmap,
// marked MADV_DONTDUMP so that a core dump or gcore leaves them out, and
// wiped before they are unmapped. Transient copies (a data key on the stack,
// OpenSSL's cipher contexts, the parse buffers wiped right after use) are not
// covered.
// Thread-compatible: fill it once, then any number of threads may read it.
#ifndef STATESIDE_SIDECAR_CRYPTO_SECRET_MEMORY_H_
#define STATESIDE_SIDECAR_CRYPTO_SECRET_MEMORY_H_

#include <cstddef>
#include <string_view>

#include "absl/status/statusor.h"

namespace stateside::crypto {

class SecretBuffer {
 public:
  // At least `size` zero bytes (rounded up to whole pages). RESOURCE_EXHAUSTED
  // if the mapping fails; INTERNAL if the kernel refuses MADV_DONTDUMP (a
  // secret must not sit in memory that a dump would include).
  static absl::StatusOr<SecretBuffer> Allocate(size_t size);

  SecretBuffer() = default;
  SecretBuffer(SecretBuffer&& other) noexcept;
  SecretBuffer& operator=(SecretBuffer&& other) noexcept;
  SecretBuffer(const SecretBuffer&) = delete;
  SecretBuffer& operator=(const SecretBuffer&) = delete;
  ~SecretBuffer();  // wipes, then unmaps

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }  // as requested, not rounded
  // bytes [offset, offset + n). REQUIRES: within size().
  std::string_view view(size_t offset, size_t n) const {
    return std::string_view(data_ + offset, n);
  }

 private:
  void Release();
  char* data_ = nullptr;
  size_t size_ = 0;     // requested
  size_t mapped_ = 0;   // whole pages
};

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_SECRET_MEMORY_H_

// Dump-excluded, wiped memory for key material (see secret_memory.h).
#include "sidecar/crypto/secret_memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sidecar/crypto/primitives.h"

namespace stateside::crypto {

absl::StatusOr<SecretBuffer> SecretBuffer::Allocate(size_t size) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t mapped = size == 0 ? page : (size + page - 1) / page * page;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map memory for keys: ", strerror(errno)));
  }
  if (madvise(p, mapped, MADV_DONTDUMP) != 0) {
    const int err = errno;
    munmap(p, mapped);
    return absl::InternalError(
        absl::StrCat("cannot exclude key memory from core dumps: ", strerror(err)));
  }
  SecretBuffer buffer;
  buffer.data_ = static_cast<char*>(p);
  buffer.size_ = size;
  buffer.mapped_ = mapped;
  return buffer;
}

SecretBuffer::SecretBuffer(SecretBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

SecretBuffer& SecretBuffer::operator=(SecretBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

SecretBuffer::~SecretBuffer() { Release(); }

void SecretBuffer::Release() {
  if (data_ == nullptr) return;
  Cleanse(data_, mapped_);
  munmap(data_, mapped_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = 0;
}

}  // namespace stateside::crypto

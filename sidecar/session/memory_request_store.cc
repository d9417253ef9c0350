#include "sidecar/session/memory_request_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/common/string_view.h"

namespace stateside::session {

absl::StatusOr<std::optional<std::string>> MemoryRequestStore::Claim(std::string_view key,
                                                                     std::string_view value,
                                                                     absl::Time now,
                                                                     absl::Time until) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(Sv(key));
  if (it != entries_.end() && now < it->second.until) return it->second.value;
  if (it == entries_.end() && entries_.size() >= max_entries_) {
    absl::erase_if(entries_, [now](const auto& e) { return !(now < e.second.until); });
    if (entries_.size() >= max_entries_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "memory store full: ", max_entries_, " request ids (STATESIDE_MAX_SESSIONS)"));
    }
  }
  entries_.insert_or_assign(std::string(key), Entry{std::string(value), until});
  return std::nullopt;
}

void MemoryRequestStore::Replace(std::string_view key, std::string_view expected,
                                 std::string_view value, absl::Time now, absl::Time until,
                                 Done done) {
  bool replaced = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(Sv(key));
    if (it != entries_.end() && now < it->second.until && it->second.value == expected) {
      replaced = true;
      if (value.empty()) {
        entries_.erase(it);
      } else {
        it->second = Entry{std::string(value), until};
      }
    }
  }
  std::move(done)(replaced);
}

size_t MemoryRequestStore::Sweep(absl::Time now) {
  absl::MutexLock lock(&mu_);
  return absl::erase_if(entries_, [now](const auto& e) { return !(now < e.second.until); });
}

size_t MemoryRequestStore::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace stateside::session

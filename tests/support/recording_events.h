// A SessionEvents that counts every event by name ("created",
// "not_found:<cause>", "decrypt_failed:<reason>", "key:<id>", ...), for the
// session rules' tests over any store. Header-only; thread-safe.
#ifndef STATESIDE_TESTS_SUPPORT_RECORDING_EVENTS_H_
#define STATESIDE_TESTS_SUPPORT_RECORDING_EVENTS_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/session/session_events.h"

namespace stateside::testing {

// Counts every event; thread-safe.
class RecordingEvents final : public session::SessionEvents {
 public:
  void SessionCreated() override { Bump("created"); }
  void SessionDestroyed() override { Bump("destroyed"); }
  void SessionExpired() override { Bump("expired"); }
  void SessionNotFound(session::NotFoundCause cause) override {
    Bump(std::string("not_found:") + std::string(session::NotFoundCauseName(cause)));
  }
  void DecryptFailed(std::string_view reason) override {
    Bump("decrypt_failed:" + std::string(reason));
  }
  void KeyUsedForRead(std::string_view key_id) override {
    Bump("key:" + std::string(key_id));
  }
  void VersionConflict() override { Bump("conflict"); }

  int count(const std::string& name) const {
    absl::MutexLock lock(&mu_);
    auto it = counts_.find(name);
    return it == counts_.end() ? 0 : it->second;
  }
  int not_found(session::NotFoundCause cause) const {
    return count("not_found:" + std::string(session::NotFoundCauseName(cause)));
  }
  int total_not_found() const {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& [name, c] : counts_) {
      if (name.rfind("not_found:", 0) == 0) n += c;
    }
    return n;
  }
  void Reset() {
    absl::MutexLock lock(&mu_);
    counts_.clear();
  }

 private:
  void Bump(const std::string& name) {
    absl::MutexLock lock(&mu_);
    ++counts_[name];
  }
  mutable absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_RECORDING_EVENTS_H_

// Instance identity (id generation, hostname, version) and live status.
#include "sidecar/lifecycle/instance.h"

#include <unistd.h>

#include <climits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/status_macros.h"

#ifndef STATESIDE_VERSION
#define STATESIDE_VERSION "0.0.0-dev"
#endif

namespace stateside::lifecycle {
namespace {

constexpr size_t kMaxInstanceIdBytes = 128;
// Leaves room for "-<pid>-xxxxxx" within kMaxInstanceIdBytes.
constexpr size_t kMaxHostnameInIdBytes = 96;

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
         c == '-';
}

std::string Hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof(buf)) != 0) return "localhost";
  buf[HOST_NAME_MAX] = '\0';
  std::string name(buf);
  return name.empty() ? "localhost" : name;
}

}  // namespace

std::string_view Version() { return STATESIDE_VERSION; }

absl::Status ValidateInstanceId(std::string_view id) {
  if (id.empty() || id.size() > kMaxInstanceIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be 1..", kMaxInstanceIdBytes, " characters"));
  }
  for (char c : id) {
    if (!IsIdChar(c)) {
      return absl::InvalidArgumentError(
          "may contain only letters, digits and . _ : -");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<InstanceIdentity> MakeIdentity(std::string_view configured_id,
                                              RandomSource& random,
                                              absl::Time now) {
  InstanceIdentity identity;
  identity.hostname = Hostname();
  identity.pid = static_cast<int64_t>(getpid());
  identity.start_time = now;
  identity.version = std::string(Version());
  if (!configured_id.empty()) {
    RETURN_IF_ERROR(ValidateInstanceId(configured_id));
    identity.id = std::string(configured_id);
    return identity;
  }
  // Hostnames are [A-Za-z0-9.-] by RFC 1123, but nothing enforces that on
  // gethostname(); keep the id valid whatever the kernel says.
  std::string host = identity.hostname.substr(0, kMaxHostnameInIdBytes);
  for (char& c : host) {
    if (!IsIdChar(c)) c = '-';
  }
  ASSIGN_OR_RETURN(std::string suffix, RandomBytes(random, 3));
  identity.id =
      absl::StrCat(host, "-", identity.pid, "-", absl::BytesToHexString(suffix));
  return identity;
}

absl::Duration Instance::Uptime() const {
  const absl::Duration d = clock_->Now() - identity_.start_time;
  return d < absl::ZeroDuration() ? absl::ZeroDuration() : d;
}

bool Instance::ready() const {
  absl::MutexLock lock(&mu_);
  return ready_;
}

void Instance::set_ready(bool ready) {
  absl::MutexLock lock(&mu_);
  ready_ = ready;
}

DrainState Instance::drain_state() const {
  absl::MutexLock lock(&mu_);
  return drain_state_;
}

void Instance::set_drain_state(DrainState state) {
  absl::MutexLock lock(&mu_);
  drain_state_ = state;
}

std::string Instance::backend() const {
  absl::MutexLock lock(&mu_);
  return backend_;
}

void Instance::set_backend(std::string backend) {
  absl::MutexLock lock(&mu_);
  backend_ = std::move(backend);
}

std::string Instance::admin_address() const {
  absl::MutexLock lock(&mu_);
  return admin_address_;
}

void Instance::set_admin_address(std::string address) {
  absl::MutexLock lock(&mu_);
  admin_address_ = std::move(address);
}

}  // namespace stateside::lifecycle

// Value syntaxes of the configuration: durations, booleans, integers,
// host:port, Redis URLs and secret files.
#include "sidecar/server/config_values.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace stateside::config_values {
namespace {

// Durations beyond this are surely a typo, and keeping them far from
// absl::InfiniteDuration keeps every `now + ttl` finite.
constexpr absl::Duration kMaxDuration = absl::Hours(24 * 365 * 100);
constexpr size_t kMaxSecretFileBytes = 64 * 1024;

absl::Status BadDuration(absl::string_view text) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid duration \"", text,
      "\": use a number and a unit (ns, us, ms, s, m, h, d), e.g. 30s, 15m, "
      "24h, 7d"));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Opens `path` for reading, refusing directories. Returns the fd or an error
// naming the path.
absl::StatusOr<int> OpenForReading(const std::string& path) {
  // O_NONBLOCK: a FIFO without a writer must not block the start.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read \"", path, "\": ", strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read \"", path, "\": not a regular file"));
  }
  return fd;
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  const absl::string_view s = absl::StripAsciiWhitespace(text);
  if (s == "0") return absl::ZeroDuration();
  if (s.empty()) return BadDuration(text);
  absl::Duration total = absl::ZeroDuration();
  size_t i = 0;
  while (i < s.size()) {
    const size_t number_start = i;
    while (i < s.size() && (IsDigit(s[i]) || s[i] == '.')) ++i;
    const absl::string_view number = s.substr(number_start, i - number_start);
    const size_t unit_start = i;
    while (i < s.size() && IsAlpha(s[i])) ++i;
    const absl::string_view unit = s.substr(unit_start, i - unit_start);
    if (number.empty() || unit.empty()) return BadDuration(text);
    absl::Duration part;
    if (unit == "d") {
      double days = 0;
      if (!absl::SimpleAtod(number, &days)) return BadDuration(text);
      // Hours(days * 24) saturates to InfiniteDuration on overflow, which
      // the bound below rejects.
      part = absl::Hours(days * 24);
    } else if (!absl::ParseDuration(absl::StrCat(number, unit), &part)) {
      return BadDuration(text);
    }
    total += part;
    if (total > kMaxDuration) {
      return absl::InvalidArgumentError(
          absl::StrCat("duration \"", text, "\" is too long (max 36500d)"));
    }
  }
  return total;
}

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  const std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid boolean \"", text, "\": use true or false"));
}

absl::StatusOr<int64_t> ParseInt(absl::string_view text, int64_t min,
                                 int64_t max) {
  const absl::string_view s = absl::StripAsciiWhitespace(text);
  int64_t value = 0;
  // SimpleAtoi accepts a leading '+'; a count is plain digits.
  bool digits_only = !s.empty();
  for (char c : s) digits_only = digits_only && (IsDigit(c) || c == '-');
  if (!digits_only || !absl::SimpleAtoi(s, &value) || value < min ||
      value > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid number \"", text, "\": want an integer in [", min, ", ", max,
        "]"));
  }
  return value;
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid address \"", text, "\": want host:port"));
  }
  absl::string_view host = text.substr(0, colon);
  const absl::string_view port_text = text.substr(colon + 1);
  if (absl::StartsWith(host, "[")) {
    if (!absl::EndsWith(host, "]") || host.size() < 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid address \"", text, "\": unbalanced brackets"));
    }
    host = host.substr(1, host.size() - 2);
  } else if (absl::StrContains(host, ':')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid address \"", text, "\": put IPv6 addresses in brackets, "
        "e.g. [::1]:9464"));
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid address \"", text, "\": empty host"));
  }
  for (char c : host) {
    if (!IsDigit(c) && !IsAlpha(c) && c != '.' && c != '-' && c != '_' &&
        c != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid address \"", text, "\": bad host"));
    }
  }
  auto port = ParseInt(port_text, 0, 65535);
  if (!port.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid address \"", text, "\": port must be 0..65535"));
  }
  return HostPort{std::string(host), static_cast<int>(*port)};
}

std::string MaskRedisUrl(absl::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return std::string(url);
  const size_t start = scheme_end + 3;
  const size_t at = url.rfind('@');
  if (at == absl::string_view::npos || at < start) return std::string(url);
  const absl::string_view userinfo = url.substr(start, at - start);
  const size_t colon = userinfo.find(':');
  // "user:pass" keeps the user; a lone item may be a password (some clients
  // read redis://secret@host that way), so it is masked entirely.
  const std::string masked =
      colon == absl::string_view::npos
          ? "***"
          : absl::StrCat(userinfo.substr(0, colon), ":***");
  return absl::StrCat(url.substr(0, start), masked, url.substr(at));
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  auto fd = OpenForReading(path);
  if (!fd.ok()) return fd.status();
  std::string contents;
  char buf[4096];
  while (contents.size() <= kMaxSecretFileBytes) {
    const ssize_t n = read(*fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(*fd);
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read \"", path, "\": ", strerror(err)));
    }
    if (n == 0) break;
    contents.append(buf, static_cast<size_t>(n));
  }
  close(*fd);
  if (contents.size() > kMaxSecretFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path, "\" is larger than 64 KiB"));
  }
  std::string trimmed(absl::StripAsciiWhitespace(contents));
  // The untrimmed copy held the secret too; explicit_bzero is not optimised
  // away as a dead store.
  explicit_bzero(contents.data(), contents.size());
  explicit_bzero(buf, sizeof(buf));
  if (trimmed.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" is empty"));
  }
  return trimmed;
}

absl::Status CheckReadableFile(const std::string& path) {
  auto fd = OpenForReading(path);
  if (!fd.ok()) return fd.status();
  close(*fd);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SplitList(absl::string_view text) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) {
      return absl::InvalidArgumentError(
          "empty item in the comma-separated list");
    }
    items.emplace_back(item);
  }
  return items;
}

}  // namespace stateside::config_values

// Socket path preparation: directory and its owner and mode, live/stale
// detection, socket mode, cleanup.
#include "sidecar/server/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace stateside {
namespace {

absl::Status SocketError(absl::string_view message) {
  return absl::FailedPreconditionError(
      absl::StrCat("STATESIDE_SOCKET: ", message));
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return SocketError(absl::StrCat(what, " ", path, ": ", strerror(errno)));
}

// mkdir -p of the directory part of `path`.
absl::Status MakeParentDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
      return Errno("cannot create directory", dir);
    }
  }
  return absl::OkStatus();
}

enum class Probe { kListening, kRefused };

absl::StatusOr<Probe> ProbeSocket(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno("socket() for probing", path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());  // length validated
  const int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  close(fd);
  // EAGAIN: the listener's backlog is full, so it is very much alive.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) return Probe::kListening;
  if (err == ECONNREFUSED) return Probe::kRefused;
  errno = err;
  return Errno("cannot probe", path);
}

std::string ParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

absl::Status CheckSocketDirectory(const std::string& dir, uid_t owner, mode_t mode, uid_t euid) {
  if (owner != 0 && owner != euid) {
    return SocketError(absl::StrCat(
        "directory ", dir, " is owned by uid ", owner, ", not by this user (uid ", euid,
        ") or root: its owner could replace the socket"));
  }
  if ((mode & (S_IWGRP | S_IWOTH)) != 0 && (mode & S_ISVTX) == 0) {
    return SocketError(absl::StrFormat(
        "directory %s is writable by %s (mode %04o) and not sticky: they could replace "
        "the socket; use a directory only this user can write (e.g. mode 0750)",
        dir, (mode & S_IWOTH) != 0 ? "others" : "its group", mode & 07777));
  }
  return absl::OkStatus();
}

absl::Status PrepareSocketPath(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return SocketError("path too long for a Unix socket");
  }
  if (absl::Status s = MakeParentDirs(path); !s.ok()) return s;
  const std::string dir = ParentDir(path);
  struct stat dir_st {};
  if (stat(dir.c_str(), &dir_st) != 0) return Errno("cannot stat directory", dir);
  if (absl::Status s = CheckSocketDirectory(dir, dir_st.st_uid, dir_st.st_mode, geteuid());
      !s.ok()) {
    return s;
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno("cannot stat", path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return SocketError(absl::StrCat(path, " exists and is not a socket"));
  }
  auto probe = ProbeSocket(path);
  if (!probe.ok()) return probe.status();
  if (*probe == Probe::kListening) {
    return SocketError(
        absl::StrCat("another process is listening on ", path));
  }
  // A socket nobody accepts on: left by a process that died.
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno("cannot remove stale socket", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<SocketFileId> RestrictSocketFile(const std::string& path) {
  if (chmod(path.c_str(), 0660) != 0) return Errno("cannot chmod", path);
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return Errno("cannot stat", path);
  return SocketFileId{st.st_dev, st.st_ino};
}

void RemoveSocketFile(const std::string& path, const SocketFileId& id) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISSOCK(st.st_mode) && st.st_dev == id.dev && st.st_ino == id.ino) {
    unlink(path.c_str());
  }
}

}  // namespace stateside

// The file-system side of the gRPC Unix socket: before binding, make the
// directory and check who may write to it, refuse a path where a live
// process listens, remove a stale
// socket file left by a dead one; after binding, set mode 0660; on exit,
// remove the socket if it is still ours. Errors name STATESIDE_SOCKET and
// are FAILED_PRECONDITION (a problem of the environment: exit status 2).
// Free functions; no shared state.
#ifndef STATESIDE_SIDECAR_SERVER_UNIX_SOCKET_H_
#define STATESIDE_SIDECAR_SERVER_UNIX_SOCKET_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stateside {

// Creates missing parent directories (mode 0750: the app container's group
// may enter), checks the socket's directory (CheckSocketDirectory), then:
// nothing at `path` → OK; a socket that accepts a
// connection → "another process is listening"; a socket that refuses
// (ECONNREFUSED: its process is gone) → removed; anything else (a regular
// file, a directory) is left alone and refused.
absl::Status PrepareSocketPath(const std::string& path);

// Whoever may write to the socket's directory may replace the socket (the
// app then hands every session to an impostor) or swap it for a symlink
// between our bind and chmod. So the directory (`owner`, `mode` from its
// stat) must be owned by root or by `euid` (ours), and must not be writable
// by group or others unless it is sticky (there only a file's owner may
// remove or rename it, as in /tmp). Otherwise FAILED_PRECONDITION naming
// STATESIDE_SOCKET. Only the directory itself is checked, not its parents.
absl::Status CheckSocketDirectory(const std::string& dir, uid_t owner, mode_t mode, uid_t euid);

// Identifies the socket file we bound, so that we remove only our own.
struct SocketFileId {
  dev_t dev = 0;
  ino_t ino = 0;
};

// Sets mode 0660 on the bound socket and returns its identity.
absl::StatusOr<SocketFileId> RestrictSocketFile(const std::string& path);

// Unlinks `path` if it is still the socket identified by `id`.
void RemoveSocketFile(const std::string& path, const SocketFileId& id);

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_UNIX_SOCKET_H_

// STATESIDE_ALLOWED_UIDS: the sidecar accepts on its gRPC Unix socket itself,
// reads each connection's peer credentials (SO_PEERCRED: the uid of the
// process that connected, as the kernel saw it) and hands the connection to
// gRPC as allowed or refused. gRPC 1.51 exposes no peer credentials to a
// handler (a Unix socket's auth context carries no uid), so the check is per
// connection, before gRPC reads a byte of it.
//
// Thread-safety: Start and Stop from one owning thread; the handoff runs on
// the gate's own accept thread.
#ifndef STATESIDE_SIDECAR_SERVER_PEER_GATE_H_
#define STATESIDE_SIDECAR_SERVER_PEER_GATE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace stateside {

class PeerGate {
 public:
  // A connected socket (non-blocking, close-on-exec; ownership passes) and
  // whether its peer's uid is in the list.
  using Handoff = std::function<void(int fd, bool allowed)>;

  // Binds and listens on `path` (REQUIRES: PrepareSocketPath succeeded; the
  // caller sets the umask the socket is born with). FAILED_PRECONDITION
  // naming STATESIDE_SOCKET if it cannot. An empty `allowed_uids` allows
  // every peer (the frame socket without STATESIDE_ALLOWED_UIDS: its mode
  // is the protection). `kind` names the socket in the log ("gRPC").
  static absl::StatusOr<std::unique_ptr<PeerGate>> Listen(const std::string& path,
                                                          std::vector<uint32_t> allowed_uids,
                                                          std::string kind = "gRPC");
  ~PeerGate();  // Stop()
  PeerGate(const PeerGate&) = delete;
  PeerGate& operator=(const PeerGate&) = delete;

  // Starts accepting; every connection goes to `handoff`.
  void Start(Handoff handoff);
  // Stops accepting and closes the listening socket (connecting then fails
  // at once); connections already handed off are not touched. Idempotent.
  void Stop();

 private:
  PeerGate(int listen_fd, int wake_read, int wake_write, std::vector<uint32_t> allowed_uids,
           std::string kind);
  void AcceptLoop(const Handoff& handoff);

  const std::vector<uint32_t> allowed_uids_;
  const std::string kind_;
  int listen_fd_;
  int wake_read_;   // readable once Stop wants the loop to end
  int wake_write_;
  std::thread thread_;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_PEER_GATE_H_

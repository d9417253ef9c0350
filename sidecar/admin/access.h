// Who may call the admin listener's privileged routes (POST /drain). Probes,
// /metrics and /info stay open to every peer: they change nothing and show
// no secret.
//
// Without an admin token: loopback peers only, i.e. processes in the pod's
// own network namespace, which could as well call LifecycleService.Drain on
// the socket. Everyone else gets 403.
// With a token (STATESIDE_ADMIN_TOKEN_FILE): every peer, loopback included,
// must send `Authorization: Bearer <token>`; missing or wrong is 401 with
// `WWW-Authenticate: Bearer` (RFC 6750). Loopback is not trusted then,
// because a proxy in the pod (a service mesh's sidecar) makes remote
// clients arrive from loopback.
//
// The token is compared by a TokenCheck handed in by the server (constant
// time, crypto::SecretVerifier): this module does not depend on crypto.
//
// Thread-safety: immutable after construction; Check and the guarded
// handlers may run on any thread (they run on the listener's I/O thread).
#ifndef STATESIDE_SIDECAR_ADMIN_ACCESS_H_
#define STATESIDE_SIDECAR_ADMIN_ACCESS_H_

#include <functional>
#include <optional>
#include <string_view>

#include "sidecar/admin/http_server.h"

namespace stateside::admin {

// Whether `ip` (an address without port) is a loopback address:
// 127.0.0.0/8, ::1, or an IPv4-mapped IPv6 address in 127.0.0.0/8. Anything
// that does not parse as an IP address is not.
bool IsLoopbackAddress(std::string_view ip);

// Why a request was refused; RefusalName is the metric label
// (stateside_admin_requests_refused_total{reason}).
enum class Refusal {
  kNotLoopback,   // no token configured and the peer is remote
  kMissingToken,  // token configured, no `Authorization: Bearer` sent
  kBadToken,      // token configured, a different one sent
};
std::string_view RefusalName(Refusal refusal);

// Whether a presented token is the configured one. Must compare in time
// independent of the contents.
using TokenCheck = std::function<bool(std::string_view token)>;

class AdminAccess {
 public:
  // An empty `check`: no token configured (loopback peers only).
  explicit AdminAccess(TokenCheck check) : check_(std::move(check)) {}

  // nullopt if `request` may pass, else why not.
  std::optional<Refusal> Check(const HttpRequest& request) const;

  // The answer to a refused request: 403 for kNotLoopback, 401 with
  // WWW-Authenticate for the token reasons; a JSON body {"error": "..."}
  // that says why (and never echoes what was sent).
  static HttpResponse Refuse(Refusal refusal);

  // `handler` behind Check: a refused request gets Refuse() after
  // `on_refused` (may be empty) was told; `handler` never sees it.
  HttpHandler Guard(
      HttpHandler handler,
      std::function<void(const HttpRequest&, Refusal)> on_refused) const;

 private:
  const TokenCheck check_;
};

}  // namespace stateside::admin

#endif  // STATESIDE_SIDECAR_ADMIN_ACCESS_H_

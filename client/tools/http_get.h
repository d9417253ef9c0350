// A minimal HTTP/1.0 GET client for statesidectl's admin-port commands
// (/metrics, /health): one request per connection, bounded in size and time.
// Thread-safe (no shared state).
#ifndef STATESIDE_CLIENT_TOOLS_HTTP_GET_H_
#define STATESIDE_CLIENT_TOOLS_HTTP_GET_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::cli {

struct HttpResponse {
  int status = 0;    // e.g. 200
  std::string body;  // de-chunked if the server chunked it
};

// The largest body accepted: a /metrics page is tens of KiB; anything near
// this is not our sidecar.
inline constexpr size_t kMaxHttpResponseBytes = 16 << 20;

// GET http://<address><path>. `address` is "host:port" or "[v6addr]:port".
// INVALID_ARGUMENT: malformed address; UNAVAILABLE: cannot connect, reset,
// or the whole exchange took longer than `timeout` (DEADLINE_EXCEEDED);
// DATA_LOSS: a reply that is not HTTP or too large. An HTTP error status is
// a value, not an error.
absl::StatusOr<HttpResponse> HttpGet(std::string_view address,
                                     std::string_view path, absl::Duration timeout);

// Any method, with an optional `Authorization: Bearer` token (the admin
// token of POST routes); a body-less request. Errors as HttpGet.
absl::StatusOr<HttpResponse> HttpCall(std::string_view method, std::string_view address,
                                      std::string_view path, std::string_view bearer_token,
                                      absl::Duration timeout);

// Split out for tests: parses a whole HTTP/1.x response.
absl::StatusOr<HttpResponse> ParseHttpResponse(std::string_view raw);

}  // namespace stateside::cli

#endif  // STATESIDE_CLIENT_TOOLS_HTTP_GET_H_

// Small HTTP helpers shared by the routes and the server: JSON responses
// and errors, cookies, and how a sidecar status becomes an HTTP status.
// Free functions on values: thread-safe.
#ifndef STATESIDE_APP_HTTP_UTIL_H_
#define STATESIDE_APP_HTTP_UTIL_H_

#include <boost/beast/http.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace radar {

namespace http = boost::beast::http;
using Json = nlohmann::ordered_json;  // keeps keys in the order written
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// A response with a JSON body (application/json).
Response JsonResponse(http::status status, const Json& body);
// {"error": text} with `status`.
Response ErrorResponse(http::status status, std::string_view text);

// The value of cookie `name` in the request's Cookie header(s), if any.
std::optional<std::string> FindCookie(const Request& request, std::string_view name);
// "name=value; Path=/; HttpOnly; SameSite=Lax[; Secure]"
std::string SetCookie(std::string_view name, std::string_view value, bool secure);
// The same, clearing it: "name=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax[; Secure]"
std::string ClearCookie(std::string_view name, bool secure);

// The HTTP answer to a failed sidecar call. session_lookup: NOT_FOUND (and
// an unusable cookie, INVALID_ARGUMENT) mean "no valid session" → 401.
// Otherwise INVALID_ARGUMENT → 400 (the sidecar's message is shown: it
// names a limit, never a secret), UNAVAILABLE / DEADLINE_EXCEEDED → 503
// with Retry-After: 1 (so is the sidecar's overload refusal, UNAVAILABLE
// reason OVERLOADED: nothing was done), RESOURCE_EXHAUSTED (a per-user cap)
// → 429, anything else → 500. Logs the cause (`what` names
// the operation), never a cookie or session id.
Response SidecarError(const absl::Status& status, std::string_view what,
                      bool session_lookup);

// The path of a request target, without the query string.
std::string_view TargetPath(std::string_view target);

// Beast's string_view (Boost's) as std::string_view.
inline std::string_view Sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

}  // namespace radar

#endif  // STATESIDE_APP_HTTP_UTIL_H_

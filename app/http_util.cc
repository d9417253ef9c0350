// JSON responses, cookies and the sidecar-status → HTTP-status mapping.
#include "app/http_util.h"

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace radar {

Response JsonResponse(http::status status, const Json& body) {
  Response response{status, 11};
  response.set(http::field::content_type, "application/json");
  // Strings from clients may hold anything; never emit invalid UTF-8.
  response.body() = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return response;
}

Response ErrorResponse(http::status status, std::string_view text) {
  return JsonResponse(status, Json{{"error", text}});
}

std::optional<std::string> FindCookie(const Request& request, std::string_view name) {
  // Several Cookie headers may arrive (e.g. through an HTTP/2 proxy); the
  // first pair with the name wins, as browsers send the most specific first.
  for (const auto& field : request.base()) {
    if (field.name() != http::field::cookie) continue;
    const std::string value(field.value().data(), field.value().size());
    for (absl::string_view piece : absl::StrSplit(value, ';')) {
      piece = absl::StripAsciiWhitespace(piece);
      const std::string_view pair(piece.data(), piece.size());
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
      std::string_view cookie = pair.substr(eq + 1);
      if (cookie.size() >= 2 && cookie.front() == '"' && cookie.back() == '"') {
        cookie = cookie.substr(1, cookie.size() - 2);
      }
      return std::string(cookie);
    }
  }
  return std::nullopt;
}

std::string SetCookie(std::string_view name, std::string_view value, bool secure) {
  return std::string(name) + "=" + std::string(value) + "; Path=/; HttpOnly; SameSite=Lax" +
         (secure ? "; Secure" : "");
}

std::string ClearCookie(std::string_view name, bool secure) {
  return std::string(name) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" +
         (secure ? "; Secure" : "");
}

Response SidecarError(const absl::Status& status, std::string_view what,
                      bool session_lookup) {
  const absl::StatusCode code = status.code();
  if (session_lookup && (code == absl::StatusCode::kNotFound ||
                         code == absl::StatusCode::kInvalidArgument)) {
    // Expected traffic (expired or forged cookies): debug, and no cookie.
    spdlog::debug("{}: no valid session ({})", what, absl::StatusCodeToString(code));
    return ErrorResponse(http::status::unauthorized, "no valid session");
  }
  if (code == absl::StatusCode::kInvalidArgument) {
    const std::string message(status.message());
    spdlog::info("{}: rejected by the sidecar: {}", what, message);
    return ErrorResponse(http::status::bad_request, message);
  }
  if (code == absl::StatusCode::kResourceExhausted) {
    // A per-user cap of the sidecar (sessions, rooms, publish rate): the
    // message names it.
    const std::string message(status.message());
    spdlog::info("{}: over a cap of the sidecar: {}", what, message);
    Response response = ErrorResponse(http::status::too_many_requests, message);
    response.set(http::field::retry_after, "1");
    return response;
  }
  if (code == absl::StatusCode::kUnavailable ||
      code == absl::StatusCode::kDeadlineExceeded) {
    spdlog::warn("{}: sidecar unavailable: {}", what, status.ToString());
    Response response =
        ErrorResponse(http::status::service_unavailable, "sidecar unavailable");
    response.set(http::field::retry_after, "1");
    return response;
  }
  spdlog::error("{}: sidecar call failed: {}", what, status.ToString());
  return ErrorResponse(http::status::internal_server_error, "internal error");
}

std::string_view TargetPath(std::string_view target) {
  return target.substr(0, target.find('?'));
}

}  // namespace radar

// The admin listener's access rule for privileged routes: loopback, or a
// bearer token when one is configured.
#include "sidecar/admin/access.h"

#include <string>
#include <utility>

#include <boost/asio/ip/address.hpp>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace stateside::admin {
namespace {

namespace ip = boost::asio::ip;

// The token of an `Authorization: Bearer <token>` value (scheme in any
// case, RFC 7235); nullopt for another scheme or an empty token.
std::optional<std::string_view> BearerToken(std::string_view value) {
  constexpr std::string_view kScheme = "bearer ";
  if (!absl::StartsWithIgnoreCase(absl::string_view(value.data(), value.size()),
                                  absl::string_view(kScheme.data(), kScheme.size()))) {
    return std::nullopt;
  }
  std::string_view token = value.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
    token.remove_suffix(1);
  }
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace

bool IsLoopbackAddress(std::string_view text) {
  boost::system::error_code ec;
  const ip::address address = ip::make_address(std::string(text), ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, address.to_v6()).is_loopback();
  }
  return address.is_loopback();
}

std::string_view RefusalName(Refusal refusal) {
  switch (refusal) {
    case Refusal::kNotLoopback: return "not_loopback";
    case Refusal::kMissingToken: return "missing_token";
    case Refusal::kBadToken: return "bad_token";
  }
  return "other";
}

std::optional<Refusal> AdminAccess::Check(const HttpRequest& request) const {
  if (!check_) {
    if (IsLoopbackAddress(request.peer_address)) return std::nullopt;
    return Refusal::kNotLoopback;
  }
  const std::optional<std::string_view> token =
      BearerToken(request.Header("Authorization"));
  if (!token) return Refusal::kMissingToken;
  if (!check_(*token)) return Refusal::kBadToken;
  return std::nullopt;
}

HttpResponse AdminAccess::Refuse(Refusal refusal) {
  switch (refusal) {
    case Refusal::kNotLoopback:
      return HttpResponse::Json(
          403,
          R"({"error": "only loopback peers may call this route: no admin token is configured"})");
    case Refusal::kMissingToken:
    case Refusal::kBadToken: {
      const bool missing = refusal == Refusal::kMissingToken;
      HttpResponse response = HttpResponse::Json(
          401, missing ? R"({"error": "an admin token is required: send Authorization: Bearer <token>"})"
                       : R"({"error": "the admin token does not match"})");
      // RFC 6750 section 3: no error code when no credentials were sent.
      response.headers.emplace_back(
          "WWW-Authenticate",
          missing ? R"(Bearer realm="stateside-admin")"
                  : R"(Bearer realm="stateside-admin", error="invalid_token")");
      return response;
    }
  }
  return HttpResponse::Json(403, R"({"error": "refused"})");
}

HttpHandler AdminAccess::Guard(
    HttpHandler handler,
    std::function<void(const HttpRequest&, Refusal)> on_refused) const {
  return [access = *this, handler = std::move(handler),
          on_refused = std::move(on_refused)](const HttpRequest& request) {
    if (std::optional<Refusal> refusal = access.Check(request)) {
      if (on_refused) on_refused(request, *refusal);
      return Refuse(*refusal);
    }
    return handler(request);
  };
}

}  // namespace stateside::admin

// BrowserGuard: Content-Type and Origin / Sec-Fetch-Site checks, and the
// security headers of every response.
#include "app/browser_guard.h"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace radar {
namespace {

std::string Field(const Request& request, http::field name) {
  auto it = request.find(name);
  if (it == request.end()) return "";
  return std::string(it->value().data(), it->value().size());
}

bool HasField(const Request& request, std::string_view name) {
  return request.find(boost::beast::string_view(name.data(), name.size())) != request.end();
}

Response Forbidden() {
  return ErrorResponse(http::status::forbidden, "cross-origin request refused");
}

}  // namespace

BrowserGuard::BrowserGuard(std::vector<std::string> origins) : origins_(std::move(origins)) {}

std::vector<std::string> BrowserGuard::ListenOrigins(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  const boost::asio::ip::address address = boost::asio::ip::make_address(host, ec);
  const bool v6 = !ec && address.is_v6();
  std::vector<std::string> origins = {
      absl::StrCat("http://", v6 ? "[" : "", absl::AsciiStrToLower(host), v6 ? "]" : "", ":",
                   port)};
  if (!ec && address.is_loopback()) origins.push_back(absl::StrCat("http://localhost:", port));
  return origins;
}

bool BrowserGuard::FromPublicOrigin(const Request& request) const {
  if (HasField(request, "Origin")) {
    const std::string origin = absl::AsciiStrToLower(
        absl::StripAsciiWhitespace(Field(request, http::field::origin)));
    return std::find(origins_.begin(), origins_.end(), origin) != origins_.end();
  }
  if (HasField(request, "Sec-Fetch-Site")) {
    auto it = request.find("Sec-Fetch-Site");
    const std::string site =
        absl::AsciiStrToLower(std::string(it->value().data(), it->value().size()));
    // "none": the user's own action (typed address, bookmark).
    return site == "same-origin" || site == "none";
  }
  return true;  // not a browser: no ambient cookie to abuse
}

std::optional<Response> BrowserGuard::CheckPost(const Request& request) const {
  if (!FromPublicOrigin(request)) {
    spdlog::info("{} {}: refused (origin not public)", std::string(request.method_string()),
                 std::string(TargetPath(Sv(request.target()))));
    return Forbidden();
  }
  // The media type without parameters ("application/json; charset=utf-8").
  std::string type = Field(request, http::field::content_type);
  type = absl::AsciiStrToLower(absl::StripAsciiWhitespace(type.substr(0, type.find(';'))));
  if (type != "application/json") {
    return ErrorResponse(http::status::unsupported_media_type,
                         "Content-Type must be application/json");
  }
  return std::nullopt;
}

std::optional<Response> BrowserGuard::CheckUpgrade(const Request& request) const {
  if (FromPublicOrigin(request)) return std::nullopt;
  spdlog::info("websocket upgrade refused (origin not public)");
  return Forbidden();
}

void AddSecurityHeaders(Response& response) {
  response.set("X-Content-Type-Options", "nosniff");
  response.set("X-Frame-Options", "DENY");
  response.set("Referrer-Policy", "no-referrer");
  if (response.find("Content-Security-Policy") == response.end()) {
    response.set("Content-Security-Policy",
                 "default-src 'none'; frame-ancestors 'none'");
  }
}

}  // namespace radar

// BrowserGuard: what radar-app checks before a browser's request may change
// anything, and the headers every answer carries. Constant after
// construction: thread-safe.
//
// - Every POST must say `Content-Type: application/json` (415 otherwise).
//   A cross-site page can send a "simple" request (form, text/plain)
//   without the browser asking first; a JSON content type makes the browser
//   send a CORS preflight, which radar-app never answers with permission.
// - Every POST and the WebSocket upgrade must come from a public origin
//   (403 otherwise): `Origin`, when present, must be one of them exactly;
//   without it, `Sec-Fetch-Site` must be `same-origin` or `none`. A request
//   with neither comes from a non-browser client (curl, a load generator, a
//   test), which a cookie-riding attack cannot use; it passes.
//   The WebSocket upgrade needs this most: browsers apply no same-origin
//   rule to WebSockets, and the upgrade carries the session cookie.
#ifndef STATESIDE_APP_BROWSER_GUARD_H_
#define STATESIDE_APP_BROWSER_GUARD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "app/http_util.h"

namespace radar {

class BrowserGuard {
 public:
  // `origins` as Config::public_origins (lower case, no trailing slash).
  explicit BrowserGuard(std::vector<std::string> origins);

  // The origins of a server listening on host:port ("http://host:port";
  // for a loopback address also "http://localhost:port").
  static std::vector<std::string> ListenOrigins(const std::string& host, uint16_t port);

  // A POST's refusal (403, then 415), or nullopt to go on.
  std::optional<Response> CheckPost(const Request& request) const;
  // A WebSocket upgrade's refusal (403), or nullopt.
  std::optional<Response> CheckUpgrade(const Request& request) const;

  const std::vector<std::string>& origins() const { return origins_; }

 private:
  bool FromPublicOrigin(const Request& request) const;

  const std::vector<std::string> origins_;
};

// The policy of the page at GET / (its script and style are files of the
// same origin: no inline code runs).
inline constexpr char kPageContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

// Adds the headers every response carries: X-Content-Type-Options:
// nosniff, X-Frame-Options: DENY, Referrer-Policy: no-referrer, and a
// Content-Security-Policy that allows nothing (no framing either) unless
// the response has its own (the page).
void AddSecurityHeaders(Response& response);

}  // namespace radar

#endif  // STATESIDE_APP_BROWSER_GUARD_H_

// The admin status page (GET / on the admin listener): the document of GET
// /info rendered as HTML on the server, so that it reads without JavaScript.
// It refreshes itself with <meta http-equiv="refresh"> and loads nothing but
// its own stylesheet (GET /status.css); kStatusPagePolicy says so to the
// browser. Every value taken from the document is HTML-escaped.
// Pure functions and constants: thread-safe.
#ifndef STATESIDE_SIDECAR_ADMIN_STATUS_PAGE_H_
#define STATESIDE_SIDECAR_ADMIN_STATUS_PAGE_H_

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace stateside::admin {

// The page's Content-Security-Policy: its stylesheet, nothing else (no
// script at all, no framing).
inline constexpr char kStatusPagePolicy[] =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'";

// Seconds between the page's reloads.
inline constexpr int kStatusRefreshSeconds = 5;

// `text` with &, <, >, " and ' replaced by character references.
std::string HtmlEscape(std::string_view text);

// The page for `info` (the document of GET /info; missing fields show as
// "—").
std::string RenderStatusPage(const nlohmann::json& info);

// GET /status.css.
std::string_view StatusPageStyle();

}  // namespace stateside::admin

#endif  // STATESIDE_SIDECAR_ADMIN_STATUS_PAGE_H_

// The page at GET / (with its style GET /app.css; its script GET /app.js is
// in page_script.h): radar's demo of horizontal scaling, for people and for
// the browser check (tests/e2e), which relies on these element ids:
//   #user #login #me      log in (POST /login); #me shows the user (GET /me)
//   #logout #logout-all   POST /logout, and with {"everywhere": true}
//   #error                "<path> refused: <status>" when a call is refused
//   #demo-only            says the password-less login is a demo only
//   #pods                 one entry per pod seen: "pod-2 ×7" (requests it served)
//   #log                  one <li> per call, newest first: "GET /me → pod-2 200"
//   #item #add #cart #cart-count   add to the cart (POST /cart) and list it
//   #hammer-n #hammer #hammer-result  N concurrent adds, then how many the
//                         cart kept: "hammer: 50 of 50 adds kept (...)"
//   #optout #optout-state the shared analytics opt-out (GET|POST /analytics/opt-out)
//   #room #join #status   open /ws and join; #status "connected to pod-N"
//                         once the join is confirmed, "closed <code>,
//                         reconnecting" when the socket closed
//   #socket-pod           the pod holding the WebSocket
//   #notices              reconnects ("reconnected: pod-1 → pod-3 after
//                         close 1012") and gaps ("gap in <room>: …")
//   #messages             one <li> per message: "#<seq> <pod> <from>: <msg>"
//   #broadcast #msg #send POST /broadcast {"room": #room, "msg": #msg}
// Constant data: thread-safe.
#ifndef STATESIDE_APP_PAGE_H_
#define STATESIDE_APP_PAGE_H_

#include <string_view>

#include "app/page_script.h"

namespace radar {

inline constexpr std::string_view kPageHtml = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>radar: which pod served what</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<header>
<h1>radar</h1>
<p>Every request below names the pod that served it (<code>X-Instance-Id</code>).
No pod keeps anything: sessions, the cart, the opt-out and the rooms live in the sidecars.</p>
<p id="demo-only" class="warn"><strong>Demo only:</strong> logging in takes a user name and
no password, so anyone can be anyone. Do not copy this login into a real application.</p>
</header>
<main>
<section aria-labelledby="h-session">
<h2 id="h-session">Session</h2>
<form id="login-form">
<label for="user">user name</label>
<input id="user" name="user" autocomplete="off" autocapitalize="off" spellcheck="false" required>
<button id="login" type="submit">log in (demo only, no password)</button>
</form>
<p>logged in as: <strong id="me">nobody</strong> <span id="error" role="alert"></span></p>
<p class="row"><button id="logout" type="button">log out</button>
<button id="logout-all" type="button">log out everywhere</button></p>
</section>

<section aria-labelledby="h-pods">
<h2 id="h-pods">Pods that answered</h2>
<ul id="pods" class="pods" aria-live="polite"></ul>
<ol id="log" class="log" aria-label="requests, newest first"></ol>
</section>

<section aria-labelledby="h-cart">
<h2 id="h-cart">Cart</h2>
<p class="hint">Each item is its own session attribute: concurrent adds from any pod all survive.</p>
<form id="cart-form">
<label for="item">item</label>
<input id="item" name="item" autocomplete="off" required>
<button id="add" type="submit">add</button>
</form>
<p><span id="cart-count">0</span> item(s):</p>
<ul id="cart" class="cart"></ul>
<form id="hammer-form">
<label for="hammer-n">concurrent adds</label>
<input id="hammer-n" name="n" type="number" min="1" max="200" value="50">
<button id="hammer" type="submit">hammer</button>
</form>
<p id="hammer-result" role="status"></p>
</section>

<section aria-labelledby="h-optout">
<h2 id="h-optout">Analytics opt-out</h2>
<p class="hint">One flag per user, shared by every pod.</p>
<p><input id="optout" type="checkbox"> <label for="optout">opt out of analytics</label>
<span id="optout-state"></span></p>
</section>

<section aria-labelledby="h-room" class="wide">
<h2 id="h-room">Room</h2>
<form id="join-form">
<label for="room">room</label>
<input id="room" name="room" value="lobby" autocomplete="off" required>
<button id="join" type="submit">join</button>
<span id="status" role="status">no socket yet</span>
<span>socket on: <strong id="socket-pod">none</strong></span>
</form>
<ul id="notices" class="notices" aria-live="polite"></ul>
<form id="broadcast">
<label for="msg">message</label>
<input id="msg" name="msg" autocomplete="off">
<button id="send" type="submit">send</button>
</form>
<ol id="messages" class="messages" aria-live="polite"></ol>
</section>
</main>
<script src="/app.js"></script>
</body>
</html>
)html";

// GET /app.css: one column on a phone, a grid on a wider screen; pods get
// one of six colours (.c0 … .c5, chosen by the script).
inline constexpr std::string_view kPageStyle = R"css(
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72em;padding:.5em;color:#111;background:#fafafa}
h1{margin:.2em 0}h2{font-size:1.1em;margin:.2em 0 .5em}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(20em,1fr));gap:.8em;align-items:start}
section{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.6em;min-width:0}
.wide{grid-column:1/-1}
form,.row{display:flex;flex-wrap:wrap;gap:.4em;align-items:center;margin:.4em 0}
label{font-weight:600}
input{font:inherit;padding:.45em;min-width:0;flex:1 1 8em;border:1px solid #888;border-radius:4px}
input[type=checkbox]{flex:none;width:1.3em;height:1.3em}
input[type=number]{flex:0 1 6em}
button{font:inherit;padding:.45em .9em;border:1px solid #245;border-radius:4px;background:#2a5d8f;color:#fff;cursor:pointer}
button:focus-visible,input:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
.warn{background:#fff3cd;padding:.5em;border-radius:4px}
.hint{color:#555;font-size:.9em;margin:.2em 0}
#error{color:#a40000}
.pods{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3em}
.pods li{padding:.2em .6em;border-radius:1em;font-weight:600}
.log,.messages,.cart,.notices{padding-left:1.2em;max-height:14em;overflow-y:auto;font-family:ui-monospace,monospace;font-size:.9em}
.cart{max-height:8em}
.log,.messages,.notices{list-style:none;padding-left:0}
.notices li{background:#fde2e1;margin:.2em 0;padding:.3em .5em;border-radius:4px}
.c0{background:#d6ecff}.c1{background:#dff5d8}.c2{background:#ffe6c7}
.c3{background:#efdcff}.c4{background:#ffd9e4}.c5{background:#d9f4f1}
.tag{padding:0 .3em;border-radius:3px}
)css";

}  // namespace radar

#endif  // STATESIDE_APP_PAGE_H_

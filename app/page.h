// The page at GET / (with its script GET /app.js and style GET /app.css):
// a tiny HTML+JS client of radar-app for people and for the browser check
// (tests/e2e), which relies on the element ids:
//   #user #login          log in (POST /login), then #me shows the user (GET /me)
//   #error                "<path> refused: <status>" when a POST is refused
//   #demo-only            says the password-less login is a demo only
//   #room #join           open /ws and send {"join": room}
//   #status               "connected" once the server acknowledged the join
//                         ({"joined": room}: a broadcast sent after that
//                         reaches this page), "closed <code>" when it closes
//   #messages             one <li> per received message's `msg`
//   #broadcast #msg #send POST /broadcast {"room": #room, "msg": #msg}
// Constant data: thread-safe.
#ifndef STATESIDE_APP_PAGE_H_
#define STATESIDE_APP_PAGE_H_

#include <string_view>

namespace radar {

inline constexpr std::string_view kPageHtml = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>radar</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<h1>radar</h1>
<p id="demo-only" class="warn"><strong>Demo only:</strong> logging in takes a user name and
no password, so anyone can be anyone. Do not copy this login into a real application.</p>
<form id="login-form"><input id="user" placeholder="user" autocomplete="off">
<button id="login" type="submit">log in (demo only, no password)</button></form>
<p>user: <span id="me"></span> <span id="error"></span></p>
<form id="join-form"><input id="room" placeholder="room" value="lobby">
<button id="join" type="submit">join</button> <span id="status">not connected</span></form>
<form id="broadcast"><input id="msg" placeholder="message">
<button id="send" type="submit">send</button></form>
<ul id="messages"></ul>
<script src="/app.js"></script>
</body>
</html>
)html";

// GET /app.css.
inline constexpr std::string_view kPageStyle =
    "body{font-family:sans-serif;max-width:40em;margin:2em auto}form{margin:1em 0}"
    ".warn{background:#fff3cd;padding:.5em}\n";

// GET /app.js: a file, not an inline script, so that the page's
// Content-Security-Policy can forbid inline code.
inline constexpr std::string_view kPageScript = R"js("use strict";
const $ = (id) => document.getElementById(id);
async function post(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify(body), credentials: "same-origin"});
  $("error").textContent = r.ok ? "" : path + " refused: " + r.status;
  return r.json();
}
async function refreshMe() {
  const r = await fetch("/me", {credentials: "same-origin"});
  $("me").textContent = r.ok ? (await r.json()).user : "";
}
$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  await post("/login", {user: $("user").value});
  await refreshMe();
});
let ws = null;
$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const room = $("room").value;
  if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({join: room})); return; }
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => ws.send(JSON.stringify({join: room}));
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (err) { return; }
    if (m.joined !== undefined) $("status").textContent = "connected";
    if (m.event === "message") {
      const li = document.createElement("li");
      li.textContent = m.msg;
      $("messages").appendChild(li);
    }
  };
  ws.onclose = (ev) => { $("status").textContent = "closed " + ev.code; };
});
$("broadcast").addEventListener("submit", async (e) => {
  e.preventDefault();
  await post("/broadcast", {room: $("room").value, msg: $("msg").value});
  $("msg").value = "";
});
refreshMe();
)js";

}  // namespace radar

#endif  // STATESIDE_APP_PAGE_H_

// The page at GET /: a tiny HTML+JS client of radar-app for people and for
// the browser check (tests/e2e), which relies on the element ids:
//   #user #login          log in (POST /login), then #me shows the user (GET /me)
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
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}form{margin:1em 0}</style>
</head>
<body>
<h1>radar</h1>
<form id="login-form"><input id="user" placeholder="user" autocomplete="off">
<button id="login" type="submit">log in</button></form>
<p>user: <span id="me"></span></p>
<form id="join-form"><input id="room" placeholder="room" value="lobby">
<button id="join" type="submit">join</button> <span id="status">not connected</span></form>
<form id="broadcast"><input id="msg" placeholder="message">
<button id="send" type="submit">send</button></form>
<ul id="messages"></ul>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
async function post(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify(body), credentials: "same-origin"});
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
</script>
</body>
</html>
)html";

}  // namespace radar

#endif  // STATESIDE_APP_PAGE_H_

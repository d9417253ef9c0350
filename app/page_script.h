// GET /app.js, the script of radar's page (page.h names the element ids):
// a file, not an inline script, so that the page's Content-Security-Policy
// can forbid inline code. Every call goes through call(), which logs the
// pod that answered (X-Instance-Id; none: nginx answered itself). The
// WebSocket reconnects by itself after a close other than 1000 (normal) or
// 1008 (the session ended), rejoins its room and says so in #notices; a room
// sequence number that skips shows a gap there too. Text from the server is
// only ever set as textContent, never as HTML.
// Constant data: thread-safe.
#ifndef STATESIDE_APP_PAGE_SCRIPT_H_
#define STATESIDE_APP_PAGE_SCRIPT_H_

#include <string_view>

namespace radar {

inline constexpr std::string_view kPageScript = R"js("use strict";
const $ = (id) => document.getElementById(id);
const kMaxLog = 100, kMaxNotices = 20, kMaxRetries = 10;

// --- Which pod answered.
const podCounts = new Map();
function podClass(pod) {
  const n = /(\d+)$/.exec(pod);
  let h = n ? Number(n[1]) : 0;
  if (!n) for (const c of pod) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return "c" + (h % 6);
}
function podTag(pod) {
  const tag = document.createElement("span");
  tag.className = "tag " + podClass(pod || "nginx");
  tag.textContent = pod || "nginx";
  return tag;
}
function renderPods() {
  const list = $("pods");
  list.replaceChildren();
  for (const pod of [...podCounts.keys()].sort()) {
    const li = document.createElement("li");
    li.className = podClass(pod);
    li.textContent = pod + " \u00d7" + podCounts.get(pod);
    list.appendChild(li);
  }
}
function logCall(what, pod, result) {
  const li = document.createElement("li");
  li.append(what + " \u2192 ", podTag(pod), " " + result);
  const log = $("log");
  log.prepend(li);
  while (log.children.length > kMaxLog) log.lastElementChild.remove();
  if (pod) {
    podCounts.set(pod, (podCounts.get(pod) || 0) + 1);
    renderPods();
  }
}
// One HTTP call: {ok, status, pod, data}; never throws.
async function call(method, path, body) {
  const init = {method, credentials: "same-origin", headers: {}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (err) {
    logCall(method + " " + path, "", "network error");
    return {ok: false, status: 0, pod: "", data: null};
  }
  const pod = r.headers.get("X-Instance-Id") || "";
  logCall(method + " " + path, pod, String(r.status));
  let data = null;
  try { data = await r.json(); } catch (err) { /* not JSON */ }
  return {ok: r.ok, status: r.status, pod, data};
}
function report(path, res) {
  $("error").textContent = res.ok ? "" : path + " refused: " + res.status;
  return res;
}

// --- Session, cart, opt-out.
function renderCart(items) {
  const list = $("cart");
  list.replaceChildren();
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = item;
    list.appendChild(li);
  }
  $("cart-count").textContent = String(items.length);
}
async function refreshMe() {
  const r = await call("GET", "/me");
  const user = r.ok && r.data ? r.data.user : "";
  $("me").textContent = user || "nobody";
  renderCart(r.ok && r.data ? r.data.cart : []);
  if (user) await refreshOptOut();
  return r;
}
async function refreshOptOut() {
  const r = await call("GET", "/analytics/opt-out");
  if (!r.ok || !r.data) return;
  $("optout").checked = r.data.opted_out;
  $("optout-state").textContent = (r.data.opted_out ? "opted out" : "not opted out") +
                                  " (read on " + (r.pod || "nginx") + ")";
}
$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  report("/login", await call("POST", "/login", {user: $("user").value}));
  await refreshMe();
});
async function logout(everywhere) {
  report("/logout", await call("POST", "/logout", everywhere ? {everywhere: true} : {}));
  await refreshMe();
}
$("logout").addEventListener("click", () => logout(false));
$("logout-all").addEventListener("click", () => logout(true));
$("cart-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (report("/cart", await call("POST", "/cart", {item: $("item").value})).ok) {
    $("item").value = "";
  }
  await refreshMe();
});
$("hammer-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const n = Math.max(1, Math.min(200, parseInt($("hammer-n").value, 10) || 50));
  const prefix = "hammer-" + Date.now().toString(36) + "-";
  $("hammer-result").textContent = "hammer: sending " + n + " adds\u2026";
  const answers = await Promise.all(
      Array.from({length: n}, (_, i) => call("POST", "/cart", {item: prefix + i})));
  const served = new Map();
  for (const a of answers.filter((a) => a.ok)) served.set(a.pod, (served.get(a.pod) || 0) + 1);
  const r = await refreshMe();
  const kept = r.ok && r.data ? r.data.cart.filter((item) => item.startsWith(prefix)).length : 0;
  const pods = [...served.keys()].sort().map((p) => p + " \u00d7" + served.get(p)).join(", ");
  $("hammer-result").textContent = "hammer: " + kept + " of " + n + " adds kept (" +
      answers.filter((a) => a.ok).length + " answered 200; served by " + (pods || "none") + ")";
});
$("optout").addEventListener("change", async () => {
  const wanted = $("optout").checked;
  const r = report("/analytics/opt-out", await call("POST", "/analytics/opt-out", {opted_out: wanted}));
  if (!r.ok) $("optout").checked = !wanted;
  // Read it back: the answer usually comes from another pod.
  await refreshOptOut();
});

// --- The room over the WebSocket.
let ws = null;
let wantRoom = null;
let socketPod = null;
let lastClose = null;
let retries = 0;
const lastSeq = new Map();  // room → the highest sequence number shown
function notice(text) {
  const li = document.createElement("li");
  li.textContent = text;
  const list = $("notices");
  list.prepend(li);
  while (list.children.length > kMaxNotices) list.lastElementChild.remove();
}
function showMessage(m) {
  const room = typeof m.room === "string" ? m.room : "";
  const seq = typeof m.sequence === "number" ? m.sequence : 0;
  if (room && seq) {
    const last = lastSeq.get(room);
    if (last !== undefined && seq > last + 1) {
      notice("gap in " + room + ": #" + last + " \u2192 #" + seq + ", " + (seq - last - 1) +
             " message(s) missed");
    }
    if (last === undefined || seq > last) lastSeq.set(room, seq);
  }
  const li = document.createElement("li");
  li.append("#" + (seq || "?") + " ", podTag(m.instance), " " + (m.from || "?") + ": " + m.msg);
  $("messages").appendChild(li);
  li.scrollIntoView({block: "nearest"});
}
function connect() {
  const sock = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") +
                             location.host + "/ws");
  ws = sock;
  sock.onopen = () => {
    if (wantRoom) sock.send(JSON.stringify({join: wantRoom}));
  };
  sock.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (err) { return; }
    if (m.event === "hello") {
      logCall("WS /ws", m.instance, "open");
      if (lastClose !== null) {
        notice("reconnected: " + (socketPod || "?") + " \u2192 " + m.instance +
               " after close " + lastClose);
      }
      socketPod = m.instance;
      lastClose = null;
      retries = 0;
      $("socket-pod").textContent = m.instance;
    } else if (m.joined !== undefined) {
      $("status").textContent = "connected to " + (socketPod || "?");
    } else if (m.event === "message") {
      showMessage(m);
    } else if (m.event === "gap") {
      notice("gap: the stream of " + (socketPod || "?") + " lost " + m.dropped +
             " event(s) (" + m.reason + ")");
    } else if (m.event === "error") {
      $("status").textContent = "refused: " + m.error;
    }
  };
  sock.onclose = (ev) => {
    if (sock !== ws) return;
    ws = null;
    if (lastClose === null) lastClose = ev.code;
    const again = wantRoom && ev.code !== 1000 && ev.code !== 1008 && retries < kMaxRetries;
    $("status").textContent = "closed " + ev.code + (again ? ", reconnecting" : "");
    if (!again) return;
    const delay = Math.min(5000, 200 * 2 ** retries) + Math.random() * 200;
    retries++;
    setTimeout(connect, delay);
  };
}
$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  wantRoom = $("room").value;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({join: wantRoom}));
  } else if (!ws) {
    retries = 0;
    lastClose = null;  // a new socket asked for, not a reconnect
    connect();
  }
});
$("broadcast").addEventListener("submit", async (e) => {
  e.preventDefault();
  report("/broadcast", await call("POST", "/broadcast", {room: $("room").value, msg: $("msg").value}));
  $("msg").value = "";
});
refreshMe();
)js";

}  // namespace radar

#endif  // STATESIDE_APP_PAGE_SCRIPT_H_

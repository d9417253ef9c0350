// attachWebSockets(server, client, options): plain WebSockets (the `ws`
// package) for an app without Socket.IO, as radar-app serves /ws
// (app/websocket_session.cc, app/websocket_hub.cc): an upgrade at `path`
// from an allowed origin with a live session cookie becomes a connection
// registered with the sidecar under the session's user; the sidecar's
// deliveries (to a user, a connection, a room, all; minus `exclude`) are
// sent to the sockets they name as JSON text frames, radar-app's:
//   {"event":"hello","conn":ID,"instance":ID,"user":USER}   first
//   {"event":EVENT, ...the payload's keys, "sequence":N}    a delivery
//   {"event":EVENT,"payload":TEXT,"sequence":N}             not a JSON object
//   {"event":"gap","reason":R,"dropped":N}                  events were lost
//   {"joined":ROOM} {"left":ROOM} {"event":"error","error":TEXT}
// and the browser sends {"join":ROOM} or {"leave":ROOM}. Closes: 1008 when
// the session ends (Disconnect, `stateside.close`, `session-ended`) or the
// client does not read (its send queue is full), 1012 during the drain.
// ws is a peer dependency: required only when this is used.
'use strict';
const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const c = require('./convert');
const { StatesideError } = require('./errors');
const { cookieValues, sessionOfCookies } = require('./middleware');
const { backoffDelay } = require('./retry');

// The events radar-app's logouts publish (app/websocket_hub.h).
const CLOSE_CONNECTIONS_EVENT = 'stateside.close';
const SESSION_ENDED_EVENT = 'session-ended';
// Close codes (RFC 6455): the session ended or the client is too slow; the
// server is going away for a restart (the drain).
const POLICY = 1008;
const SERVICE_RESTART = 1012;
// radar-app's bounds (app/websocket_session.h).
const MAX_QUEUED_MESSAGES = 256;
const MAX_QUEUED_BYTES = 1 << 20;
const MAX_MESSAGE_BYTES = 16384;

const frame = (o) => JSON.stringify(o);

// A delivery as radar-app's frame: the payload's keys (a JSON object) or
// the payload as text, and the sequence when the sidecar numbers it.
function deliveryFrame(event) {
  const text = Buffer.isBuffer(event.payload) ? event.payload.toString('utf8') : event.payload;
  const out = { event: event.event };
  let payload;
  try {
    payload = JSON.parse(text);
  } catch {
    payload = undefined;
  }
  if (payload !== null && typeof payload === 'object' && !Array.isArray(payload)) {
    for (const [k, v] of Object.entries(payload)) if (k !== 'event') out[k] = v;
  } else {
    out.payload = text;
  }
  if (event.sequence !== 0n) out.sequence = Number(event.sequence);
  return frame(out);
}

// One per Client: its subscription (opened once) and the sockets of every
// attachWebSockets on it, by connection id.
const hubs = new WeakMap();

function hubOf(client, onError) {
  let hub = hubs.get(client);
  if (hub) return hub;
  hub = { sockets: new Map(), closed: false, stream: null, users: 0 };
  hubs.set(client, hub);
  let resolveReady;
  hub.ready = new Promise((resolve) => { resolveReady = resolve; });
  const named = (connIds) => connIds.map((id) => hub.sockets.get(id)).filter(Boolean);
  const dispatch = (event) => {
    if (event.kind === 'disconnect') {
      for (const s of named(event.connIds)) s.close(POLICY, 'disconnected');
    } else if (event.kind === 'gap') {
      const text = frame({ event: 'gap', reason: event.reason, dropped: Number(event.dropped) });
      for (const s of hub.sockets.values()) s.send(text);
    } else if (event.kind === 'delivery' && event.event === CLOSE_CONNECTIONS_EVENT) {
      for (const s of named(event.connIds)) s.close(POLICY, 'session ended');
    } else if (event.kind === 'delivery' && event.event === SESSION_ENDED_EVENT) {
      // A logout elsewhere: everywhere ends every socket named, else the
      // sockets named find out whether theirs was the session that ended.
      let everywhere = false;
      try {
        everywhere = JSON.parse(event.payload).everywhere === true;
      } catch {
        // not JSON: check
      }
      for (const s of named(event.connIds)) {
        if (everywhere) s.close(POLICY, 'session ended');
        else s.checkSession();
      }
    } else if (event.kind === 'delivery') {
      const sockets = named(event.connIds);
      if (sockets.length === 0) return;
      const text = deliveryFrame(event);
      for (const s of sockets) s.send(text);
    }
  };
  (async () => {
    for (let attempt = 1, first = true; !hub.closed; ++attempt) {
      try {
        hub.stream = await client.subscribe({ encoding: 'utf8' });
        attempt = 0;
        if (!first) {
          // Events published meanwhile are lost; a restarted sidecar has
          // forgotten the connections: register the live ones again.
          for (const s of hub.sockets.values()) {
            s.send(frame({ event: 'gap', reason: 'RESUBSCRIBED', dropped: 0 }));
            s.register().catch(onError);
          }
        }
        first = false;
        resolveReady();
        for await (const event of hub.stream) dispatch(event);
      } catch (err) {
        if (!hub.closed) onError(err);
      }
      // client.close() ends the stream: so ends the hub.
      if (client._channel.getConnectivityState(false) === grpc.connectivityState.SHUTDOWN) hub.closed = true;
      if (!hub.closed) {
        await new Promise((r) => setTimeout(r, backoffDelay(Math.max(attempt, 1), 50, 2000, Math.random())).unref());
      }
    }
  })();
  return hub;
}

// A refused upgrade: an HTTP answer with a JSON error, then the socket ends.
function refuse(socket, status, message, headers = {}) {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: message });
  const lines = [`HTTP/1.1 ${status} ${require('node:http').STATUS_CODES[status]}`, 'Content-Type: application/json',
                 `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close',
                 ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

// A failed session lookup or registration as radar-app answers the upgrade.
function sidecarStatus(err, sessionLookup) {
  const code = err instanceof StatesideError ? err.codeName : '';
  if (sessionLookup && (code === 'NOT_FOUND' || code === 'INVALID_ARGUMENT')) return [401, 'no valid session'];
  if (code === 'UNAVAILABLE' || code === 'DEADLINE_EXCEEDED') return [503, 'sidecar unavailable', { 'Retry-After': '1' }];
  return [500, 'internal error'];
}

function attachWebSockets(server, client, options = {}) {
  const o = c.checkOptions(options, ['path', 'cookieName', 'origins', 'instanceId', 'shutdown', 'maxQueuedMessages',
                                     'maxQueuedBytes', 'maxMessageBytes', 'onError'], 'attachWebSockets');
  const { WebSocketServer } = require('ws');
  const wsPath = o.path ?? '/ws';
  const cookieName = o.cookieName ?? 'sid';
  const origins = c.stringList(o.origins ?? [], 'origins').map((s) => s.trim().toLowerCase());
  const maxMessages = o.maxQueuedMessages ?? MAX_QUEUED_MESSAGES;
  const maxBytes = o.maxQueuedBytes ?? MAX_QUEUED_BYTES;
  const onError = o.onError ?? ((err) => process.emitWarning(`stateside websockets: ${err.message}`));
  if (typeof onError !== 'function') throw new TypeError('onError must be a function');
  for (const [name, v] of [['maxQueuedMessages', maxMessages], ['maxQueuedBytes', maxBytes]]) {
    if (!Number.isInteger(v) || v < 1) throw new TypeError(`${name} must be a positive integer`);
  }
  if (o.shutdown !== undefined && !(o.shutdown?.draining instanceof Promise)) {
    throw new TypeError('shutdown must be what gracefulShutdown returned');
  }
  const hub = hubOf(client, onError);
  ++hub.users;
  const mine = new Set();  // this server's sockets
  const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxMessageBytes ?? MAX_MESSAGE_BYTES });
  let instanceId = o.instanceId ?? null;
  let draining = false;

  // A browser's upgrade must come from an allowed origin; without Origin,
  // Sec-Fetch-Site must say same-origin or none; neither: not a browser.
  function fromAllowedOrigin(req) {
    if (req.headers.origin !== undefined) return origins.includes(req.headers.origin.trim().toLowerCase());
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined) return ['same-origin', 'none'].includes(site.toLowerCase());
    return true;
  }

  // One socket: its send queue (one frame written at a time) and its room
  // operations in order.
  function connection(connId, session, upgrade) {
    const s = { connId, sessionId: session.id, userId: session.userId ?? '', rooms: new Set(), ws: null,
                queue: [], queuedBytes: 0, writing: false, closing: false, closeCode: null, ops: Promise.resolve() };
    const write = () => {
      if (s.writing || s.closing || s.ws === null || s.queue.length === 0) return;
      const text = s.queue.shift();
      s.queuedBytes -= Buffer.byteLength(text);
      s.writing = true;
      s.ws.send(text, (err) => {
        s.writing = false;
        if (!err) write();
      });
    };
    s.send = (text) => {
      if (s.closing) return;
      if (s.queue.length >= maxMessages || s.queuedBytes + Buffer.byteLength(text) > maxBytes) {
        onError(new Error(`websocket ${connId}: client not reading (${s.queue.length} messages queued): closing`));
        s.close(POLICY, 'too slow');
        return;
      }
      s.queue.push(text);
      s.queuedBytes += Buffer.byteLength(text);
      write();
    };
    s.close = (code, reason) => {
      if (s.closing) return;
      s.closing = true;
      s.queue = [];
      s.queuedBytes = 0;
      if (s.ws === null) s.closeCode = code;  // closed as soon as it opens
      else s.ws.close(code, reason);
    };
    s.register = () => client.registerConnection(connId, { ...(s.userId ? { userId: s.userId } : {}), rooms: [...s.rooms] });
    s.checkSession = () => {
      client.getSession({ id: s.sessionId }, { touch: false }).catch((err) => {
        if (err instanceof StatesideError && err.codeName === 'NOT_FOUND') s.close(POLICY, 'session ended');
        else onError(err);
      });
    };
    s.roomOp = (text) => {
      let message;
      try {
        message = JSON.parse(text);
      } catch {
        message = null;
      }
      const join = message !== null && typeof message === 'object' && 'join' in message;
      const room = message?.[join ? 'join' : 'leave'];
      if (typeof room !== 'string' || room === '') {
        s.send(frame({ event: 'error', error: 'expected {"join":"room"} or {"leave":"room"}' }));
        return;
      }
      s.ops = s.ops.then(async () => {
        try {
          await (join ? client.join(connId, [room]) : client.leave(connId, [room]));
          if (join) s.rooms.add(room);
          else s.rooms.delete(room);
          s.send(frame({ [join ? 'joined' : 'left']: room }));
        } catch (err) {
          // The sidecar names a bad room; other causes are reported generically.
          const badRoom = err instanceof StatesideError && err.codeName === 'INVALID_ARGUMENT';
          if (!badRoom) onError(err);
          s.send(frame({ event: 'error', error: badRoom ? err.message : 'sidecar unavailable' }));
        }
      });
    };
    // Until the upgrade completes, deliveries queue behind the hello.
    s.queue.push(frame({ event: 'hello', conn: connId, instance: instanceId, user: s.userId }));
    s.queuedBytes = Buffer.byteLength(s.queue[0]);
    hub.sockets.set(connId, s);
    mine.add(s);
    let finished = false;
    s.finish = () => {
      if (finished) return;
      finished = true;
      s.closing = true;
      hub.sockets.delete(connId);
      mine.delete(s);
      s.ops.then(() => client.unregisterConnection(connId)).catch(onError);
    };
    upgrade.once('close', s.finish);
    return s;
  }

  async function onUpgrade(req, socket, head) {
    socket.on('error', () => {});
    const path = (req.url ?? '').split('?')[0];
    if (path !== wsPath) {
      // Another path: another listener's (Socket.IO's), or nobody's.
      if (server.listenerCount('upgrade') === 1) refuse(socket, 404, 'not found');
      return;
    }
    if (req.method !== 'GET') return refuse(socket, 405, 'method not allowed', { Allow: 'GET' });
    if (!fromAllowedOrigin(req)) return refuse(socket, 403, 'cross-origin request refused');
    if (draining) return refuse(socket, 503, 'draining', { 'Retry-After': '1' });
    const cookies = cookieValues(req.headers.cookie, cookieName).filter((v) => v !== '');
    if (cookies.length === 0) return refuse(socket, 401, 'no valid session');
    let session;
    try {
      instanceId ??= (await client.getInstance()).instance.id;
      session = await sessionOfCookies(client, cookies);
    } catch (err) {
      return refuse(socket, ...sidecarStatus(err, true));
    }
    if (session === null) return refuse(socket, 401, 'no valid session');
    if (socket.destroyed) return undefined;
    const connId = crypto.randomBytes(16).toString('hex');
    const s = connection(connId, session, socket);
    // First in the socket's chain: a close meanwhile unregisters after it.
    s.ops = hub.ready.then(() => s.register());
    try {
      await s.ops;
    } catch (err) {
      s.finish();
      return refuse(socket, ...sidecarStatus(err, false));
    }
    if (draining || socket.destroyed) {
      s.finish();
      return refuse(socket, 503, 'draining', { 'Retry-After': '1' });
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      s.ws = ws;
      ws.on('message', (data, isBinary) => {
        if (!s.closing) s.roomOp(isBinary ? '' : data.toString('utf8'));
      });
      ws.on('close', s.finish);
      ws.on('error', () => {});
      if (s.closeCode !== null) ws.close(s.closeCode);
      else {
        const pending = s.queue;
        s.queue = [];
        s.queuedBytes = 0;
        for (const text of pending) s.send(text);
      }
    }, { headers: { 'X-Instance-Id': instanceId } });
    return undefined;
  }

  const listener = (req, socket, head) => {
    onUpgrade(req, socket, head).catch((err) => {
      onError(err);
      refuse(socket, 500, 'internal error');
    });
  };
  server.on('upgrade', listener);

  // Every socket of this server closed with `code` (default 1012: the
  // server restarts; clients reconnect elsewhere); new upgrades get 503.
  function closeAll(code = SERVICE_RESTART, reason = 'server restart') {
    draining = true;
    for (const s of [...mine]) s.close(code, reason);
  }
  o.shutdown?.draining.then(() => closeAll());

  return {
    // Resolves once the sidecar's deliveries are subscribed to.
    ready: hub.ready,
    // This server's open sockets' connection ids.
    connections: () => [...mine].filter((s) => !s.closing).map((s) => s.connId),
    closeAll,
    // Stops taking upgrades at `path` (open sockets stay); the last one
    // of a Client ends its subscription.
    close() {
      if (!server.listeners('upgrade').includes(listener)) return;
      server.removeListener('upgrade', listener);
      if (--hub.users > 0) return;
      hub.closed = true;
      hub.stream?.cancel();
      hubs.delete(client);
    },
  };
}

module.exports = { attachWebSockets, deliveryFrame };

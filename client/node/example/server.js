#!/usr/bin/env node
// radar-app's HTTP routes (app/routes.cc) and /ws on @stateside/client,
// node:http and ws: the same paths, JSON bodies, status codes, cookie,
// X-Instance-Id and WebSocket frames, the sessions() middleware for the
// session, attachWebSockets for /ws and gracefulShutdown for the drain.
// DEMO ONLY, as radar-app: POST /login takes a user name and no password.
// Settings: radar-app's flags --listen and --socket, and its environment
// variables (see README.md). deploy/local/up.sh --app node runs it.
'use strict';
const http = require('node:http');
const { parseArgs } = require('node:util');
// The package of this checkout (its dependencies installed with `npm ci`
// in client/node, or found on NODE_PATH); an app of its own would require
// '@stateside/client'.
const { Client, StatesideError, sessions, gracefulShutdown, attachWebSockets } = require('..');

const CART_PREFIX = 'cart:';
const MAX_USER_BYTES = 128;
const MAX_ITEM_BYTES = 128;
const MAX_ATTRIBUTE_NAME_BYTES = 128;  // the sidecar's limit
const MAX_TEST_DELAY_MS = 10000;
const SESSION_ENDED_EVENT = 'session-ended';
// Paths and the methods each allows (the Allow header of a 405).
const ROUTES = new Map([
  ['/healthz', 'GET'], ['/login', 'POST'], ['/guest', 'POST'], ['/me', 'GET'], ['/cart', 'POST'],
  ['/logout', 'POST'], ['/broadcast', 'POST'], ['/analytics/opt-out', 'GET, POST'], ['/ws', 'GET'],
]);

// --- settings: radar-app's (app/config.cc) that apply here -------------------

function fail(message) {
  console.error(`radar-node: ${message}`);
  process.exit(2);
}

// The origins of a server listening on host:port (radar-app's BrowserGuard).
function listeningOrigins(host, port) {
  const h = host.includes(':') ? `[${host}]` : host;
  const origins = [`http://${h}:${port}`];
  if (host === '127.0.0.1' || host === '::1') origins.push(`http://localhost:${port}`);
  return origins;
}

function loadConfig() {
  let flags;
  try {
    flags = parseArgs({ options: { listen: { type: 'string' }, socket: { type: 'string' } } }).values;
  } catch (err) {
    fail(err.message);
  }
  const env = process.env;
  const bool = (name, fallback) => {
    const v = (env[name] ?? '').toLowerCase();
    if (v === '') return fallback;
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    return fail(`${name}: bad value "${env[name]}": use true or false`);
  };
  const int = (name, fallback, min, max) => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) fail(`${name}: bad value "${v}": use an integer in ${min}..${max}`);
    return Number(v);
  };
  const listen = flags.listen ?? env.RADAR_LISTEN ?? '127.0.0.1:8080';
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m || Number(m[3]) > 65535) fail(`RADAR_LISTEN (--listen): bad value "${listen}": use HOST:PORT`);
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  const cookieSecure = bool('RADAR_COOKIE_SECURE', true);
  const cookieName = env.RADAR_COOKIE_NAME || (cookieSecure ? '__Host-radar_sid' : 'radar_sid');
  if (!cookieSecure && /^__(Host|Secure)-/.test(cookieName)) {
    fail(`RADAR_COOKIE_NAME: "${cookieName}" needs RADAR_COOKIE_SECURE=true (browsers drop __Host-/__Secure- cookies without Secure)`);
  }
  const origins = (env.RADAR_PUBLIC_ORIGINS ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const o of origins) {
    if (!/^https?:\/\/[^/?#@\s]+$/.test(o)) fail(`RADAR_PUBLIC_ORIGINS: "${o}" is not an origin like https://radar.example.com[:port]`);
  }
  return {
    // None set: the server's own, once it listens (its port may be 0 here).
    host, port, cookieName, cookieSecure, origins, ownOrigins: origins.length === 0,
    socketPath: flags.socket || env.STATESIDE_SOCKET || undefined,
    maxBodyBytes: int('RADAR_MAX_BODY_BYTES', 16384, 1, 64 << 20),
    drainIdleGraceMs: int('RADAR_DRAIN_IDLE_GRACE_MS', 3000, 0, 60000),
    forwardSigterm: bool('RADAR_FORWARD_SIGTERM', true),
    testHooks: bool('RADAR_TEST_HOOKS', false),
  };
}

// --- helpers (app/http_util.cc, app/browser_guard.cc) ---------------------------

class HttpError extends Error {
  constructor(status, message, headers = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}
const badBody = (what) => new HttpError(400, what);
const noSession = () => new HttpError(401, 'no valid session');

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

// A failed sidecar call as radar-app answers it: a session lookup's
// NOT_FOUND or INVALID_ARGUMENT (an unparsable cookie) 401; INVALID_ARGUMENT
// 400 with the sidecar's message (it names the limit); RESOURCE_EXHAUSTED
// (a per-user cap) 429; UNAVAILABLE and DEADLINE_EXCEEDED 503; else 500.
function sidecarError(err, what, sessionLookup) {
  if (err instanceof HttpError) return err;
  if (err instanceof TypeError || err instanceof RangeError) return new HttpError(400, err.message);
  const code = err instanceof StatesideError ? err.codeName : '';
  if (sessionLookup && (code === 'NOT_FOUND' || code === 'INVALID_ARGUMENT')) return noSession();
  if (code === 'INVALID_ARGUMENT') return new HttpError(400, err.message);
  if (code === 'RESOURCE_EXHAUSTED') return new HttpError(429, err.message, { 'Retry-After': '1' });
  if (code === 'UNAVAILABLE' || code === 'DEADLINE_EXCEEDED') {
    console.warn(`${what}: sidecar unavailable: ${err.message}`);
    return new HttpError(503, 'sidecar unavailable', { 'Retry-After': '1' });
  }
  console.error(`${what}: sidecar call failed: ${err.message}`);
  return new HttpError(500, 'internal error');
}

const utf8Bytes = (s) => Buffer.byteLength(s, 'utf8');
const isString = (v) => typeof v === 'string';
// No lone surrogate anywhere (it has no UTF-8 form; radar-app's parser
// refuses the body too).
function wellFormed(v) {
  if (isString(v)) return !/\p{Cs}/u.test(v);
  if (v && typeof v === 'object') return Object.entries(v).every(([k, x]) => wellFormed(k) && wellFormed(x));
  return true;
}

// User names: 1..128 bytes of printable ASCII without spaces (they also
// name the user's realtime connections).
const isValidUser = (user) => user.length >= 1 && user.length <= MAX_USER_BYTES && /^[\x21-\x7e]+$/.test(user);

// 64-bit FNV-1a from `basis`; two make a 128-bit name stable across
// processes (and equal to radar-app's).
function fnv1a(bytes, basis) {
  let h = basis;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

// One attribute per cart item: `cart:<item>`, or `cart:#<hash>` for an item
// that cannot be an attribute name as it is.
function cartAttribute(item) {
  const bytes = Buffer.from(item, 'utf8');
  if (/^[\x20-\x7e]*$/.test(item) && CART_PREFIX.length + bytes.length <= MAX_ATTRIBUTE_NAME_BYTES) {
    return CART_PREFIX + item;
  }
  return `${CART_PREFIX}#${fnv1a(bytes, 0xcbf29ce484222325n)}${fnv1a(bytes, 0x84222325cbf29ce4n)}`;
}

// --- the app ------------------------------------------------------------------------

function createApp(client, config, instanceId) {
  const useSession = sessions(client, {
    cookieName: config.cookieName, secure: config.cookieSecure, encoding: 'utf8', instanceId,
  });
  let draining = false;

  const hasCookie = (req) => {
    const m = new RegExp(`(?:^|;)\\s*${config.cookieName.replace(/[^\w]/g, '\\$&')}=([^;]*)`).exec(req.headers.cookie ?? '');
    return m !== null && m[1].trim() !== '';
  };
  // The request's session (req.session); a lookup that fails is a 401 or
  // the sidecar's error.
  const loadSession = (req, res) => new Promise((resolve, reject) => {
    useSession(req, res, (err) => (err ? reject(sidecarError(err, 'session', true)) : resolve(req.session)));
  });
  const requireSession = async (req, res) => {
    const session = await loadSession(req, res);
    if (session.isNew) throw noSession();
    return session;
  };

  // POSTs come from a public origin (or not from a browser) and are JSON.
  function fromPublicOrigin(req) {
    if (req.headers.origin !== undefined) return config.origins.includes(req.headers.origin.trim().toLowerCase());
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined) return ['same-origin', 'none'].includes(site.toLowerCase());
    return true;
  }
  function checkPost(req) {
    if (!fromPublicOrigin(req)) throw new HttpError(403, 'cross-origin request refused');
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') throw new HttpError(415, 'Content-Type must be application/json');
  }
  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on('data', (chunk) => {
        size += chunk.length;
        if (size > config.maxBodyBytes) {
          req.removeAllListeners('data');
          req.resume();
          reject(new HttpError(413, 'request body too large', { Connection: 'close' }));
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }
  // The body as a JSON object, or a 400.
  function parseObject(text) {
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw badBody('body must be a JSON object');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body) || !wellFormed(body)) {
      throw badBody('body must be a JSON object');
    }
    return body;
  }

  const handlers = {
    async 'POST /login'(req, res, body) {
      const user = parseObject(body).user;
      if (!isString(user)) throw badBody('user: a string is required');
      if (!isValidUser(user)) throw badBody('user: 1..128 bytes of printable ASCII without spaces');
      const session = await loadSession(req, res);
      // A guest's session becomes the user's and the same user's gets a new
      // id, the cart kept (session fixation defence: the old id ends);
      // another user's session is destroyed and a fresh one made.
      try {
        if (!session.isNew && session.userId && session.userId !== user) await session.destroy();
        try {
          await session.regenerate({ userId: user });
        } catch (err) {
          if (!(err instanceof StatesideError && err.codeName === 'NOT_FOUND')) throw err;
          await session.destroy();  // logged out meanwhile: a fresh session
          await session.regenerate({ userId: user });
        }
      } catch (err) {
        throw sidecarError(err, 'login', false);
      }
      sendJson(res, 200, { user, instance: instanceId });
    },

    async 'POST /guest'(req, res) {
      // Shopping before logging in: an anonymous session, which a later
      // login gives its owner with the cart in it. The browser's previous
      // session, whose cookie this one replaces, ends.
      const session = await loadSession(req, res);
      try {
        await session.destroy();
        await session.regenerate({});
      } catch (err) {
        throw sidecarError(err, 'guest', false);
      }
      sendJson(res, 200, { user: '', instance: instanceId });
    },

    async 'GET /me'(req, res) {
      const session = await requireSession(req, res);
      const cart = Object.keys(session).filter((n) => n.startsWith(CART_PREFIX)).map((n) => session[n]).sort();
      sendJson(res, 200, { user: session.userId, cart, instance: instanceId });
    },

    async 'POST /cart'(req, res, body) {
      if (!hasCookie(req)) throw noSession();
      const { item } = parseObject(body);
      if (!isString(item) || item === '' || utf8Bytes(item) > MAX_ITEM_BYTES) {
        throw badBody('item: a string of 1..128 bytes is required');
      }
      let delayMs = 0;
      const delay = req.headers['x-radar-delay-ms'];
      if (config.testHooks && delay !== undefined) {
        // Test hook: lets a test race a logout or a drain against this request.
        if (!/^\d+$/.test(delay) || Number(delay) > MAX_TEST_DELAY_MS) throw badBody('X-Radar-Delay-Ms: 0..10000');
        delayMs = Number(delay);
      }
      // Read (and touch) the session before writing: a dead one is a 401
      // without a write.
      const session = await requireSession(req, res);
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      // One attribute per item, written alone: the sidecar merges updates
      // of different attributes, so concurrent adds all survive; an update
      // of a destroyed session is NOT_FOUND (401): a slow add cannot bring
      // a logged-out session back.
      session[cartAttribute(item)] = item;
      try {
        await session.save();
      } catch (err) {
        throw sidecarError(err, 'cart: add', err instanceof StatesideError && err.codeName === 'NOT_FOUND');
      }
      sendJson(res, 200, { item, instance: instanceId });
    },

    async 'POST /logout'(req, res, body) {
      // Optional body {"everywhere": true}: every session of the user.
      let everywhere = false;
      if (body !== '') {
        const parsed = parseObject(body);
        if (parsed.everywhere !== undefined && typeof parsed.everywhere !== 'boolean') {
          throw badBody('everywhere: true or false');
        }
        everywhere = parsed.everywhere === true;
      }
      const session = await loadSession(req, res);
      const userId = session.isNew ? '' : session.userId;
      try {
        if (everywhere && userId) {
          // The sidecars close the user's sockets on every instance.
          await client.destroyUserSessions(userId, { closeConnections: true });
        }
        await session.destroy();  // the cookie is cleared either way
      } catch (err) {
        throw sidecarError(err, 'logout', false);
      }
      if (userId && !everywhere) {
        // The user's sockets elsewhere re-check their sessions now.
        await client.publish({ userId }, SESSION_ENDED_EVENT, JSON.stringify({ everywhere }))
          .catch((err) => console.warn(`logout: telling the other instances: ${err.message}`));
      }
      sendJson(res, 200, { logged_out: true });
    },

    async 'GET /analytics/opt-out'(req, res) {
      const session = await requireSession(req, res);
      if (!session.userId) throw noSession();
      const optedOut = await client.getOptOut(session.userId).catch((err) => {
        throw sidecarError(err, 'opt-out: get', false);
      });
      sendJson(res, 200, { subject: session.userId, opted_out: optedOut });
    },

    async 'POST /analytics/opt-out'(req, res, body) {
      if (!hasCookie(req)) throw noSession();
      const optedOut = parseObject(body).opted_out;
      if (typeof optedOut !== 'boolean') throw badBody('opted_out: true or false');
      const session = await requireSession(req, res);
      if (!session.userId) throw noSession();
      await client.setOptOut(session.userId, optedOut).catch((err) => {
        throw sidecarError(err, 'opt-out: set', false);
      });
      sendJson(res, 200, { subject: session.userId, opted_out: optedOut });
    },

    async 'POST /broadcast'(req, res, body) {
      if (!hasCookie(req)) throw noSession();
      const { msg, room, user } = parseObject(body);
      if (!isString(msg)) throw badBody('msg: a string is required');
      const toRoom = room !== undefined && isString(room);
      const toUser = user !== undefined && isString(user);
      if (toRoom === toUser || (toRoom && room === '') || (toUser && user === '')) {
        throw badBody('exactly one of room or user (a non-empty string) is required');
      }
      const session = await requireSession(req, res);
      const from = session.userId;
      try {
        // Only into a room the caller's user has a connection in, on any
        // instance (the sidecar's presence answers for the cluster).
        if (toRoom && !(await inRoom(from, room))) {
          throw new HttpError(403, 'join the room over the WebSocket before broadcasting to it');
        }
        const payload = { ...(toRoom ? { room } : { user }), msg, from, instance: instanceId };
        const published = await client.publish(toRoom ? { room } : { userId: user }, 'message',
          JSON.stringify(payload), from ? { senderUserId: from } : {});
        sendJson(res, 200, { instances: published.instances, sequence: Number(published.sequence) });
      } catch (err) {
        throw sidecarError(err, 'broadcast', false);
      }
    },
  };

  // The room's members (that call also checks the room's name: 400) against
  // the user's connections, at most 100 pages of 1000 members.
  async function inRoom(user, room) {
    let page = await client.roomMembers(room, { pageSize: 1000 });
    if (!user || page.count === 0) return false;
    const mine = new Set((await client.userConnections(user)).map((r) => `${r.instanceId ?? ''}/${r.connId}`));
    if (mine.size === 0) return false;
    for (let pages = 1; ; ++pages) {
      if (page.members.some((r) => mine.has(`${r.instanceId ?? ''}/${r.connId}`))) return true;
      if (!page.nextPageToken || pages === 100) return false;
      page = await client.roomMembers(room, { pageSize: 1000, pageToken: page.nextPageToken });
    }
  }

  async function handle(req, res) {
    res.setHeader('X-Instance-Id', instanceId);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    try {
      const path = req.url.split('?')[0];
      const allowed = ROUTES.get(path);
      if (allowed === undefined) throw new HttpError(404, 'not found');
      if (!allowed.split(', ').includes(req.method)) {
        throw new HttpError(405, 'method not allowed', { Allow: allowed });
      }
      if (path === '/healthz') {
        sendJson(res, draining ? 503 : 200, { status: draining ? 'draining' : 'ok', instance: instanceId });
        return;
      }
      if (path === '/ws') {
        throw new HttpError(426, 'websocket upgrade required', { Upgrade: 'websocket' });
      }
      let body = '';
      if (req.method === 'POST') {
        checkPost(req);
        body = await readBody(req);
      }
      await handlers[`${req.method} ${path}`](req, res, body);
    } catch (err) {
      const e = err instanceof HttpError ? err : sidecarError(err, req.url, false);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, e.status, { error: e.message }, e.headers);
    }
  }

  return { handle, setDraining: () => { draining = true; } };
}

async function main() {
  const config = loadConfig();
  const client = await Client.connect({ socketPath: config.socketPath }).catch((err) => {
    console.error(`radar-node: the sidecar: ${err.message}`);
    process.exit(1);
  });
  const { instance } = await client.getInstance();
  const app = createApp(client, config, instance.id);
  const server = http.createServer((req, res) => { app.handle(req, res); });
  const shutdown = gracefulShutdown(server, client, {
    forwardSignals: config.forwardSigterm, idleGraceMs: config.drainIdleGraceMs,
  });
  if (!config.forwardSigterm) {
    // The sidecar's preStop hook starts the drain: our first signal is only
    // noted; a second one exits at once with status 1, as radar-app.
    let signals = 0;
    const note = () => {
      if (++signals > 1) process.exit(1);
      console.log('radar-node: signal not forwarded (the sidecar drains the pod)');
    };
    process.on('SIGTERM', note);
    process.on('SIGINT', note);
  }
  shutdown.draining.then(({ reason, deadline }) => {
    app.setDraining();
    console.log(`radar-node: draining (${reason})${deadline ? `, deadline ${deadline.toISOString()}` : ''}`);
  });
  shutdown.drained.then(({ forced, reported }) => {
    console.log(`radar-node: drained${forced ? ' (connections cut at the deadline)' : ''}${reported ? '; reported to the sidecar' : ''}`);
    client.close();
    process.exit(0);
  }, (err) => {
    console.error(`radar-node: the drain's report failed: ${err.message}`);
    client.close();
    process.exit(1);
  });
  await shutdown.watching;
  server.listen(config.port, config.host, () => {
    if (config.ownOrigins) config.origins = listeningOrigins(config.host, server.address().port);
    // /ws as radar-app serves it: the same frames, rooms, origin check and
    // closes (1008 on logout, 1012 during the drain). Attached before the
    // first connection can arrive (this callback runs first).
    attachWebSockets(server, client, {
      path: '/ws', cookieName: config.cookieName, origins: config.origins, instanceId: instance.id, shutdown,
    });
    console.log(`radar-node: ${instance.id} listening on ${config.host}:${server.address().port}`);
  });
}

main().catch((err) => {
  console.error(`radar-node: ${err.stack ?? err}`);
  process.exit(1);
});

// attachWebSockets through the example app (example/server.js serves /ws
// with it): two example servers on two sidecars sharing one redis-server
// (one memory-store sidecar twice when redis-server is missing), browsers
// played by the `ws` package's client. radar-app's frames: hello, joined
// and left, a room broadcast published on the other instance with its
// sequence, `exclude`, the user, connection and all targets; logout (here
// or everywhere) closes the sockets with 1008; a foreign origin or no
// session is refused; the drain closes with 1012.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const http = require('node:http');
const { Client, attachWebSockets } = require('..');
const { startSidecarPair, startExample, request } = require('./support');

let a;  // { port, instance, started, socket }
let b;
let client;  // on a's sidecar

async function example(socket) {
  const started = startExample(socket);
  const line = await started.listening;
  assert.equal(typeof line, 'string', `the example exited: ${started.output.join('\n')}`);
  const port = Number(/:(\d+)$/.exec(line)[1]);
  const health = await request(port, 'GET', '/healthz');
  return { port, instance: health.body.instance, started, socket };
}

before(async () => {
  const [sa, sb] = await startSidecarPair('ws');
  [a, b] = await Promise.all([example(sa), example(sb)]);
  client = await Client.connect({ socketPath: sa });
});
after(() => client?.close());

async function login(app, user) {
  const r = await request(app.port, 'POST', '/login', { body: { user } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.headers['set-cookie'][0].split(';')[0];
}

// A WebSocket to app's /ws: { ws, hello, next() (the next frame),
// send(object), closed (its close: { code }) }; a refused upgrade rejects
// with { status, body }.
function connect(app, cookie, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws`, { headers: { ...(cookie ? { Cookie: cookie } : {}), ...headers } });
    const frames = [];
    const waiters = [];
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString('utf8'));
      const w = waiters.shift();
      if (w) w(m);
      else frames.push(m);
    });
    const closed = new Promise((r) => ws.on('close', (code) => r({ code })));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`refused ${res.statusCode}`),
                                               { status: res.statusCode, body: JSON.parse(body) })));
    });
    ws.on('error', reject);
    const next = () => (frames.length > 0 ? Promise.resolve(frames.shift()) : new Promise((r) => waiters.push(r)));
    ws.on('open', async () => {
      const hello = await next();
      resolve({ ws, hello, next, closed, send: (o) => ws.send(typeof o === 'string' ? o : JSON.stringify(o)) });
    });
  });
}

// A publish's sequence as the frame carries it (none when 0).
const withSequence = (published) => (published.sequence === 0n ? {} : { sequence: Number(published.sequence) });

async function join(s, room) {
  s.send({ join: room });
  assert.deepEqual(await s.next(), { joined: room });
}

test('a room broadcast on one instance reaches the members on both, with its sequence', async () => {
  const alice = await connect(a, await login(a, 'alice'));
  assert.deepEqual(Object.keys(alice.hello).sort(), ['conn', 'event', 'instance', 'user']);
  assert.equal(alice.hello.event, 'hello');
  assert.match(alice.hello.conn, /^[0-9a-f]{32}$/);
  assert.deepEqual([alice.hello.instance, alice.hello.user], [a.instance, 'alice']);
  const bobCookie = await login(b, 'bob');
  const bob = await connect(b, bobCookie);
  await join(alice, 'lobby');
  await join(bob, 'lobby');

  const sent = await request(b.port, 'POST', '/broadcast', { cookie: bobCookie, body: { room: 'lobby', msg: 'hi' } });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  const expected = { event: 'message', room: 'lobby', msg: 'hi', from: 'bob', instance: b.instance,
                     sequence: sent.body.sequence };
  assert.deepEqual(await alice.next(), expected);
  assert.deepEqual(await bob.next(), expected);

  // Not {join} or {leave}: an error frame, the socket stays.
  alice.send('nonsense');
  assert.deepEqual(await alice.next(), { event: 'error', error: 'expected {"join":"room"} or {"leave":"room"}' });
  alice.send({ leave: 'lobby' });
  assert.deepEqual(await alice.next(), { left: 'lobby' });
  // Left: the next lobby broadcast reaches bob only; alice's next frame is
  // the one to her user published after it.
  const again = await request(b.port, 'POST', '/broadcast', { cookie: bobCookie, body: { room: 'lobby', msg: 'again' } });
  assert.equal(again.status, 200);
  assert.equal((await bob.next()).msg, 'again');
  const note = await client.publish({ userId: 'alice' }, 'note', JSON.stringify({ text: 'to alice', event: 'ignored' }));
  assert.deepEqual(await alice.next(), { event: 'note', text: 'to alice', ...withSequence(note) });
  alice.ws.close(1000);
  bob.ws.close(1000);
  assert.equal((await alice.closed).code, 1000);
});

test('exclude, a connection, all: each delivery to the sockets it names', async () => {
  const carol = await connect(a, await login(a, 'carol'));
  const dave = await connect(b, await login(b, 'dave'));
  await join(carol, 'den');
  await join(dave, 'den');
  const carolRef = { connId: carol.hello.conn, instanceId: a.instance };
  const skipped = await client.publish({ room: 'den' }, 'message', JSON.stringify({ msg: 'not carol' }),
                                       { exclude: [carolRef] });
  const toAll = await client.publish({ room: 'den' }, 'message', JSON.stringify({ msg: 'everyone' }));
  assert.deepEqual(await dave.next(), { event: 'message', msg: 'not carol', ...withSequence(skipped) });
  assert.deepEqual(await dave.next(), { event: 'message', msg: 'everyone', ...withSequence(toAll) });
  // carol's first frame is the second publish: the first left her out.
  assert.deepEqual(await carol.next(), { event: 'message', msg: 'everyone', ...withSequence(toAll) });

  // Not a JSON object: the payload as text.
  const ping = await client.publish({ connection: { connId: dave.hello.conn, instanceId: b.instance } }, 'ping', 'plain');
  assert.deepEqual(await dave.next(), { event: 'ping', payload: 'plain', ...withSequence(ping) });
  const everyone = await client.publish({ all: true }, 'notice', JSON.stringify({ n: 1 }));
  for (const s of [carol, dave]) assert.deepEqual(await s.next(), { event: 'notice', n: 1, ...withSequence(everyone) });
  carol.ws.close(1000);
  dave.ws.close(1000);
  await Promise.all([carol.closed, dave.closed]);
});

test('a logout closes the session\'s sockets with 1008, on every instance', async () => {
  // Everywhere: every session of the user ends, its sockets on both instances close.
  const erinA = await login(a, 'erin');
  const erinB = await login(b, 'erin');
  const onA = await connect(a, erinA);
  const onB = await connect(b, erinB);
  const out = await request(b.port, 'POST', '/logout', { cookie: erinB, body: { everywhere: true } });
  assert.equal(out.status, 200);
  assert.deepEqual(await Promise.all([onA.closed, onB.closed]), [{ code: 1008 }, { code: 1008 }]);

  // One session: its socket closes, the user's other session's stays.
  const frankA = await login(a, 'frank');
  const frankB = await login(b, 'frank');
  const ended = await connect(a, frankA);
  const kept = await connect(a, frankB);
  assert.equal((await request(b.port, 'POST', '/logout', { cookie: frankA, body: {} })).status, 200);
  assert.deepEqual(await ended.closed, { code: 1008 });
  const still = await client.publish({ userId: 'frank' }, 'note', JSON.stringify({ text: 'still here' }));
  assert.deepEqual(await kept.next(), { event: 'note', text: 'still here', ...withSequence(still) });
  kept.ws.close(1000);
  await kept.closed;
});

test('an upgrade from a foreign origin or without a live session is refused', async () => {
  const cookie = await login(a, 'grace');
  const refused = (p) => p.then(() => assert.fail('opened'), (err) => [err.status, err.body]);
  assert.deepEqual(await refused(connect(a, cookie, { Origin: 'https://elsewhere.example' })),
                   [403, { error: 'cross-origin request refused' }]);
  assert.deepEqual(await refused(connect(a, cookie, { 'Sec-Fetch-Site': 'cross-site' })),
                   [403, { error: 'cross-origin request refused' }]);
  assert.deepEqual(await refused(connect(a, undefined)), [401, { error: 'no valid session' }]);
  assert.deepEqual(await refused(connect(a, 'radar_sid=forged')), [401, { error: 'no valid session' }]);
  // The app's own origin is allowed.
  const ok = await connect(a, cookie, { Origin: `http://127.0.0.1:${a.port}` });
  assert.equal(ok.hello.user, 'grace');
  ok.ws.close(1000);
  await ok.closed;
});

test('a client that does not read is closed with 1008 once its send queue is full', async (t) => {
  // attachWebSockets in this process, on the sidecar of a.
  const server = http.createServer((req, res) => res.end());
  const errors = [];
  const sockets = attachWebSockets(server, client, { cookieName: 'sid', maxQueuedMessages: 8, maxQueuedBytes: 1 << 16,
                                                     onError: (err) => errors.push(err.message) });
  t.after(() => {
    sockets.close();
    server.closeAllConnections();
    server.close();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  await sockets.ready;
  const { cookie } = await client.createSession({ userId: 'ivan' });
  const slow = await connect({ port: server.address().port }, `sid=${cookie}`);
  assert.deepEqual(sockets.connections(), [slow.hello.conn]);
  slow.ws._socket.pause();  // reads nothing more: the kernel's buffers fill, then the queue
  const payload = JSON.stringify({ fill: 'x'.repeat(16384) });
  for (let i = 0; sockets.connections().length > 0; ++i) {
    assert.ok(i < 10000, 'never closed');
    await client.publish({ connection: { connId: slow.hello.conn } }, 'fill', payload);
  }
  assert.match(errors.join('\n'), /client not reading \(\d+ messages queued\): closing/);
  slow.ws._socket.resume();  // what was sent, then the close
  assert.deepEqual(await slow.closed, { code: 1008 });
});

// Last: the sidecar of a drains (that of b too without redis-server: the same one).
test('the drain closes the sockets with 1012 and the app exits 0', async () => {
  const open = await connect(a, await login(a, 'heidi'));
  a.started.child.kill('SIGTERM');
  assert.deepEqual(await open.closed, { code: 1012 });
  assert.deepEqual(await a.started.exited, { code: 0, signal: null });
});

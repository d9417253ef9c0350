// The example app (example/server.js) against a real sidecar: radar-app's
// routes, JSON bodies, status codes and cookie, and its drain on SIGTERM
// (forwarded to the sidecar, reported, exit 0).
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startSidecar, startExample, request } = require('./support');

let sidecar;
let app;
let port;
let exited;

before(async () => {
  sidecar = await startSidecar('example');
  const started = startExample(sidecar.socket, { RADAR_MAX_BODY_BYTES: '1000' });
  ({ child: app, exited } = started);
  const line = await started.listening;
  assert.equal(typeof line, 'string', `the example exited: ${started.output.join('\n')}`);
  port = Number(/:(\d+)$/.exec(line)[1]);
});

const call = (method, urlPath, options) => request(port, method, urlPath, options);
// The cookie a response set, as a Cookie header ("radar_sid=...").
const cookieOf = (r) => r.headers['set-cookie']?.[0]?.split(';')[0];

async function login(user, cookie) {
  const r = await call('POST', '/login', { cookie, body: { user } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { user, instance: 'example' });
  return cookieOf(r);
}

test('login sets radar_sid; the cart is one attribute per item, listed sorted by /me', async () => {
  const r = await call('POST', '/login', { body: { user: 'alice' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-instance-id'], 'example');
  assert.match(r.headers['set-cookie'][0], /^radar_sid=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/);
  const cookie = cookieOf(r);
  const long = 'x'.repeat(128);  // too long for an attribute name: hashed
  for (const item of ['pear', long, 'Äpfel', 'apple']) {
    const added = await call('POST', '/cart', { cookie, body: { item } });
    assert.deepEqual([added.status, added.body], [200, { item, instance: 'example' }]);
  }
  const me = await call('GET', '/me', { cookie });
  assert.deepEqual(me.body, { user: 'alice', cart: ['apple', 'pear', long, 'Äpfel'].sort(), instance: 'example' });
});

test('a guest\'s cart comes along at login; another user\'s login starts afresh', async () => {
  const guest = await call('POST', '/guest', { body: {} });
  assert.deepEqual([guest.status, guest.body], [200, { user: '', instance: 'example' }]);
  assert.equal((await call('POST', '/cart', { cookie: cookieOf(guest), body: { item: 'tea' } })).status, 200);
  // No opt-out for an anonymous session.
  assert.equal((await call('GET', '/analytics/opt-out', { cookie: cookieOf(guest) })).status, 401);
  const bob = await login('bob', cookieOf(guest));
  assert.notEqual(bob, cookieOf(guest));
  assert.equal((await call('GET', '/me', { cookie: cookieOf(guest) })).status, 401, 'the old id ended');
  assert.deepEqual((await call('GET', '/me', { cookie: bob })).body.cart, ['tea']);
  const carol = await login('carol', bob);
  assert.deepEqual((await call('GET', '/me', { cookie: carol })).body, { user: 'carol', cart: [], instance: 'example' });
  assert.equal((await call('GET', '/me', { cookie: bob })).status, 401);
});

test('opt-out, broadcast and logout answer as radar-app', async () => {
  const cookie = await login('dave');
  assert.deepEqual((await call('GET', '/analytics/opt-out', { cookie })).body, { subject: 'dave', opted_out: false });
  const set = await call('POST', '/analytics/opt-out', { cookie, body: { opted_out: true } });
  assert.deepEqual([set.status, set.body], [200, { subject: 'dave', opted_out: true }]);
  assert.deepEqual((await call('GET', '/analytics/opt-out', { cookie })).body, { subject: 'dave', opted_out: true });
  assert.equal((await call('POST', '/analytics/opt-out', { cookie, body: { opted_out: 'yes' } })).status, 400);

  const toUser = await call('POST', '/broadcast', { cookie, body: { msg: 'hi', user: 'erin' } });
  assert.equal(toUser.status, 200);
  assert.deepEqual(Object.keys(toUser.body).sort(), ['instances', 'sequence']);
  assert.equal(typeof toUser.body.sequence, 'number');
  const toRoom = await call('POST', '/broadcast', { cookie, body: { msg: 'hi', room: 'lobby' } });
  assert.deepEqual([toRoom.status, toRoom.body.error], [403, 'join the room over the WebSocket before broadcasting to it']);
  assert.equal((await call('POST', '/broadcast', { cookie, body: { msg: 'hi', room: 'a', user: 'b' } })).status, 400);

  const out = await call('POST', '/logout', { cookie, body: { everywhere: true } });
  assert.deepEqual([out.status, out.body], [200, { logged_out: true }]);
  assert.match(out.headers['set-cookie'][0], /^radar_sid=; Path=\/; HttpOnly; SameSite=Lax; Max-Age=0$/);
  assert.equal((await call('GET', '/me', { cookie })).status, 401);
});

test('bad requests get radar-app\'s status codes', async () => {
  const cookie = await login('frank');
  const cases = [
    [404, 'GET', '/nope', {}],
    [405, 'DELETE', '/me', {}],
    [426, 'GET', '/ws', {}],
    [401, 'GET', '/me', {}],
    [401, 'GET', '/me', { cookie: 'radar_sid=forged' }],
    [401, 'POST', '/cart', { body: { item: 'x' } }],
    [415, 'POST', '/cart', { cookie, body: 'item', headers: { 'Content-Type': 'text/plain' } }],
    [403, 'POST', '/cart', { cookie, body: { item: 'x' }, headers: { Origin: 'https://elsewhere.example' } }],
    [413, 'POST', '/cart', { cookie, body: { item: 'x'.repeat(2000) } }],
    [400, 'POST', '/cart', { cookie, body: '[1]' }],
    [400, 'POST', '/cart', { cookie, body: { item: 'x'.repeat(129) } }],
    [400, 'POST', '/login', { body: { user: 'a b' } }],
    [400, 'POST', '/login', { body: '{"user":"\\ud800"}' }],
    [400, 'POST', '/logout', { cookie, body: { everywhere: 1 } }],
  ];
  for (const [status, method, urlPath, options] of cases) {
    const r = await call(method, urlPath, options);
    assert.equal(r.status, status, `${method} ${urlPath} ${JSON.stringify(options)}: ${JSON.stringify(r.body)}`);
    assert.equal(typeof r.body.error, 'string');
    assert.equal(r.headers['x-instance-id'], 'example');
  }
  assert.equal((await call('DELETE', '/me')).headers.allow, 'GET');
  assert.equal((await call('PUT', '/analytics/opt-out')).headers.allow, 'GET, POST');
});

test('a bad setting exits 2 naming it', async () => {
  const bad = startExample(sidecar.socket, { RADAR_DRAIN_IDLE_GRACE_MS: 'soon' });
  assert.deepEqual(await bad.exited, { code: 2, signal: null });
  assert.match(bad.output.join('\n'), /RADAR_DRAIN_IDLE_GRACE_MS: bad value "soon"/);
});

test('RADAR_FORWARD_SIGTERM=false: a signal is only noted, a second one exits 1', async () => {
  const other = startExample(sidecar.socket, { RADAR_FORWARD_SIGTERM: 'false' });
  assert.equal(typeof await other.listening, 'string', other.output.join('\n'));
  const noted = other.line(/signal not forwarded/);
  other.child.kill('SIGTERM');
  assert.equal(typeof await Promise.race([noted, other.exited]), 'string', 'the first signal ended it');
  other.child.kill('SIGTERM');
  assert.deepEqual(await other.exited, { code: 1, signal: null });
});

// Last: the app is gone afterwards.
test('SIGTERM drains through the sidecar: the app reports and exits 0, the sidecar exits 0', async () => {
  assert.deepEqual((await call('GET', '/healthz')).body, { status: 'ok', instance: 'example' });
  app.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null });
  assert.equal(await sidecar.exited, 0);
});

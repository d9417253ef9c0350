// sessions(): the middleware on a plain node:http server (the (req, res,
// next) shape Express calls) against a real sidecar.
'use strict';
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { Client, StatesideError, sessions } = require('..');
const { startSidecar } = require('./support');

describe('the sessions middleware', () => {
  let client;
  let server;
  let base;
  before(async () => {
    const sidecar = await startSidecar('middleware');
    client = await Client.connect({ socketPath: sidecar.socket, readyTimeoutMs: 30000 });
    const middleware = sessions(client, { encoding: 'utf8' });
    const routes = {
      'GET /cart': async (req) => req.session?.attributes.cart ?? 'none',
      'POST /cart': async (req, url) => {
        const item = url.searchParams.get('item');
        if (!req.session) return (await req.stateside.create({ attributes: { cart: item } })).attributes.cart;
        const version = url.searchParams.get('version');
        const s = await req.stateside.update({
          set: { cart: `${req.session.attributes.cart},${item}` },
          ...(version ? { expectedVersion: BigInt(version) } : {}),
        });
        return s.attributes.cart;
      },
      'POST /login': async (req, url) => {
        const s = await req.stateside.regenerate({ userId: url.searchParams.get('user') });
        return `${s.userId}:${s.attributes.cart ?? ''}`;
      },
      'POST /logout': async (req) => {
        await req.stateside.destroy();
        return 'bye';
      },
      'GET /version': async (req) => String(req.session.version),
    };
    server = http.createServer((req, res) => {
      middleware(req, res, async (err) => {
        const url = new URL(req.url, 'http://x');
        try {
          if (err) throw err;
          const body = await routes[`${req.method} ${url.pathname}`](req, url);
          res.end(body);
        } catch (e) {
          res.statusCode = e instanceof StatesideError && e.reason === 'VERSION_MISMATCH' ? 409 : 500;
          res.end(e.message);
        }
      });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${server.address().port}`;
  });
  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
    client?.close();
  });

  // A request with `cookie` (a sid value, or none): { status, body, setCookie }.
  async function call(method, pathAndQuery, cookie) {
    const r = await fetch(base + pathAndQuery, { method, headers: cookie ? { cookie: `other=1; sid=${cookie}` } : {} });
    return { status: r.status, body: await r.text(), setCookie: r.headers.getSetCookie() };
  }
  const sidOf = (setCookie) => /^sid=([^;]*)/.exec(setCookie.find((l) => l.startsWith('sid=')) ?? '')?.[1];

  test('a session is created with its cookie, read back, and updated', async () => {
    const none = await call('GET', '/cart');
    assert.deepEqual([none.body, none.setCookie], ['none', []]);
    const created = await call('POST', '/cart?item=apple');
    assert.equal(created.body, 'apple');
    assert.equal(created.setCookie.length, 1);
    assert.match(created.setCookie[0], /^sid=[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
    const sid = sidOf(created.setCookie);
    assert.equal((await call('POST', '/cart?item=pear', sid)).body, 'apple,pear');
    const read = await call('GET', '/cart', sid);
    assert.deepEqual([read.body, read.setCookie], ['apple,pear', []]);
  });

  test('compare-and-set through the middleware: a stale version is a conflict', async () => {
    const sid = sidOf((await call('POST', '/cart?item=a')).setCookie);
    const version = (await call('GET', '/version', sid)).body;
    assert.equal((await call('POST', `/cart?item=b&version=${version}`, sid)).status, 200);
    const stale = await call('POST', `/cart?item=c&version=${version}`, sid);
    assert.equal(stale.status, 409);
    assert.equal((await call('GET', '/cart', sid)).body, 'a,b');
  });

  test('an unknown or forged cookie is no session, and is cleared', async () => {
    const live = sidOf((await call('POST', '/cart?item=x')).setCookie);
    for (const cookie of [`${live.split('.')[0]}.${'A'.repeat(43)}`, 'garbage']) {
      const r = await call('GET', '/cart', cookie);
      assert.equal(r.body, 'none');
      assert.deepEqual(r.setCookie, ['sid=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0']);
    }
  });

  test('login regenerates: a new cookie, the cart kept, the old cookie dead; logout clears', async () => {
    const anon = sidOf((await call('POST', '/cart?item=book')).setCookie);
    const login = await call('POST', '/login?user=mw-alice', anon);
    assert.equal(login.body, 'mw-alice:book');
    const sid = sidOf(login.setCookie);
    assert.ok(sid && sid !== anon);
    assert.equal((await call('GET', '/cart', anon)).body, 'none');
    assert.equal((await call('GET', '/cart', sid)).body, 'book');
    const logout = await call('POST', '/logout', sid);
    assert.deepEqual(logout.setCookie, ['sid=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0']);
    assert.equal((await call('GET', '/cart', sid)).body, 'none');
    assert.deepEqual((await client.listUserSessions('mw-alice')).sessions, []);
  });

  test('options are checked and shape the cookie', async () => {
    assert.throws(() => sessions(client, { cookie: 'sid' }), { name: 'TypeError', message: /unknown option "cookie"/ });
    assert.throws(() => sessions(client, { sameSite: 'lax' }), TypeError);
    assert.throws(() => sessions(client, { cookieName: 'a b' }), TypeError);
    const headers = { 'Set-Cookie': 'other=1' };
    const res = { getHeader: (k) => headers[k], setHeader: (k, v) => { headers[k] = v; } };
    const req = { headers: {} };
    const middleware = sessions(client, { cookieName: 'app', secure: false, sameSite: 'Strict', path: '/app' });
    await new Promise((resolve, reject) => middleware(req, res, (err) => (err ? reject(err) : resolve())));
    const s = await req.stateside.create({});
    assert.deepEqual(headers['Set-Cookie'], ['other=1', `app=${s.cookie}; Path=/app; HttpOnly; SameSite=Strict`]);
    assert.ok(Buffer.isBuffer((await req.stateside.update({ set: { a: 'b' } })).attributes.a),
              'without the encoding option, values are Buffers');
  });
});

// sessions(): the middleware on plain node:http servers (the (req, res,
// next) shape Express calls) against real sidecars: two sidecars on one
// redis-server (one memory-store sidecar when redis-server is missing),
// one app server on each, like two pods.
'use strict';
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { Client, StatesideError, sessions } = require('..');
const { startSidecarPair, redisAvailable } = require('./support');

// One app server on `client`: the routes a shop has. { base, server }.
async function startApp(client) {
  const middleware = sessions(client, { encoding: 'utf8', secure: false });
  const routes = {
    // One attribute per item (as radar-app's /cart): concurrent adds merge.
    'POST /cart': async (req, url) => {
      const item = url.searchParams.get('item');
      req.session[`cart:${item}`] = item;
      return item;
    },
    'GET /cart': async (req) => Object.keys(req.session).filter((k) => k.startsWith('cart:'))
      .map((k) => req.session[k]).sort().join(',') || 'none',
    'DELETE /cart': async (req, url) => {
      delete req.session[`cart:${url.searchParams.get('item')}`];
      return 'removed';
    },
    // Compare-and-set of one attribute at the version the client read.
    'POST /note': async (req, url) => {
      req.session.note = url.searchParams.get('text');
      await req.session.save({ expectedVersion: BigInt(url.searchParams.get('version')) });
      return req.session.note;
    },
    // Another writer changes the session while this request runs.
    'POST /race': async (req) => {
      await client.updateSession({ id: req.session.id }, { set: { 'cart:a': 'theirs', theirs: 'kept' } });
      req.session.mine = 'set';
      return 'ok';
    },
    'POST /login': async (req, url) => {
      await req.session.regenerate({ userId: url.searchParams.get('user') });
      return `${req.session.userId}:${req.session['cart:book'] ?? ''}`;
    },
    'POST /logout': async (req) => {
      await req.session.destroy();
      return 'bye';
    },
    'GET /version': async (req) => String(req.session.version ?? 'none'),
    // A value that is not UTF-8 (another client may write one).
    'POST /binary': async (req) => {
      req.session.blob = Buffer.from([0xff, 0x41]);
      return 'set';
    },
    'GET /blob': async (req) => (Buffer.isBuffer(req.session.blob) ? req.session.blob.toString('hex')
                                                                   : typeof req.session.blob),
    'POST /stream': async (req, _url, res) => {
      res.write('first,');
      req.session.late = 'x';
      return 'second';
    },
  };
  const server = http.createServer((req, res) => {
    middleware(req, res, async (err) => {
      const url = new URL(req.url, 'http://x');
      try {
        if (err) throw err;
        const body = await routes[`${req.method} ${url.pathname}`](req, url, res);
        res.end(body);
      } catch (e) {
        res.statusCode = e instanceof StatesideError && e.reason === 'VERSION_MISMATCH' ? 409 : 500;
        res.end(e.message);
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

describe('the sessions middleware', () => {
  const clients = [];
  const apps = [];
  let client;
  before(async () => {
    const sockets = await startSidecarPair('mw');
    for (const socketPath of sockets) {
      const c = await Client.connect({ socketPath, readyTimeoutMs: 30000 });
      clients.push(c);
      apps.push(await startApp(c));
    }
    client = clients[0];
  });
  after(async () => {
    for (const { server } of apps) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    for (const c of clients) c.close();
  });

  // A request to app `n` with `cookie` (a sid value, or none): { status,
  // body, setCookie, instance }.
  async function call(method, pathAndQuery, cookie, n = 0) {
    const r = await fetch(apps[n].base + pathAndQuery,
                          { method, headers: cookie ? { cookie: `other=1; sid=${cookie}` } : {} });
    return { status: r.status, body: await r.text(), setCookie: r.headers.getSetCookie(),
             instance: r.headers.get('x-instance-id') };
  }
  const sidOf = (setCookie) => /^sid=([^;]*)/.exec(setCookie.find((l) => l.startsWith('sid=')) ?? '')?.[1];
  const CLEAR = 'sid=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0';

  test('the first attribute set creates the session and its cookie; a request that changes nothing writes nothing',
       async () => {
    const none = await call('GET', '/cart');
    assert.deepEqual([none.body, none.setCookie], ['none', []], 'no session is made for a read');
    const created = await call('POST', '/cart?item=apple');
    assert.equal(created.body, 'apple');
    assert.equal(created.setCookie.length, 1);
    assert.match(created.setCookie[0], /^sid=[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/);
    const sid = sidOf(created.setCookie);
    assert.equal((await call('POST', '/cart?item=pear', sid)).body, 'pear');
    const version = (await call('GET', '/version', sid)).body;
    const read = await call('GET', '/cart', sid);
    assert.deepEqual([read.body, read.setCookie], ['apple,pear', []]);
    assert.equal((await call('GET', '/version', sid)).body, version, 'reads wrote nothing');
    assert.equal((await call('DELETE', '/cart?item=apple', sid)).body, 'removed');
    assert.equal((await call('GET', '/cart', sid)).body, 'pear');
  });

  test('only the attributes a request changed are written: another writer\'s change meanwhile survives', async () => {
    const sid = sidOf((await call('POST', '/cart?item=a')).setCookie);
    assert.equal((await call('POST', '/race', sid)).status, 200);
    const s = await client.getSession({ cookie: sid }, { encoding: 'utf8' });
    assert.deepEqual(s.attributes, { 'cart:a': 'theirs', theirs: 'kept', mine: 'set' });
  });

  test('save with expectedVersion: a stale version is a conflict', async () => {
    const sid = sidOf((await call('POST', '/cart?item=a')).setCookie);
    const version = (await call('GET', '/version', sid)).body;
    assert.equal((await call('POST', `/note?text=b&version=${version}`, sid)).body, 'b');
    assert.equal((await call('POST', `/note?text=c&version=${version}`, sid)).status, 409);
    const s = await client.getSession({ cookie: sid }, { encoding: 'utf8' });
    assert.equal(s.attributes.note, 'b');
  });

  test('50 concurrent adds on one cookie, spread over two servers (two sidecars on one Redis), are all kept',
       async () => {
    const first = await call('POST', '/cart?item=item-00');
    const sid = sidOf(first.setCookie);
    const items = Array.from({ length: 50 }, (_, i) => `item-${String(i + 1).padStart(2, '0')}`);
    const answers = await Promise.all(items.map((item, i) => call('POST', `/cart?item=${item}`, sid, i % 2)));
    assert.deepEqual(answers.map((a) => a.status), items.map(() => 200));
    assert.deepEqual(answers.map((a) => a.setCookie), items.map(() => []), 'the session was not replaced');
    const instances = new Set(answers.map((a) => a.instance));
    assert.equal(instances.size, redisAvailable() ? 2 : 1, [...instances].join());
    for (const n of [0, 1]) {
      assert.equal((await call('GET', '/cart', sid, n)).body, ['item-00', ...items].join(','));
    }
  });

  test('X-Instance-Id is the sidecar\'s instance on every response', async () => {
    for (const n of [0, 1]) {
      const r = await call('GET', '/cart', undefined, n);
      assert.equal(r.instance, (await clients[n].getInstance()).instance.id);
    }
  });

  test('login regenerates with a new owner: a new cookie, the cart kept, the old cookie dead; logout clears',
       async () => {
    const anon = sidOf((await call('POST', '/cart?item=book')).setCookie);
    const login = await call('POST', '/login?user=mw-alice', anon, 1);
    assert.equal(login.body, 'mw-alice:book');
    const sid = sidOf(login.setCookie);
    assert.ok(sid && sid !== anon);
    assert.equal((await call('GET', '/cart', anon)).body, 'none');
    assert.equal((await call('GET', '/cart', sid)).body, 'book');
    const logout = await call('POST', '/logout', sid);
    assert.deepEqual(logout.setCookie, [CLEAR]);
    assert.equal((await call('GET', '/cart', sid)).body, 'none');
    assert.deepEqual((await client.listUserSessions('mw-alice')).sessions, []);
    // Login without a session: a new one for the user.
    const fresh = await call('POST', '/login?user=mw-bob');
    assert.equal(fresh.body, 'mw-bob:');
    assert.ok(sidOf(fresh.setCookie));
  });

  test('an unknown or forged cookie is no session, and is cleared', async () => {
    const live = sidOf((await call('POST', '/cart?item=x')).setCookie);
    for (const cookie of [`${live.split('.')[0]}.${'A'.repeat(43)}`, 'garbage']) {
      const r = await call('GET', '/cart', cookie);
      assert.equal(r.body, 'none');
      assert.deepEqual(r.setCookie, [CLEAR]);
    }
  });

  test('with encoding utf8, a value that is not UTF-8 is a Buffer: no request fails on it, nor the write of it',
       async () => {
    const sid = sidOf((await call('POST', '/cart?item=a')).setCookie);
    const set = await call('POST', '/binary', sid);
    assert.deepEqual([set.status, set.body], [200, 'set']);
    for (const n of [0, 1]) {
      const read = await call('GET', '/blob', sid, n);
      assert.deepEqual([read.status, read.body, read.setCookie], [200, 'ff41', []]);
      assert.equal((await call('GET', '/cart', sid, n)).body, 'a', 'the other values still decode');
    }
  });

  test('of several cookies of the session\'s name, the first live one counts; none is cleared then', async () => {
    const live = sidOf((await call('POST', '/cart?item=kept')).setCookie);
    const forged = `${live.split('.')[0]}.${'A'.repeat(43)}`;
    const r = await fetch(`${apps[0].base}/cart`, { headers: { cookie: `sid=${forged}; sid=garbage; sid=${live}` } });
    assert.equal(await r.text(), 'kept');
    assert.deepEqual(r.headers.getSetCookie(), [], 'the live cookie is not cleared for a planted one');
  });

  test('next is called once, even when the handler it runs throws', async () => {
    const headers = {};
    const res = { getHeader: (k) => headers[k], setHeader: (k, v) => { headers[k] = v; }, end() {} };
    const middleware = sessions(client, { instanceId: false });
    const calls = [];
    const thrown = new Error('the handler failed');
    await assert.rejects(middleware({ headers: {} }, res, (err) => {
      calls.push(err);
      throw thrown;
    }), thrown);
    assert.deepEqual(calls, [undefined]);
  });

  test('a write after the headers went out cannot set a new session\'s cookie: the response is cut', async () => {
    await assert.rejects(call('POST', '/stream'));
  });

  test('a save that fails before the response answers 401 when the session ended meanwhile', async () => {
    const sid = sidOf((await call('POST', '/cart?item=a')).setCookie);
    const headers = {};
    let ended;
    const endedOnce = new Promise((resolve) => { ended = resolve; });
    const res = {
      statusCode: 200, headersSent: false,
      getHeader: (k) => headers[k], setHeader: (k, v) => { headers[k] = v; }, removeHeader: (k) => { delete headers[k]; },
      end(body) { ended({ status: this.statusCode, body }); },
    };
    const req = { headers: { cookie: `sid=${sid}` } };
    const middleware = sessions(client, { encoding: 'utf8' });
    await new Promise((resolve, reject) => middleware(req, res, (e) => (e ? reject(e) : resolve())));
    await client.destroySession({ cookie: sid });
    req.session['cart:b'] = 'b';
    res.end('app body');
    assert.deepEqual(await endedOnce, { status: 401, body: 'session ended\n' });
  });

  test('options and names are checked, and options shape the cookie', async () => {
    assert.throws(() => sessions(client, { cookie: 'sid' }), { name: 'TypeError', message: /unknown option "cookie"/ });
    assert.throws(() => sessions(client, { sameSite: 'lax' }), TypeError);
    assert.throws(() => sessions(client, { sameSite: 'None', secure: false }), TypeError);
    assert.throws(() => sessions(client, { cookieName: 'a b' }), TypeError);
    assert.throws(() => sessions(client, { maxAge: -1 }), TypeError);
    assert.throws(() => sessions(client, { httpOnly: 'yes' }), TypeError);
    const headers = { 'Set-Cookie': 'other=1' };
    const res = { getHeader: (k) => headers[k], setHeader: (k, v) => { headers[k] = v; }, end() {} };
    const req = { headers: {} };
    const middleware = sessions(client, { cookieName: 'app', sameSite: 'Strict', path: '/app', httpOnly: false,
                                          maxAge: 3600500, instanceId: 'pod-7' });
    await new Promise((resolve, reject) => middleware(req, res, (err) => (err ? reject(err) : resolve())));
    assert.equal(headers['X-Instance-Id'], 'pod-7');
    assert.equal(req.session.isNew, true);
    assert.throws(() => { req.session.save = 'x'; }, { name: 'TypeError', message: /use get\/set/ });
    assert.throws(() => { req.session.a = 42; }, TypeError);
    req.session.set('id', 'an attribute named id');
    req.session.a = 'b';
    assert.equal(req.session.isModified, true);
    await req.session.save();
    assert.equal(req.session.isModified, false);
    assert.equal(headers['Set-Cookie'].length, 2);
    assert.equal(headers['Set-Cookie'][0], 'other=1');
    assert.match(headers['Set-Cookie'][1], /^app=[\w-]+\.[\w-]+; Path=\/app; SameSite=Strict; Secure; Max-Age=3600$/);
    assert.equal(req.session.a, 'b', 'a value reads back as assigned');
    await req.session.reload();
    assert.ok(Buffer.isBuffer(req.session.a), 'without the encoding option, stored values are Buffers');
    assert.equal(req.session.get('id').toString(), 'an attribute named id');
    assert.notEqual(req.session.id, req.session.get('id'));
    // The callback form, as express-session's.
    await new Promise((resolve, reject) => req.session.destroy((err) => (err ? reject(err) : resolve())));
    assert.equal(req.session.isNew, true);
    assert.deepEqual(Object.keys(req.session), []);
  });
});

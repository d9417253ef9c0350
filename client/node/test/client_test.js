// @stateside/client against a real sidecar: on its memory store, and on a
// real redis-server when one is installed.
'use strict';
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client, StatesideError, status } = require('..');
const { startSidecar, startRedis, redisAvailable, waitFor } = require('./support');

// Asserts that `promise` rejects with a StatesideError of `code` and `reason`.
async function rejectsWith(promise, code, reason, field) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof StatesideError, `a StatesideError, not ${err}`);
    assert.equal(err.code, code, `${err.codeName}: ${err.message}`);
    assert.equal(err.reason, reason);
    if (field !== undefined) assert.equal(err.field, field);
    return true;
  });
}

// The tests that read a stream: a lost event fails them in time.
const T = { timeout: 30000 };

const BACKENDS = [['memory', false]];
if (redisAvailable()) BACKENDS.push(['redis', true]);
else test('on Redis', { skip: 'redis-server is not installed' }, () => {});

for (const [backend, onRedis] of BACKENDS) {
  describe(`on the ${backend} store`, () => {
    let client;
    let n = 0;
    const user = () => `user-${backend}-${process.pid}-${++n}`;
    before(async () => {
      const redis = onRedis ? await startRedis() : null;
      const sidecar = await startSidecar(backend, { redisPort: redis?.port });
      client = await Client.connect({ socketPath: sidecar.socket, readyTimeoutMs: 30000 });
    });
    after(() => client?.close());

    test('getInstance reports the store and the capabilities', async () => {
      const info = await client.getInstance();
      assert.equal(info.capabilities.topology, onRedis ? 'standalone' : 'memory');
      assert.ok(info.apiRevision >= 3);
      assert.equal(info.capabilities.requestIds, true);
      assert.equal(info.instance.drainState, 'serving');
      assert.equal(typeof info.instance.pid, 'number');
      assert.ok(info.instance.startTime instanceof Date);
    });

    test('compare-and-set: a stale expectedVersion is ABORTED, the current one applies', async () => {
      const s = await client.createSession({ userId: user(), attributes: { n: '1' } });
      assert.equal(typeof s.version, 'bigint');
      const first = await client.updateSession({ id: s.id }, { set: { n: '2' }, expectedVersion: s.version });
      assert.equal(first.version, s.version + 1n);
      await rejectsWith(client.updateSession({ id: s.id }, { set: { n: '3' }, expectedVersion: s.version }),
                        status.ABORTED, 'VERSION_MISMATCH');
      // A Number is accepted for a version, as a bigint is.
      await client.updateSession({ cookie: s.cookie }, { set: { n: '3' }, expectedVersion: Number(first.version) });
      const got = await client.getSession({ id: s.id }, { encoding: 'utf8' });
      assert.equal(got.attributes.n, '3');
      assert.equal(got.version, first.version + 1n);
    });

    test('a destroyed session stays destroyed: a late update does not bring it back', async () => {
      const u = user();
      const s = await client.createSession({ userId: u, attributes: { cart: '[1]' } });
      assert.equal(await client.destroySession({ id: s.id }), true);
      assert.equal(await client.destroySession({ id: s.id }), false, 'destroy is idempotent');
      await rejectsWith(client.updateSession({ cookie: s.cookie }, { set: { cart: '[9]' } }),
                        status.NOT_FOUND, 'NOT_FOUND');
      await rejectsWith(client.getSession({ id: s.id }), status.NOT_FOUND, 'NOT_FOUND');
      await rejectsWith(client.touchSession({ id: s.id }), status.NOT_FOUND, 'NOT_FOUND');
      assert.deepEqual((await client.listUserSessions(u)).sessions, []);
    });

    test('concurrent updates of different attributes both survive; remove deletes one', async () => {
      const s = await client.createSession({ attributes: { keep: 'k', gone: 'g' } });
      const key = { id: s.id };
      await Promise.all([
        client.updateSession(key, { set: { a: 'A' } }),
        client.updateSession(key, { set: { b: 'B' } }),
        client.updateSession(key, { remove: ['gone'] }),
      ]);
      const got = await client.getSession(key, { encoding: 'utf8' });
      assert.deepEqual(got.attributes, { keep: 'k', a: 'A', b: 'B' });
      assert.equal(got.version, s.version + 3n);
    });

    test('regenerate gives an anonymous session its owner, keeping its data under a new id', async () => {
      const u = user();
      const anon = await client.createSession({ attributes: { cart: Buffer.from([1, 2, 3]) } });
      assert.equal(anon.userId, '');
      const logged = await client.regenerateSession({ cookie: anon.cookie }, { userId: u });
      assert.notEqual(logged.id, anon.id);
      assert.notEqual(logged.cookie, anon.cookie);
      assert.equal(logged.userId, u);
      assert.deepEqual(logged.attributes, { cart: Buffer.from([1, 2, 3]) });
      await rejectsWith(client.getSession({ id: anon.id }), status.NOT_FOUND, 'NOT_FOUND');
      const listed = await client.listUserSessions(u);
      assert.deepEqual(listed.sessions.map((x) => x.id), [logged.id]);
      // Only an anonymous session may be given an owner.
      await rejectsWith(client.regenerateSession({ id: logged.id }, { userId: user() }),
                        status.FAILED_PRECONDITION, 'SESSION_OWNED');
    });

    test('not found is alike for unknown, forged, malformed and destroyed sessions', async () => {
      const s = await client.createSession({});
      await client.destroySession({ id: s.id });
      const live = await client.createSession({});
      const forged = `${live.id}.${'A'.repeat(43)}`;
      const errors = [];
      for (const key of [{ id: 'A'.repeat(43) }, { cookie: forged }, { id: 'not an id' },
                         { cookie: 'x.y' }, { id: s.id }, { cookie: s.cookie }]) {
        errors.push(await client.getSession(key).then(() => null, (e) => e));
      }
      for (const e of errors) {
        assert.ok(e instanceof StatesideError, String(e));
        assert.deepEqual([e.code, e.reason, e.message, e.field],
                         [status.NOT_FOUND, 'NOT_FOUND', errors[0].message, undefined]);
      }
      // The live session is still there (the forged cookie named its id).
      assert.equal((await client.getSession({ id: live.id })).id, live.id);
    });

    test('attribute values: bytes exactly as given, Buffers back, strings only on request', async () => {
      const raw = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]);  // not UTF-8
      const text = 'héllo ✓ 😀';
      const s = await client.createSession({
        attributes: { raw, text, u8: new Uint8Array([7, 8, 9]).subarray(1), empty: '' },
      });
      for (const got of [s, await client.getSession({ id: s.id })]) {
        assert.ok(Buffer.isBuffer(got.attributes.raw));
        assert.deepEqual(got.attributes.raw, raw);
        assert.deepEqual(got.attributes.text, Buffer.from(text, 'utf8'));
        assert.deepEqual(got.attributes.u8, Buffer.from([8, 9]));
        assert.deepEqual(got.attributes.empty, Buffer.alloc(0));
      }
      const latin1 = await client.getSession({ id: s.id }, { encoding: 'latin1' });
      assert.equal(latin1.attributes.raw, raw.toString('latin1'));
      const hex = await client.getSession({ id: s.id }, { encoding: 'hex' });
      assert.equal(hex.attributes.raw, 'fffe0080c3');
      // utf8 decodes strictly: a value that is not UTF-8 is an error, never U+FFFD.
      await assert.rejects(client.getSession({ id: s.id }, { encoding: 'utf8' }),
                           { name: 'TypeError', message: /attribute "raw" is not valid UTF-8/ });
      await client.updateSession({ id: s.id }, { remove: ['raw'] });
      const utf8 = await client.getSession({ id: s.id }, { encoding: 'utf8' });
      assert.equal(utf8.attributes.text, text);
    });

    test('listUserSessions pages; destroyUserSessions keeps one', async () => {
      const u = user();
      const made = [];
      for (let i = 0; i < 5; ++i) made.push(await client.createSession({ userId: u }));
      const seen = [];
      let pageToken = '';
      let pages = 0;
      do {
        const page = await client.listUserSessions(u, { pageSize: 2, pageToken });
        assert.ok(page.sessions.length <= 2);
        seen.push(...page.sessions.map((x) => x.id));
        pageToken = page.nextPageToken;
        ++pages;
      } while (pageToken !== '');
      assert.ok(pages >= 3);
      assert.deepEqual([...seen].sort(), made.map((x) => x.id).sort());
      const all = [];
      for await (const x of client.allUserSessions(u)) all.push(x.id);
      assert.deepEqual(all.sort(), made.map((x) => x.id).sort());
      assert.equal(await client.destroyUserSessions(u, { keep: { id: made[2].id } }), 4);
      assert.deepEqual((await client.listUserSessions(u)).sessions.map((x) => x.id), [made[2].id]);
    });

    test('errors carry the ErrorInfo reason and field', async () => {
      await rejectsWith(client.listUserSessions(user(), { pageToken: 'not-a-token' }),
                        status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'page_token');
      await rejectsWith(client.createSession({ attributes: { 'tab\tname': 'x' } }),
                        status.INVALID_ARGUMENT, 'ATTRIBUTE_NAME_INVALID');
      // A request id names one request: the same one answers the first
      // answer, another request under it is refused.
      const u = user();
      const first = await client.createSession({ userId: u, requestId: `req-${u}` });
      const again = await client.createSession({ userId: u, requestId: `req-${u}` });
      assert.equal(again.id, first.id);
      await rejectsWith(client.createSession({ userId: u, requestId: `req-${u}`, attributes: { a: 'b' } }),
                        status.FAILED_PRECONDITION, 'REQUEST_ID_REUSED', undefined);
      assert.equal((await client.listUserSessions(u)).sessions.length, 1);
    });

    test('opt-outs', async () => {
      const subject = user();
      assert.equal(await client.getOptOut(subject), false);
      await client.setOptOut(subject, true, { ttlMs: 60000 });
      assert.equal(await client.getOptOut(subject), true);
      await client.setOptOut(subject, false);
      assert.equal(await client.getOptOut(subject), false);
    });

    test('realtime: a published event reaches a subscribed connection, payload bytes intact', T, async () => {
      const room = `room-${backend}`;
      const conn = `conn-${backend}`;
      const sub = await client.subscribe({ connections: [{ connId: conn, userId: user(), rooms: [room] }] });
      const payload = Buffer.from([0, 0xff, 0x10]);
      const published = await client.publish({ room }, 'ping', payload);
      assert.equal(typeof published.sequence, 'bigint');
      assert.equal(published.instances, 1);
      for await (const ev of sub) {
        assert.equal(ev.kind, 'delivery');
        assert.deepEqual([ev.target, ev.to, ev.event, ev.connIds, ev.sequence],
                         ['room', room, 'ping', [conn], published.sequence]);
        assert.deepEqual(ev.payload, payload);
        break;  // ends the stream
      }
      const history = await client.history(room);
      assert.equal(history.lastSequence, published.sequence);
      assert.deepEqual(history.events.at(-1).payload, payload);
    });

    test('session events: a watcher sees the changes of the kinds it asked for', T, async () => {
      const events = await client.watchSessionEvents({ kinds: ['created', 'updated'] });
      const u = user();
      const s = await client.createSession({ userId: u });
      await client.updateSession({ id: s.id }, { set: { b: '1', a: '2' } });
      await client.destroySession({ id: s.id });  // not a kind asked for
      const marker = await client.createSession({ userId: u });
      const seen = [];
      for await (const ev of events) {
        if (ev.kind !== 'change' || ev.userId !== u && ev.sessionId !== s.id) continue;
        seen.push([ev.change, ev.sessionId, ev.attributes]);
        if (ev.sessionId === marker.id) break;
      }
      assert.deepEqual(seen, [['created', s.id, []], ['updated', s.id, ['a', 'b']], ['created', marker.id, []]]);
      await assert.rejects(client.watchSessionEvents({ kinds: ['touched'] }), TypeError);
    });

    test('health, presence and the cluster-wide operations', T, async () => {
      assert.equal(await client.checkHealth(), 'SERVING');
      const u = user();
      const conn = `presence-${backend}`;
      const room = `presence-room-${backend}`;
      const sub = await client.subscribe();
      await client.registerConnection(conn, { userId: u, rooms: [room] });
      const members = await client.roomMembers(room);
      assert.equal(members.count, 1);
      assert.deepEqual(members.members.map((m) => m.connId), [conn]);
      assert.deepEqual((await client.userConnections(u)).map((m) => m.connId), [conn]);
      assert.ok(await client.joinConnections({ userId: u }, [`${room}-2`]) >= 1);
      await waitFor('the join applied', 10000,
                    async () => (await client.roomMembers(`${room}-2`)).count === 1);
      assert.ok(await client.leaveConnections({ room }, [`${room}-2`]) >= 1);
      await waitFor('the leave applied', 10000,
                    async () => (await client.roomMembers(`${room}-2`)).count === 0);
      assert.ok(await client.disconnectConnections({ connection: { connId: conn } }) >= 1);
      for await (const ev of sub) {
        if (ev.kind !== 'disconnect') continue;
        assert.deepEqual(ev.connIds, [conn]);
        break;
      }
      assert.deepEqual(await client.userConnections(u), []);
    });
  });
}

test('Client.connect waits for a sidecar that starts after it', T, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stateside-node-connect-'));
  try {
    const socket = path.join(dir, 's.sock');
    // Attempts of 100 ms: several have failed by the time a connect with
    // readyTimeoutMs 300 gives up, and this one is still waiting.
    const connecting = Client.connect({ socketPath: socket, readyTimeoutMs: 30000, callTimeoutMs: 100 });
    const first = await Promise.race([
      connecting.then(() => 'connected', () => 'failed'),
      Client.connect({ socketPath: socket, readyTimeoutMs: 300 }).then(() => 'probe connected', () => 'probe gave up'),
    ]);
    assert.equal(first, 'probe gave up');
    await startSidecar('late', { socket });
    const client = await connecting;
    assert.equal(await client.checkHealth(), 'SERVING');
    client.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('arguments are checked before any call', () => {
  // No sidecar at this path: a check that let the call through would answer
  // UNAVAILABLE instead of the TypeError.
  const client = new Client({ socketPath: '/nonexistent/stateside.sock', callTimeoutMs: 500 });
  after(() => client.close());

  test('unknown options are a TypeError', async () => {
    assert.throws(() => new Client({ socket: '/x' }), { name: 'TypeError', message: /unknown option "socket"/ });
    assert.throws(() => new Client({ callTimeoutMs: 0 }), TypeError);
    await assert.rejects(client.createSession({ userID: 'alice' }),
                         { name: 'TypeError', message: /createSession: unknown option "userID"/ });
    await assert.rejects(client.getSession({ id: 'x' }, { touched: false }), TypeError);
    await assert.rejects(client.updateSession({ id: 'x' }, { expected_version: 1 }), TypeError);
    await assert.rejects(client.getSession({ id: 'x' }, { encoding: 'utf-9' }), TypeError);
  });

  test('keys, texts, values and versions of the wrong kind are a TypeError', async () => {
    await assert.rejects(client.getSession('abc'), TypeError);
    await assert.rejects(client.getSession({ id: 'a', cookie: 'a.b' }), TypeError);
    await assert.rejects(client.getSession({}), TypeError);
    await assert.rejects(client.createSession({ userId: 'a\ud800' }), { message: /userId is not well-formed/ });
    await assert.rejects(client.createSession({ attributes: { a: 1 } }), TypeError);
    await assert.rejects(client.createSession({ attributes: { a: null } }), TypeError);
    await assert.rejects(client.updateSession({ id: 'x' }, { expectedVersion: 2 ** 53 }), TypeError);
    await assert.rejects(client.updateSession({ id: 'x' }, { expectedVersion: -1n }), RangeError);
    await assert.rejects(client.createSession({ requestId: 'has space' }), TypeError);
    await assert.rejects(client.publish({ room: 'r', userId: 'u' }, 'e', 'p'), TypeError);
  });

  test('a missing sidecar is UNAVAILABLE within the call deadline', async () => {
    const start = Date.now();
    await rejectsWith(client.getSession({ id: 'x' }), status.UNAVAILABLE, 'UNAVAILABLE');
    assert.ok(Date.now() - start < 1500, `took ${Date.now() - start} ms`);
    await assert.rejects(Client.connect({ socketPath: '/nonexistent/stateside.sock', readyTimeoutMs: 300 }),
                         (e) => e instanceof StatesideError && e.code === status.UNAVAILABLE &&
                                /did not serve within 300 ms/.test(e.message));
  });
});

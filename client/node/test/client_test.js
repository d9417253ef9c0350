// @stateside/client against a real sidecar: on its memory store, and on a
// real redis-server when one is installed. The rules the C++ client's
// tests hold the sidecar to, through this client: sessions (versions, the
// per-user limit under both policies, login by regenerate, listings),
// opt-outs, realtime targets (user, connection, all, room) with their
// sequences and exclusions, resume, presence and History.
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

    test('the per-user session limit: refuse is RESOURCE_EXHAUSTED SESSION_LIMIT, endOldest ends the oldest', async () => {
      const u = user();
      const cap = { userId: u, maxSessionsPerUser: 2 };
      const first = await client.createSession(cap);
      const second = await client.createSession({ ...cap, sessionLimitPolicy: 'refuse' });
      await rejectsWith(client.createSession(cap), status.RESOURCE_EXHAUSTED, 'SESSION_LIMIT');
      await rejectsWith(client.createSession({ ...cap, sessionLimitPolicy: 'refuse' }),
                        status.RESOURCE_EXHAUSTED, 'SESSION_LIMIT');
      const ids = async () => (await client.listUserSessions(u)).sessions.map((m) => m.id).sort();
      assert.deepEqual(await ids(), [first.id, second.id].sort());
      const third = await client.createSession({ ...cap, sessionLimitPolicy: 'endOldest' });
      assert.deepEqual(await ids(), [second.id, third.id].sort());
      await rejectsWith(client.getSession({ id: first.id }), status.NOT_FOUND, 'NOT_FOUND');
      // A login (regenerate with a userId) is held to the new owner's cap alike.
      const guest = await client.createSession({ attributes: { cart: 'boots' } });
      await rejectsWith(client.regenerateSession({ id: guest.id }, { userId: u, maxSessionsPerUser: 2 }),
                        status.RESOURCE_EXHAUSTED, 'SESSION_LIMIT');
      assert.equal((await client.getSession({ id: guest.id })).userId, '', 'a refused login leaves the guest as it was');
      const logged = await client.regenerateSession({ id: guest.id },
        { userId: u, maxSessionsPerUser: 2, sessionLimitPolicy: 'endOldest' });
      assert.deepEqual(await ids(), [third.id, logged.id].sort());
      assert.equal(logged.attributes.cart.toString(), 'boots');
      await rejectsWith(client.createSession({ userId: u, maxSessionsPerUser: 0 }),
                        status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'max_sessions_per_user');
      await assert.rejects(client.createSession({ userId: u, sessionLimitPolicy: 'end_oldest' }), TypeError);
    });

    // Registers `conns` ([connId, userId?, rooms?]) and collects the
    // deliveries to them up to the `marker` event (published to the
    // marker connection last): what a connection got before is all it got.
    async function deliveries(conns, publish) {
      const marker = `marker-${backend}-${process.pid}-${++n}`;
      const sub = await client.subscribe({
        connections: [{ connId: marker }, ...conns.map(([connId, userId, rooms]) => ({ connId, userId, rooms }))],
      });
      const ours = new Set(conns.map(([connId]) => connId));
      try {
        const results = await publish();
        await client.publish({ connection: { connId: marker } }, 'marker', '');
        const got = [];
        for await (const ev of sub) {
          if (ev.kind !== 'delivery') continue;
          if (ev.event === 'marker') break;
          const to = ev.connIds.filter((c) => ours.has(c)).sort();
          if (to.length) got.push([ev.event, ev.target, ev.to, to, ev.sequence]);
        }
        return { got, results };
      } finally {
        sub.cancel();
      }
    }

    test('realtime targets: a user\'s connections, one connection, all, a room; exclude; a sequence per stream', T, async () => {
      const u = user();
      const [c1, c2, c3] = [1, 2, 3].map((i) => `${u}-c${i}`);
      const room = `${u}-room`;
      const self = (await client.getInstance()).instance.id;
      const { got, results } = await deliveries([[c1, u, [room]], [c2, u], [c3]], async () => [
        await client.publish({ userId: u }, 'to-user', 'a'),
        await client.publish({ userId: u }, 'to-user-but-c2', 'b', { exclude: [{ connId: c2 }] }),
        await client.publish({ connection: { connId: c3 } }, 'to-c3', 'c'),
        await client.publish({ connection: { connId: c3, instanceId: self } }, 'to-c3-here', 'd'),
        await client.publish({ all: true }, 'to-all-but-c1', 'e', { exclude: [{ connId: c1, instanceId: self }] }),
        await client.publish({ room }, 'to-room', 'f'),
        await client.publish({ room }, 'to-room-but-c1', 'g', { exclude: [{ connId: c1 }] }),
        await client.publish({ userId: `${u}-nobody` }, 'to-nobody', 'h'),
      ]);
      const all = results[4].sequence;
      assert.deepEqual(results.map((r) => r.sequence), [1n, 2n, 1n, 2n, all, 1n, 2n, 1n]);
      assert.ok(all >= 1n);
      assert.deepEqual(got.sort(), [
        ['to-all-but-c1', 'all', '', [c2, c3], all],
        ['to-c3', 'connection', c3, [c3], 1n],
        ['to-c3-here', 'connection', c3, [c3], 2n],
        ['to-room', 'room', room, [c1], 1n],
        ['to-user', 'userId', u, [c1, c2], 1n],
        ['to-user-but-c2', 'userId', u, [c1], 2n],
      ]);
      assert.equal(results[7].instances, 0, 'a user with no connection is on no instance');
    });

    test('a subscription opened again with its resume points gets what it missed, in order', T, async () => {
      const u = user();
      const room = `${u}-room`;
      const conn = `${u}-c`;
      await client.registerConnection(conn, { userId: u, rooms: [room] });
      try {
        const first = await client.subscribe();
        await client.publish({ room }, 'e', 'r1');
        for await (const ev of first) if (ev.kind === 'delivery' && ev.connIds.includes(conn)) break;
        await client.publish({ room }, 'e', 'r2');
        await client.publish({ userId: u }, 'e', 'u1');
        await client.publish({ room }, 'e', 'r3');
        const again = await client.subscribe({ resume: [{ room, sequence: 1 }, { userId: u, sequence: 0 }],
                                               encoding: 'utf8' });
        const replayed = [];
        for await (const ev of again) {
          if (ev.kind === 'delivery' && ev.connIds.includes(conn)) replayed.push([ev.to, ev.payload, ev.sequence]);
          if (replayed.length === 3) break;
        }
        assert.deepEqual(replayed.filter(([to]) => to === room), [[room, 'r2', 2n], [room, 'r3', 3n]]);
        assert.deepEqual(replayed.filter(([to]) => to === u), [[u, 'u1', 1n]]);
      } finally {
        await client.unregisterConnection(conn);
      }
    });

    test('presence: roomMembers counts and pages a room\'s connections, userConnections a user\'s', async () => {
      const u = user();
      const room = `${u}-room`;
      const self = (await client.getInstance()).instance.id;
      const conns = [1, 2, 3].map((i) => `${u}-c${i}`);
      await client.registerConnection(conns[0], { userId: u, rooms: [room] });
      await client.registerConnection(conns[1], { userId: u, rooms: [room] });
      await client.registerConnection(conns[2], { rooms: [room] });
      const firstPage = await client.roomMembers(room, { pageSize: 2 });
      assert.equal(firstPage.count, 3);
      assert.equal(firstPage.members.length, 2);
      assert.notEqual(firstPage.nextPageToken, '');
      const lastPage = await client.roomMembers(room, { pageSize: 2, pageToken: firstPage.nextPageToken });
      assert.equal(lastPage.count, 3);
      assert.equal(lastPage.nextPageToken, '');
      assert.deepEqual([...firstPage.members, ...lastPage.members].sort((a, b) => a.connId.localeCompare(b.connId)),
                       conns.map((connId) => ({ instanceId: self, connId })));
      assert.deepEqual((await client.userConnections(u)).map((r) => r.connId).sort(), conns.slice(0, 2));
      await client.leave(conns[0], [room]);
      assert.equal((await client.roomMembers(room)).count, 2);
      await client.join(conns[0], [room]);
      assert.equal(await client.unregisterConnection(conns[1]), true);
      assert.equal(await client.unregisterConnection(conns[1]), false);
      assert.deepEqual((await client.userConnections(u)).map((r) => r.connId), [conns[0]]);
      assert.equal((await client.roomMembers(room)).count, 2);
      for (const c of [conns[0], conns[2]]) await client.unregisterConnection(c);
      assert.deepEqual(await client.roomMembers(room), { count: 0, members: [], nextPageToken: '' });
      assert.deepEqual(await client.userConnections(u), []);
      await rejectsWith(client.roomMembers(room, { pageSize: 1001 }), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'page_size');
      await rejectsWith(client.joinConnections({ userId: u }, []), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'rooms');
    });

    test('history: a room\'s window page by page, complete until its oldest events are trimmed', async () => {
      const room = `${user()}-history`;
      for (let i = 1; i <= 5; ++i) await client.publish({ room }, 'e', `p${i}`);
      const whole = await client.history(room, { encoding: 'utf8' });
      assert.deepEqual(whole.events.map((e) => [e.sequence, e.payload, e.target, e.to]),
                       [1n, 2n, 3n, 4n, 5n].map((q) => [q, `p${q}`, 'room', room]));
      assert.deepEqual([whole.complete, whole.firstSequence, whole.lastSequence, whole.more], [true, 1n, 5n, false]);
      const page = await client.history(room, { afterSequence: 2, limit: 2 });
      assert.deepEqual(page.events.map((e) => e.sequence), [3n, 4n]);
      assert.deepEqual([page.complete, page.more], [true, true]);
      const end = await client.history(room, { afterSequence: 5 });
      assert.deepEqual([end.events, end.complete, end.more, end.lastSequence], [[], true, false, 5n]);
      assert.deepEqual(await client.history(`${room}-none`), {
        events: [], complete: true, lastSequence: 0n, firstSequence: 0n, more: false,
      });
      // 20 events of 60 KiB: more than the log's 1 MiB keeps.
      const big = Buffer.alloc(60 * 1024, 'x');
      for (let i = 6; i <= 25; ++i) await client.publish({ room }, 'big', big);
      const trimmed = await client.history(room, { limit: 1000 });
      assert.equal(trimmed.lastSequence, 25n);
      assert.ok(trimmed.firstSequence > 1n, `first ${trimmed.firstSequence}`);
      assert.equal(trimmed.complete, false);
      assert.equal(trimmed.events[0].sequence, trimmed.firstSequence);
      const fromFirst = await client.history(room, { afterSequence: trimmed.firstSequence - 1n });
      assert.equal(fromFirst.complete, true);
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

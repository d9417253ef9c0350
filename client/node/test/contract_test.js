// The edges of the contract against a real sidecar: streams that fail or
// are cancelled before anyone reads them, close() with streams open, null
// and out-of-range arguments, text that is not UTF-8, an attribute named
// __proto__, a gap's resume point given back to subscribe.
'use strict';
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Client, StatesideError, status } = require('..');
const { startSidecar } = require('./support');

const T = { timeout: 30000 };
// The iteration's outcome: the events seen, or the error it threw.
async function drainAll(iterable) {
  const seen = [];
  try {
    for await (const ev of iterable) seen.push(ev);
  } catch (err) {
    return { seen, err };
  }
  return { seen, err: null };
}
// Resolves once grpc-js has ended the call (after its 'error', if any).
const ended = (stream) => new Promise((resolve) => stream._call.once('status', resolve));

describe('a stream nobody reads yet', () => {
  const client = new Client({ socketPath: '/nonexistent/stateside.sock', callTimeoutMs: 500 });
  after(() => client.close());

  test('watchDrain that fails before it is read throws its error when read, the process lives', T, async () => {
    const w = client.watchDrain();
    await ended(w);
    const { seen, err } = await drainAll(w);
    assert.deepEqual(seen, []);
    assert.ok(err instanceof StatesideError, `a StatesideError, not ${err}`);
    assert.equal(err.code, status.UNAVAILABLE);
  });

  test('watchDrain cancelled before it is read ends quietly', T, async () => {
    const w = client.watchDrain();
    const done = ended(w);
    w.cancel();
    await done;
    assert.deepEqual(await drainAll(w), { seen: [], err: null });
  });
});

describe('against a sidecar', () => {
  let sidecar;
  let client;
  before(async () => {
    sidecar = await startSidecar('contract');
    client = await Client.connect({ socketPath: sidecar.socket, readyTimeoutMs: 30000 });
  });
  after(() => client?.close());

  test('close() ends the open streams: their iterations end, the process exits', T, async () => {
    const other = await Client.connect({ socketPath: sidecar.socket });
    const streams = [await other.subscribe(), await other.watchSessionEvents(), other.watchDrain({ observer: true })];
    const iterations = streams.map(drainAll);
    other.close();
    for (const r of await Promise.all(iterations)) assert.equal(r.err, null);

    // A process that opens them and closes its Client exits by itself.
    const script = `
      const { Client } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
      (async () => {
        const c = await Client.connect({ socketPath: ${JSON.stringify(sidecar.socket)} });
        await c.subscribe();
        await c.watchSessionEvents();
        c.watchDrain();
        c.close();
      })().catch((e) => { console.error(e); process.exit(2); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 20000 });
    const [code, signal] = await new Promise((r) => child.once('exit', (c, s) => r([c, s])));
    assert.deepEqual([code, signal], [0, null], 'the process exited by itself');
  });

  test('regenerateSession with userId null is an anonymous regenerate, as undefined', T, async () => {
    const anon = await client.createSession({ userId: null, attributes: { cart: '1' } });
    assert.equal(anon.userId, '');
    const next = await client.regenerateSession({ id: anon.id }, { userId: null, encoding: 'utf8' });
    assert.notEqual(next.id, anon.id);
    assert.equal(next.userId, '');
    assert.deepEqual({ ...next.attributes }, { cart: '1' });
    const owned = await client.createSession({ userId: `owner-${process.pid}` });
    const again = await client.regenerateSession({ cookie: owned.cookie }, { userId: null });
    assert.equal(again.userId, owned.userId, 'no owner asked for: the owner stays');
  });

  test("payloads that are not UTF-8 stay Buffers under encoding 'utf8', flagged undecoded", T, async () => {
    const room = `utf8-${process.pid}`;
    const sub = await client.subscribe({ connections: [{ connId: `c-${room}`, rooms: [room] }], encoding: 'utf8' });
    const bad = Buffer.from([0xff, 0x41]);
    await client.publish({ room }, 'bad', bad);
    await client.publish({ room }, 'good', 'héllo');
    const seen = [];
    for await (const ev of sub) {
      seen.push([ev.event, ev.payload, ev.undecoded]);
      if (ev.event === 'good') break;
    }
    assert.deepEqual(seen, [['bad', bad, true], ['good', 'héllo', undefined]]);
    const history = await client.history(room, { encoding: 'utf8' });
    assert.deepEqual(history.events.map((e) => [e.event, e.payload, e.undecoded]),
                     [['bad', bad, true], ['good', 'héllo', undefined]]);
    const latin1 = await client.history(room, { encoding: 'latin1' });
    assert.equal(latin1.events[0].payload, 'ÿA');
  });

  test('durations: sub-millisecond rounding carries into seconds; past 10000 years a RangeError', T, async () => {
    const s = await client.createSession({ idleTtlMs: 1999.9999999 });
    assert.equal(s.idleExpiry - s.lastAccess, 2000);
    await assert.rejects(client.createSession({ idleTtlMs: 1e25 }), RangeError);
    await assert.rejects(client.createSession({ absoluteTtlMs: 1e22 }), RangeError);
    await assert.rejects(client.setOptOut('subject', true, { ttlMs: 1e24 }), RangeError);
  });

  test('an attribute named __proto__ is an attribute like any other', T, async () => {
    const attributes = JSON.parse('{"__proto__": "p", "a": "b"}');
    const s = await client.createSession({ attributes, encoding: 'utf8' });
    for (const got of [s, await client.getSession({ id: s.id }, { encoding: 'utf8' })]) {
      assert.deepEqual(Object.keys(got.attributes).sort(), ['__proto__', 'a']);
      assert.equal(Object.getOwnPropertyDescriptor(got.attributes, '__proto__').value, 'p');
      assert.equal(Object.getPrototypeOf(got.attributes), Object.prototype);
    }
    await client.updateSession({ id: s.id }, { set: JSON.parse('{"__proto__": "q"}') });
    const got = await client.getSession({ id: s.id });
    assert.deepEqual(Object.getOwnPropertyDescriptor(got.attributes, '__proto__').value, Buffer.from('q'));
  });

  test('int32 counts: limit and pageSize up to 2^31-1, never sent wrapped', T, async () => {
    // Sent as is, and refused by the sidecar's own bound (1000), not the client's.
    const tooMany = (e) => e instanceof StatesideError && e.code === status.INVALID_ARGUMENT;
    await assert.rejects(client.history('int32-room', { limit: 2 ** 31 - 1 }), (e) => tooMany(e) && e.field === 'limit');
    assert.deepEqual((await client.history('int32-room', { limit: 1000 })).events, []);
    await client.roomMembers('int32-room', { pageSize: 2 ** 31 - 1 }).catch((e) => assert.ok(tooMany(e), String(e)));
    await assert.rejects(client.history('int32-room', { limit: 2 ** 32 - 1 }), TypeError);
    await assert.rejects(client.history('int32-room', { limit: 2 ** 31 }), TypeError);
    await assert.rejects(client.roomMembers('int32-room', { pageSize: 2 ** 31 }), TypeError);
  });

  test("a gap's resume point is one subscribe takes back", T, async () => {
    const room = `resume-${process.pid}`;
    const gapOf = async (resume) => {
      const sub = await client.subscribe({ resume });
      try {
        for await (const ev of sub) if (ev.kind === 'gap') return ev;
      } finally {
        sub.cancel();
      }
      throw new Error('the stream ended without a gap');
    };
    // Events after sequence 5 of a room at sequence 1 (its counter restarted): lost.
    await client.publish({ room }, 'one', 'x');
    const gap = await gapOf([{ room, sequence: 5n }]);
    assert.deepEqual(gap.resume, { room, sequence: 5n });
    const again = await gapOf([gap.resume]);
    assert.deepEqual(again.resume, gap.resume);
  });
});

test('a subscribe whose first message does not come within callTimeoutMs is DEADLINE_EXCEEDED', T, async () => {
  // A socket that accepts and never answers.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stateside-node-silent-'));
  const sockets = new Set();
  const server = net.createServer((s) => sockets.add(s));
  await new Promise((r) => server.listen(path.join(dir, 's.sock'), r));
  const client = new Client({ socketPath: path.join(dir, 's.sock'), callTimeoutMs: 300 });
  try {
    await assert.rejects(client.subscribe(), (e) => e instanceof StatesideError && e.code === status.DEADLINE_EXCEEDED);
  } finally {
    client.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Client options: timers past 2^31-1 ms and a first backoff above the last are a RangeError', T, () => {
  assert.throws(() => new Client({ callTimeoutMs: 2 ** 31 }), RangeError);
  assert.throws(() => new Client({ maxBackoffMs: 2 ** 31 }), RangeError);
  assert.throws(() => new Client({ initialBackoffMs: 50, maxBackoffMs: 40 }), RangeError);
  new Client({ callTimeoutMs: 2 ** 31 - 1, initialBackoffMs: 40, maxBackoffMs: 40 }).close();
});

describe('arguments of the wrong kind are errors before any call', () => {
  const client = new Client({ socketPath: '/nonexistent/stateside.sock', callTimeoutMs: 500 });
  after(() => client.close());

  test('boolean options are booleans', T, async () => {
    assert.throws(() => client.watchDrain({ observer: 'true' }), { name: 'TypeError', message: /observer/ });
    await assert.rejects(client.drain({ holdUntilSignal: 1 }), { name: 'TypeError', message: /holdUntilSignal/ });
  });

  test('attribute values and payloads with a lone surrogate', T, async () => {
    await assert.rejects(client.createSession({ attributes: { a: 'a\ud800' } }),
                         { name: 'TypeError', message: /attributes\["a"\] is not well-formed/ });
    await assert.rejects(client.updateSession({ id: 'x' }, { set: { a: '\udc00' } }), TypeError);
    await assert.rejects(client.publish({ room: 'r' }, 'e', 'x\ud800'), { message: /payload is not well-formed/ });
    // A surrogate pair is well-formed.
    await assert.rejects(client.publish({ room: 'r' }, 'e', '😀'), (e) => e instanceof StatesideError);
  });
});

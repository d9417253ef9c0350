// getSession and updateSession on the Pipe stream: against a real sidecar
// (batched, answered as the unary RPCs, errors with their reasons) and
// against stand-in servers made here with grpc-js (a sidecar whose
// capabilities say no Pipe, one that refuses the stream UNIMPLEMENTED, one
// that counts the calls of each message, one that breaks the stream).
'use strict';
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { Client, StatesideError, status, defaultProtoDir } = require('..');
const { loadProtos } = require('../lib/proto');
const { MAX_PENDING_CALLS } = require('../lib/pipe');
const { startSidecar, waitFor } = require('./support');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stateside-pipe-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SESSION = { metadata: { id: 'sid-1', version: '7' }, cookie: 'sid-1.sig', attributes: { a: Buffer.from('b') } };

// A grpc-js server on a Unix socket with `pipe` as Capabilities.pipe and
// the given SessionService handlers (the others: UNIMPLEMENTED). { socket, stop }.
async function standIn(name, pipeCapability, handlers) {
  const { v1 } = loadProtos(defaultProtoDir());
  const server = new grpc.Server();
  server.addService(v1.LifecycleService.service, {
    getInstance: (call, cb) => cb(null, { instance: { id: name }, apiRevision: 3,
                                          capabilities: { pipe: pipeCapability } }),
  });
  // The sidecar announces its message limit when the stream starts.
  const pipe = handlers.pipe && ((call) => {
    const md = new grpc.Metadata();
    md.set('stateside-max-message-bytes', String(4 << 20));
    call.sendMetadata(md);
    handlers.pipe(call);
  });
  server.addService(v1.SessionService.service, { ...handlers, ...(pipe ? { pipe } : {}) });
  const socket = path.join(tmp, `${name}.sock`);
  await new Promise((resolve, reject) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(),
                                                         (err) => (err ? reject(err) : resolve())));
  return { socket, stop: () => server.forceShutdown() };
}

const unaryGet = (counts) => (call, cb) => {
  ++counts.unary;
  cb(null, { session: SESSION });
};

// Calls until the capabilities are known and a getSession went over the
// stream (the first calls go unary meanwhile).
const untilPiped = (client, id) => waitFor('a call on the Pipe stream', 5000, async () => {
  const piped = client._pipe.stats.piped;
  await client.getSession({ id });
  return client._pipe.stats.piped > piped;
});

describe('Pipe against a real sidecar', () => {
  let client;
  before(async () => {
    const sidecar = await startSidecar('pipe');
    client = await Client.connect({ socketPath: sidecar.socket, readyTimeoutMs: 30000 });
  });
  after(() => client?.close());

  test('concurrent gets and updates on one stream answer as the unary calls', async () => {
    const s = await client.createSession({ attributes: { n: '0' } });
    await untilPiped(client, s.id);
    const { piped, unary } = client._pipe.stats;
    const names = Array.from({ length: 60 }, (_, i) => `k${i}`);
    const infos = await Promise.all(names.map((k) => client.updateSession({ id: s.id }, { set: { [k]: k } })));
    assert.equal(new Set(infos.map((i) => i.version)).size, 60, 'each update its own version');
    const got = await Promise.all(names.map(() => client.getSession({ cookie: s.cookie }, { encoding: 'utf8' })));
    for (const g of got) assert.equal(g.id, s.id);
    assert.deepEqual(got[59].attributes, { n: '0', ...Object.fromEntries(names.map((k) => [k, k])) });
    assert.deepEqual([client._pipe.stats.piped - piped, client._pipe.stats.unary - unary, client._pipe.stats.streams],
                     [120, 0, 1]);
  });

  test('errors on the stream carry the code and reason of the unary call', async () => {
    const s = await client.createSession({});
    await untilPiped(client, s.id);
    const piped = client._pipe.stats.piped;
    await assert.rejects(client.getSession({ id: 'A'.repeat(43) }),
                         (e) => e instanceof StatesideError && e.code === status.NOT_FOUND && e.reason === 'NOT_FOUND');
    await assert.rejects(client.updateSession({ id: s.id }, { set: { a: 'b' }, expectedVersion: s.version + 5n }),
                         (e) => e instanceof StatesideError && e.code === status.ABORTED &&
                                e.reason === 'VERSION_MISMATCH');
    assert.equal(client._pipe.stats.piped, piped, 'neither answered OK');
    assert.equal(client._pipe.stats.unary, 1, 'only the call that learnt the capabilities went unary');
  });

  test('pipe: false is unary only', async () => {
    assert.throws(() => new Client({ pipe: 'yes' }), TypeError);
    const unaryOnly = new Client({ socketPath: client.options.socketPath, pipe: false });
    const s = await unaryOnly.createSession({});
    assert.equal((await unaryOnly.getSession({ id: s.id })).id, s.id);
    assert.equal(unaryOnly._pipe, null);
    unaryOnly.close();
  });
});

describe('Pipe against stand-in servers', () => {
  test('a sidecar whose capabilities say no Pipe is called unary, and no stream is opened', async () => {
    const counts = { unary: 0, pipe: 0 };
    const pipe = (call) => { ++counts.pipe; call.end(); };
    const server = await standIn('no-pipe', false, { get: unaryGet(counts), pipe });
    const client = new Client({ socketPath: server.socket });
    try {
      for (let i = 0; i < 5; ++i) assert.equal((await client.getSession({ id: 'sid-1' })).id, 'sid-1');
      await waitFor('the capabilities', 5000, () => client._pipe._unaryForever);
      assert.equal((await client.getSession({ id: 'sid-1' })).version, 7n);
      assert.deepEqual([counts.unary, counts.pipe, client._pipe.stats.streams], [6, 0, 0]);
    } finally {
      client.close();
      server.stop();
    }
  });

  test('a stream refused UNIMPLEMENTED: its calls go unary (they never ran), and so do all after', async () => {
    const counts = { unary: 0 };
    // Capabilities say Pipe, but it is not served (a proxy in between that does not pass it).
    const server = await standIn('unimplemented', true, { get: unaryGet(counts) });
    const client = new Client({ socketPath: server.socket });
    try {
      await client.getSession({ id: 'sid-1' });
      await waitFor('the capabilities', 5000, () => client._pipe._capability === true);
      const got = await Promise.all(Array.from({ length: 10 }, () => client.getSession({ id: 'sid-1' })));
      assert.deepEqual(got.map((g) => g.id), Array(10).fill('sid-1'));
      assert.equal(client._pipe._unaryForever, true);
      await client.getSession({ id: 'sid-1' });
      assert.deepEqual([counts.unary, client._pipe.stats.streams, client._pipe.stats.piped], [12, 1, 0]);
    } finally {
      client.close();
      server.stop();
    }
  });

  test('calls made together go in one message; a result not answered in time is DEADLINE_EXCEEDED', async () => {
    const sizes = [];
    const server = await standIn('batch', true, {
      get: unaryGet({ unary: 0 }),
      pipe: (call) => {
        call.on('data', (req) => {
          sizes.push(req.calls.length);
          // Every call answered, except those for the id "silent".
          const results = req.calls.filter((c) => c.get.key.id !== 'silent')
            .map((c) => ({ id: c.id, code: 0, get: { session: { ...SESSION, metadata: { id: c.get.key.id } } } }));
          call.write({ results });
        });
        call.on('end', () => call.end());
      },
    });
    const client = new Client({ socketPath: server.socket, callTimeoutMs: 300 });
    try {
      await untilPiped(client, 'warm');
      sizes.length = 0;
      const ids = Array.from({ length: 50 }, (_, i) => `s${i}`);
      const got = await Promise.all(ids.map((id) => client.getSession({ id })));
      assert.deepEqual(got.map((g) => g.id), ids);
      assert.deepEqual(sizes, [50]);
      const start = Date.now();
      await assert.rejects(client.getSession({ id: 'silent' }), (e) => e.code === status.DEADLINE_EXCEEDED);
      assert.ok(Date.now() - start < 1000);
      // A stream holds at most MAX_PENDING_CALLS calls: one more fails at once.
      const held = Array.from({ length: MAX_PENDING_CALLS }, () => client.getSession({ id: 'silent' }).catch((e) => e));
      await assert.rejects(client.getSession({ id: 'silent' }), (e) => e.code === status.RESOURCE_EXHAUSTED);
      for (const e of await Promise.all(held)) assert.equal(e.code, status.DEADLINE_EXCEEDED);
      assert.equal((await client.getSession({ id: 'after' })).id, 'after');
    } finally {
      client.close();
      server.stop();
    }
  });

  test('a stream that breaks: a get is retried unary, an update that was sent fails UNAVAILABLE; later a new stream',
       async () => {
    const counts = { unary: 0, update: 0 };
    let breakNext = false;
    const server = await standIn('breaking', true, {
      get: unaryGet(counts),
      update: (call, cb) => { ++counts.update; cb(null, { metadata: { id: 'sid-1', version: '8' } }); },
      pipe: (call) => {
        call.on('data', (req) => {
          if (breakNext) {
            breakNext = false;
            call.emit('error', Object.assign(new Error('gone'), { code: status.UNAVAILABLE }));
            return;
          }
          call.write({ results: req.calls.map((c) => ({ id: c.id, code: 0, get: { session: SESSION } })) });
        });
        call.on('end', () => call.end());
      },
    });
    const client = new Client({ socketPath: server.socket });
    try {
      await untilPiped(client, 'sid-1');
      breakNext = true;
      const unary = counts.unary;
      assert.equal((await client.getSession({ id: 'sid-1' })).id, 'sid-1');
      assert.equal(counts.unary, unary + 1, 'the retry went unary');
      await untilPiped(client, 'sid-1');
      assert.equal(client._pipe.stats.streams, 2);
      breakNext = true;
      await assert.rejects(client.updateSession({ id: 'sid-1' }, { set: { a: 'b' } }),
                           (e) => e instanceof StatesideError && e.code === status.UNAVAILABLE);
      assert.equal(counts.update, 0, 'not retried');
    } finally {
      client.close();
      server.stop();
    }
  });
});

// Retries against a real sidecar whose answer is lost on the way back (a
// cutting proxy between the client and its socket): a call sent with a
// request id applies once, an idempotent one answers, an update is not
// retried (as the C++ client's retry_sidecar_test).
'use strict';
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Client, StatesideError, status } = require('..');
const { startSidecar, waitFor } = require('./support');
const { CuttingProxy } = require('./cutting_proxy');

describe('an answer lost after the sidecar applied the call', () => {
  let direct;
  let proxied;
  let proxiedUnary;
  let proxy;
  let n = 0;
  const user = () => `retry-${process.pid}-${++n}`;
  before(async () => {
    const sidecar = await startSidecar('retry');
    direct = await Client.connect({ socketPath: sidecar.socket, readyTimeoutMs: 30000 });
    proxy = await CuttingProxy.start(path.join(path.dirname(sidecar.socket), 'proxy.sock'), sidecar.socket);
    proxied = await Client.connect({ socketPath: path.join(path.dirname(sidecar.socket), 'proxy.sock'),
                                     callTimeoutMs: 5000 });
    proxiedUnary = await Client.connect({ socketPath: path.join(path.dirname(sidecar.socket), 'proxy.sock'),
                                          callTimeoutMs: 5000, pipe: false });
  });
  // Until getSession of `id` has gone over the proxied client's Pipe stream
  // (the first calls go unary while it learns the sidecar's capabilities).
  const pipeOpen = (id) => waitFor('a call on the Pipe stream', 5000, async () => {
    const piped = proxied._pipe.stats.piped;
    await proxied.getSession({ id });
    return proxied._pipe.stats.piped > piped;
  });
  after(async () => {
    proxied?.close();
    proxiedUnary?.close();
    direct?.close();
    await proxy?.close();
  });

  test('createSession is retried with its request id and makes one session', async () => {
    const u = user();
    proxy.arm();
    const s = await proxied.createSession({ userId: u, attributes: { a: 'b' } });
    assert.equal(proxy.cuts, 1, 'the first answer was cut');
    const listed = (await direct.listUserSessions(u)).sessions.map((x) => x.id);
    assert.deepEqual(listed, [s.id], 'one session, the one answered');
  });

  test('regenerateSession is retried and answers the new session, not NOT_FOUND', async () => {
    const before = await direct.createSession({ attributes: { cart: '[1]' } });
    const cuts = proxy.cuts;
    proxy.arm();
    const after = await proxied.regenerateSession({ id: before.id }, { encoding: 'utf8' });
    assert.equal(proxy.cuts, cuts + 1);
    assert.notEqual(after.id, before.id);
    assert.equal(after.attributes.cart, '[1]');
    assert.equal((await direct.getSession({ id: after.id })).id, after.id);
  });

  test('publish is retried with its request id and delivers once', { timeout: 30000 }, async () => {
    const sub = await direct.subscribe({ connections: [{ connId: 'retry-conn', rooms: ['retry-room'] }] });
    const cuts = proxy.cuts;
    proxy.arm();
    const first = await proxied.publish({ room: 'retry-room' }, 'once', 'x');
    assert.equal(proxy.cuts, cuts + 1);
    const second = await proxied.publish({ room: 'retry-room' }, 'marker', 'y');
    const seen = [];
    for await (const ev of sub) {
      seen.push([ev.event, ev.sequence]);
      if (ev.event === 'marker') break;
    }
    assert.deepEqual(seen, [['once', first.sequence], ['marker', second.sequence]]);
  });

  test('getSession (idempotent) is retried: unary after its Pipe stream broke', async () => {
    const s = await direct.createSession({});
    await pipeOpen(s.id);
    const cuts = proxy.cuts;
    const { piped, unary } = proxied._pipe.stats;
    proxy.arm();
    assert.equal((await proxied.getSession({ id: s.id })).id, s.id);
    assert.equal(proxy.cuts, cuts + 1);
    assert.deepEqual([proxied._pipe.stats.piped, proxied._pipe.stats.unary], [piped, unary + 1]);
  });

  for (const pipe of [true, false]) {
    test(`updateSession is not retried: UNAVAILABLE, although it applied (${pipe ? 'Pipe' : 'unary'})`, async () => {
      const s = await direct.createSession({});
      if (pipe) await pipeOpen(s.id);
      const cuts = proxy.cuts;
      proxy.arm();
      const client = pipe ? proxied : proxiedUnary;
      await assert.rejects(client.updateSession({ id: s.id }, { set: { n: '1' }, expectedVersion: s.version }),
                           (e) => e instanceof StatesideError && e.code === status.UNAVAILABLE);
      assert.equal(proxy.cuts, cuts + 1);
      const got = await direct.getSession({ id: s.id }, { encoding: 'utf8' });
      assert.equal(got.attributes.n, '1');
      assert.equal(got.version, s.version + 1n);
    });
  }
});

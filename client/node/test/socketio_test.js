// createSocketIoAdapter: three Socket.IO servers, each with its own Client,
// on three sidecars sharing one redis-server (one memory-store sidecar when
// redis-server is missing): room broadcasts cross the servers through the
// sidecars to members only, `except` and `socket.to(room)` leave sockets
// out, a socket in several rooms gets a broadcast once, leave and
// disconnect take effect; fetchSockets, socketsJoin, socketsLeave,
// disconnectSockets and serverSideEmit act across the servers. The
// browsers are a minimal Engine.IO v4 long-polling client written here
// (text events and acknowledgements: all these tests need).
'use strict';
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { Server } = require('socket.io');
const { Client, createSocketIoAdapter } = require('..');
const { sidecarRoom } = require('../lib/socketio');
const { startSidecarPair, redisAvailable, waitFor } = require('./support');

// One Socket.IO connection over HTTP long-polling to the namespace "/".
class PollingClient {
  static async connect(base) {
    const c = new PollingClient(base);
    const open = await c._get();
    assert.match(open[0], /^0/);
    c.sid = JSON.parse(open[0].slice(1)).sid;
    await c._post('40');
    c._poll();
    await c._next('connected');
    return c;
  }

  constructor(base) {
    this.base = base;
    this.events = [];      // [event, ...args] received, not taken yet
    this._waiters = [];
    this._acks = new Map();
    this._ackId = 0;
    this._closed = false;
  }

  _url() {
    return `${this.base}/socket.io/?EIO=4&transport=polling${this.sid ? `&sid=${this.sid}` : ''}`;
  }

  async _get() {
    const r = await fetch(this._url());
    return (await r.text()).split('\x1e');
  }

  async _post(body) {
    const r = await fetch(this._url(), { method: 'POST', body });
    assert.equal(r.status, 200);
  }

  async _poll() {
    while (!this._closed) {
      let packets;
      try {
        packets = await this._get();
      } catch {
        return;
      }
      for (const p of packets) {
        if (p === '2') this._post('3').catch(() => {});
        else if (p === '1') this._closed = true;
        else if (p.startsWith('40')) this._push(['connected']);
        else if (p.startsWith('41')) this._push(['disconnected']);
        else if (p.startsWith('42')) this._push(JSON.parse(p.slice(2)));
        else if (p.startsWith('43')) {
          const m = /^43(\d+)(.*)$/.exec(p);
          this._acks.get(Number(m[1]))?.(JSON.parse(m[2]));
        }
      }
    }
  }

  _push(event) {
    if (this._waiters.length) this._waiters.shift()(event);
    else this.events.push(event);
  }

  // The next event received (the 'connected' marker included).
  _next() {
    return this.events.length ? Promise.resolve(this.events.shift())
      : new Promise((resolve) => this._waiters.push(resolve));
  }

  next() {
    return this._next();
  }

  // Emits with an acknowledgement; resolves to the server's ack arguments.
  emit(event, ...args) {
    const id = ++this._ackId;
    return new Promise((resolve, reject) => {
      this._acks.set(id, resolve);
      this._post(`42${id}${JSON.stringify([event, ...args])}`).catch(reject);
    });
  }

  async close() {
    this._closed = true;
    await this._post('1').catch(() => {});
  }
}

describe('the Socket.IO adapter', () => {
  const clients = [];
  const servers = [];
  const ios = [];
  const browsers = [];
  before(async () => {
    const sockets = await startSidecarPair('sio', 3);
    for (const socketPath of sockets) {
      const client = await Client.connect({ socketPath, readyTimeoutMs: 30000 });
      const server = http.createServer();
      const io = new Server(server, { transports: ['polling'], adapter: createSocketIoAdapter(client) });
      io.on('connection', (socket) => {
        socket.on('join', async (room, ack) => { await socket.join(room); ack('joined'); });
        socket.on('leave', async (room, ack) => { await socket.leave(room); ack('left'); });
        socket.on('shout', (room, msg, ack) => { socket.to(room).emit('msg', msg); ack('sent'); });
        socket.on('id', (ack) => ack(socket.id));
      });
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      clients.push(client);
      servers.push(server);
      ios.push(io);
    }
    // Each adapter is in the control room: serverSideEmit and socketsJoin reach it.
    await Promise.all(ios.map((io) => io.of('/').adapter.ready));
  });
  after(async () => {
    for (const b of browsers) await b.close();
    for (const io of ios) io.close();
    for (const c of clients) c.close();
  });

  const base = (n) => `http://127.0.0.1:${servers[n].address().port}`;
  const connect = async (n) => {
    const b = await PollingClient.connect(base(n));
    browsers.push(b);
    return b;
  };
  // Everyone gets a marker after what the test sent: what a browser got
  // before its marker is all it got.
  let markers = 0;
  const upToMarker = async (browsers) => {
    const marker = `marker-${++markers}`;
    // Published after the rest: one Redis (or one sidecar) keeps that order.
    await Promise.all(ios.map((io) => io.of('/').adapter.flush()));
    ios[0].emit('msg', marker);
    return Promise.all(browsers.map(async (b) => {
      const got = [];
      for (let e = await b.next(); e[1] !== marker; e = await b.next()) got.push(e);
      return got.sort();
    }));
  };

  test('a room broadcast from any server reaches the room\'s sockets on all, once, and no others', async () => {
    const [a, b, c, d, e] = [await connect(0), await connect(1), await connect(1), await connect(2), await connect(2)];
    assert.deepEqual(await a.emit('join', 'r'), ['joined']);
    assert.deepEqual(await b.emit('join', 'r'), ['joined']);
    assert.deepEqual(await d.emit('join', 'r'), ['joined']);
    assert.deepEqual(await a.emit('join', 'Zimmer 1 ü'), ['joined']);  // not a name the sidecar takes as is
    ios[1].to('r').emit('msg', 'from server 1');
    ios[0].to('Zimmer 1 ü').emit('msg', 'unicode room');
    ios[0].to(['r', 'Zimmer 1 ü']).emit('msg', 'two rooms');
    assert.deepEqual(await upToMarker([a, b, c, d, e]), [
      [['msg', 'from server 1'], ['msg', 'two rooms'], ['msg', 'unicode room']],
      [['msg', 'from server 1'], ['msg', 'two rooms']],
      [],
      [['msg', 'from server 1'], ['msg', 'two rooms']],
      [],
    ]);
    const members = await clients[0].roomMembers(sidecarRoom('/', 'r'));
    assert.equal(members.count, 3);
  });

  test('except leaves out the sockets of its rooms on every server', async () => {
    const [a, b, c] = [await connect(0), await connect(1), await connect(2)];
    for (const x of [a, b, c]) await x.emit('join', 'e');
    await b.emit('join', 'x');
    ios[0].to('e').except('x').emit('msg', 'not x');
    ios[2].except('x').to('e').emit('msg', 'not x either');
    assert.deepEqual(await upToMarker([a, b, c]), [
      [['msg', 'not x'], ['msg', 'not x either']], [], [['msg', 'not x'], ['msg', 'not x either']],
    ]);
  });

  test('fetchSockets sees the sockets of every server: local ones as Sockets, remote ones by id and rooms', async () => {
    const [a, b, c] = [await connect(0), await connect(1), await connect(2)];
    const [aId, bId, cId] = await Promise.all([a, b, c].map(async (x) => (await x.emit('id'))[0]));
    await a.emit('join', 'f');
    await b.emit('join', 'f');
    await b.emit('join', 'g');
    await c.emit('join', 'g');
    const inF = await ios[0].in('f').fetchSockets();
    assert.deepEqual(inF.map((s) => s.id).sort(), [aId, bId].sort());
    const local = inF.find((s) => s.id === aId);
    assert.ok(local.handshake.headers, 'a local socket is the Socket');
    const remote = inF.find((s) => s.id === bId);
    assert.deepEqual([...remote.rooms].sort(), [bId, 'f'].sort());
    assert.equal(remote.handshake, undefined);
    assert.equal(remote.data, undefined);
    const inFOrG = await ios[0].in(['f', 'g']).fetchSockets();
    assert.deepEqual(inFOrG.map((s) => s.id).sort(), [aId, bId, cId].sort());
    assert.deepEqual([...inFOrG.find((s) => s.id === bId).rooms].sort(), [bId, 'f', 'g'].sort());
    assert.deepEqual((await ios[0].in(['f', 'g']).except('g').fetchSockets()).map((s) => s.id), [aId]);
    const all = (await ios[2].fetchSockets()).map((s) => s.id);
    for (const id of [aId, bId, cId]) assert.ok(all.includes(id), `${id} in ${all}`);
    assert.deepEqual((await ios[0].local.fetchSockets()).filter((s) => [bId, cId].includes(s.id)), []);
    // A remote socket's emit reaches it through its own id's room.
    remote.emit('msg', 'to b alone');
    assert.deepEqual(await upToMarker([a, b, c]), [[], [['msg', 'to b alone']], []]);
  });

  test('socketsJoin, socketsLeave and disconnectSockets from one server act on the others\' sockets', async () => {
    const [a, b, c] = [await connect(0), await connect(1), await connect(2)];
    const [bId, cId] = await Promise.all([b, c].map(async (x) => (await x.emit('id'))[0]));
    await b.emit('join', 'j');
    await c.emit('join', 'j');
    await c.emit('join', 'keep-out');
    const count = async (room) => (await clients[0].roomMembers(sidecarRoom('/', room))).count;
    ios[0].in('j').except('keep-out').socketsJoin(['k', 'l']);
    await waitFor('b in k and l', 5000, async () => await count('k') === 1 && await count('l') === 1);
    // The server of b sees it in its rooms too.
    await waitFor('server 1 sees b in k', 5000, () => ios[1].of('/').adapter.rooms.get('k')?.has(bId));
    assert.equal(ios[2].of('/').adapter.rooms.get('k'), undefined);
    ios[0].to('k').emit('msg', 'to k');
    assert.deepEqual(await upToMarker([a, b, c]), [[], [['msg', 'to k']], []]);
    ios[2].in(bId).socketsLeave('k');
    await waitFor('b out of k', 5000, async () => await count('k') === 0);
    await waitFor('server 1 sees b out of k', 5000, () => !ios[1].of('/').adapter.rooms.get('k')?.has(bId));
    ios[0].to(['k', 'l']).emit('msg', 'to k or l');
    assert.deepEqual(await upToMarker([a, b, c]), [[], [['msg', 'to k or l']], []]);
    ios[0].in('j').disconnectSockets();
    assert.deepEqual(await b.next(), ['disconnected']);
    assert.deepEqual(await c.next(), ['disconnected']);
    await waitFor('j empty', 5000, async () => await count('j') === 0);
    await waitFor('sockets gone', 5000, () => !ios[1].of('/').sockets.has(bId) && !ios[2].of('/').sockets.has(cId));
  });

  test('serverSideEmit reaches the other servers\' listeners, not its own; no acknowledgements', async () => {
    const got = ios.map(() => []);
    const listeners = ios.map((io, n) => {
      const fn = (...args) => got[n].push(args);
      io.of('/').on('hello', fn);
      return fn;
    });
    try {
      ios[0].serverSideEmit('hello', 'world', { n: 1 });
      await waitFor('servers 1 and 2', 5000, () => got[1].length === 1 && got[2].length === 1);
      assert.deepEqual(got[1], [['world', { n: 1 }]]);
      assert.deepEqual(got[2], [['world', { n: 1 }]]);
      // Published after server 0's own: had it come back, it would be first.
      ios[1].serverSideEmit('hello', 'back');
      await waitFor('server 0', 5000, () => got[0].length > 0);
      assert.deepEqual(got[0], [['back']]);
      assert.throws(() => ios[0].serverSideEmit('hello', () => {}), /acknowledgement.*not supported/);
    } finally {
      ios.forEach((io, n) => io.of('/').off('hello', listeners[n]));
    }
  });

  test('socket.to(room) leaves out the sender; leave and disconnect take effect', async () => {
    const [a, b] = [await connect(0), await connect(1)];
    await a.emit('join', 'q');
    await b.emit('join', 'q');
    assert.deepEqual(await b.emit('shout', 'q', 'from b'), ['sent']);
    assert.deepEqual(await upToMarker([a, b]), [[['msg', 'from b']], []]);
    assert.deepEqual(await a.emit('leave', 'q'), ['left']);
    ios[0].to('q').emit('msg', 'after a left');
    assert.deepEqual(await upToMarker([a, b]), [[], [['msg', 'after a left']]]);
    await b.close();
    await waitFor('b unregistered', 5000, async () => (await clients[0].roomMembers(sidecarRoom('/', 'q'))).count === 0);
  });

  test('serverCount counts the sidecars\' instances; options are checked', async () => {
    assert.equal(await ios[0].of('/').adapter.serverCount(), redisAvailable() ? 3 : 1);
    assert.throws(() => createSocketIoAdapter(clients[0], { onerror: () => {} }), TypeError);
  });
});

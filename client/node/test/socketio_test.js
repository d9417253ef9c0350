// createSocketIoAdapter: two Socket.IO servers, each with its own Client,
// on two sidecars sharing one redis-server (one memory-store sidecar when
// redis-server is missing): room broadcasts cross the servers through the
// sidecars, `socket.to(room)` leaves out the sender, a socket in several
// rooms gets a broadcast once, leave and disconnect take effect. The
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
    const sockets = await startSidecarPair('sio');
    for (const socketPath of sockets) {
      const client = await Client.connect({ socketPath, readyTimeoutMs: 30000 });
      const server = http.createServer();
      const io = new Server(server, { transports: ['polling'], adapter: createSocketIoAdapter(client) });
      io.on('connection', (socket) => {
        socket.on('join', async (room, ack) => { await socket.join(room); ack('joined'); });
        socket.on('leave', async (room, ack) => { await socket.leave(room); ack('left'); });
        socket.on('shout', (room, msg, ack) => { socket.to(room).emit('msg', msg); ack('sent'); });
      });
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      clients.push(client);
      servers.push(server);
      ios.push(io);
    }
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

  test('a room broadcast from either server reaches the room\'s sockets on both, once, and no others', async () => {
    const [a, b, c] = [await connect(0), await connect(1), await connect(1)];
    assert.deepEqual(await a.emit('join', 'r'), ['joined']);
    assert.deepEqual(await b.emit('join', 'r'), ['joined']);
    assert.deepEqual(await a.emit('join', 'Zimmer 1 ü'), ['joined']);  // not a name the sidecar takes as is
    ios[1].to('r').emit('msg', 'from server 1');
    ios[0].to('Zimmer 1 ü').emit('msg', 'unicode room');
    ios[0].to(['r', 'Zimmer 1 ü']).emit('msg', 'two rooms');
    assert.deepEqual(await upToMarker([a, b, c]), [
      [['msg', 'from server 1'], ['msg', 'two rooms'], ['msg', 'unicode room']],
      [['msg', 'from server 1'], ['msg', 'two rooms']],
      [],
    ]);
    const members = await clients[0].roomMembers(sidecarRoom('/', 'r'));
    assert.equal(members.count, 2);
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
    assert.equal(await ios[0].of('/').adapter.serverCount(), redisAvailable() ? 2 : 1);
    assert.throws(() => createSocketIoAdapter(clients[0], { onerror: () => {} }), TypeError);
  });
});

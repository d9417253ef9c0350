// createAdapter(client, options): a Socket.IO (v4) adapter whose rooms and
// broadcasts are the sidecar's: each socket is a registered connection,
// each of its rooms (its own id room too) a sidecar room, and a broadcast a
// Publish that the sidecars deliver to the member sockets of every app
// instance, this one included. No Redis adapter, no pub/sub in the app.
// socket.io is a peer dependency: required only when this is used.
'use strict';
const crypto = require('node:crypto');
const path = require('node:path');

// socket.io-adapter's base class, from the socket.io the app has (it does
// not export it itself).
function baseAdapter() {
  const socketIo = path.dirname(require.resolve('socket.io'));
  return require(require.resolve('socket.io-adapter', { paths: [socketIo] })).Adapter;
}

const EVENT = 'socket.io';
// How long a broadcast's id is remembered, so that a socket in several of
// its rooms gets it once.
const SEEN_MS = 30000;
// Names the sidecar takes as they are: printable ASCII, not too long.
const PLAIN = /^[\x21-\x7e]{1,200}$/;

// The sidecar room of Socket.IO room `room` in namespace `nsp`: the same on
// every instance; a name the sidecar would refuse is hashed.
function sidecarRoom(nsp, room) {
  const name = `${nsp}\x00${room}`;
  if (PLAIN.test(nsp) && PLAIN.test(room) && !room.includes('|') && !nsp.includes('|')) return `sio|${nsp}|${room}`;
  return `sio#${crypto.createHash('sha256').update(name).digest('base64url')}`;
}

// JSON with Buffers (Socket.IO's binary data) kept as Buffers.
const encode = (o) => Buffer.from(JSON.stringify(o));
const decode = (b) => JSON.parse(b.toString('utf8'), (k, v) => (
  v && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data) : v));

function createAdapter(client, options = {}) {
  const { checkOptions } = require('./convert');
  const o = checkOptions(options, ['onError'], 'createAdapter');
  const onError = o.onError ?? ((err) => process.emitWarning(`stateside adapter: ${err.message}`));
  if (typeof onError !== 'function') throw new TypeError('onError must be a function');
  const Adapter = baseAdapter();

  class StatesideAdapter extends Adapter {
    constructor(nsp) {
      super(nsp);
      this._client = client;
      this._nspRoom = sidecarRoom(nsp.name, '');
      this._chains = new Map();  // socket id -> its registration's promise chain
      this._seen = new Map();    // broadcast id -> { sockets: Set, timer }
      this._publishing = new Set();  // publishes not answered yet
      this._closed = false;
      this._subscription = this._subscribe();
    }

    // Each socket's sidecar calls in order (register before join).
    _chain(id, fn) {
      const next = (this._chains.get(id) ?? Promise.resolve()).then(fn);
      const settled = next.catch((err) => onError(err));
      this._chains.set(id, settled);
      return next;
    }

    _connId(id) {
      return `sio.${id}`;
    }

    // Resolves once the sidecar has the rooms: an event published after
    // `await socket.join(room)` reaches the socket.
    addAll(id, rooms) {
      const isNew = !this.sids.has(id);
      super.addAll(id, rooms);
      const names = [...rooms].map((r) => sidecarRoom(this.nsp.name, r));
      return this._chain(id, () => (isNew
        ? this._client.registerConnection(this._connId(id), { rooms: [this._nspRoom, ...names] })
        : this._client.join(this._connId(id), names)));
    }

    del(id, room) {
      super.del(id, room);
      return this._chain(id, () => this._client.leave(this._connId(id), [sidecarRoom(this.nsp.name, room)]));
    }

    delAll(id) {
      if (!this.sids.has(id)) return;
      super.delAll(id);
      this._chain(id, () => this._client.unregisterConnection(this._connId(id)))
        .finally(() => this._chains.delete(id)).catch(() => {});
    }

    // To the namespace (no rooms) or to each room, through the sidecars;
    // `local` broadcasts stay on this instance.
    broadcast(packet, opts) {
      if (opts.flags?.local) {
        super.broadcast(packet, opts);
        return;
      }
      const message = encode({ u: crypto.randomUUID(), p: packet, x: [...(opts.except ?? [])],
                               f: { ...opts.flags } });
      const rooms = opts.rooms?.size ? [...opts.rooms].map((r) => sidecarRoom(this.nsp.name, r)) : [this._nspRoom];
      for (const room of rooms) {
        const p = this._client.publish({ room }, EVENT, message).catch((err) => onError(err))
          .finally(() => this._publishing.delete(p));
        this._publishing.add(p);
      }
    }

    // Resolves once every broadcast made so far has been published.
    async flush() {
      await Promise.all([...this._publishing]);
    }

    serverCount() {
      return this._client.listInstances().then((list) => list.length);
    }

    // This instance's deliveries: each to its sockets here (not those in an
    // excepted room, each once).
    async _subscribe() {
      for (let attempt = 1; !this._closed; ++attempt) {
        try {
          this._stream = await this._client.subscribe();
          attempt = 0;
          for await (const event of this._stream) {
            if (event.kind === 'delivery' && event.event === EVENT) this._deliver(event);
            else if (event.kind === 'disconnect') {
              for (const connId of event.connIds) this.nsp.sockets.get(connId.slice(4))?.disconnect(true);
            } else if (event.kind === 'gap') this.emit('gap', event);
          }
        } catch (err) {
          if (!this._closed) onError(err);
        }
        if (!this._closed) {
          // Events published meanwhile are lost: say so.
          this.emit('gap', { kind: 'gap', reason: 'RESUBSCRIBED' });
          await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** Math.min(attempt, 5))));
        }
      }
    }

    _deliver(event) {
      let message;
      try {
        message = decode(event.payload);
      } catch (err) {
        onError(err);
        return;
      }
      const except = new Set();
      for (const room of message.x) for (const id of this.rooms.get(room) ?? []) except.add(id);
      let seen = this._seen.get(message.u);
      if (!seen) {
        seen = { sockets: new Set(), timer: setTimeout(() => this._seen.delete(message.u), SEEN_MS).unref() };
        this._seen.set(message.u, seen);
      }
      const targets = new Set();
      for (const connId of event.connIds) {
        const id = connId.slice(4);
        if (!connId.startsWith('sio.') || !this.sids.has(id) || except.has(id) || seen.sockets.has(id)) continue;
        seen.sockets.add(id);
        targets.add(id);
      }
      if (targets.size === 0) return;
      // Each target by its own id room, on this instance only.
      super.broadcast(message.p, { rooms: targets, except: new Set(), flags: { ...message.f, local: true } });
    }

    close() {
      this._closed = true;
      this._stream?.cancel();
      for (const t of this._seen.values()) clearTimeout(t.timer);
      this._seen.clear();
    }
  }
  return StatesideAdapter;
}

module.exports = { createAdapter, sidecarRoom };

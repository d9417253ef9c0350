// createAdapter(client, options): a Socket.IO (v4) adapter whose rooms and
// broadcasts are the sidecar's: each socket is a registered connection,
// each of its rooms (its own id room too) a sidecar room, and a broadcast a
// Publish that the sidecars deliver to the member sockets of every app
// instance, this one included. No Redis adapter, no pub/sub in the app.
// fetchSockets, socketsJoin/socketsLeave/disconnectSockets and
// serverSideEmit are cluster-wide too: the sidecar's room membership and
// its JoinConnections/LeaveConnections/DisconnectConnections, and a
// reserved control room in which each adapter has a connection of its own.
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
// The control messages between the adapters of one namespace.
const CONTROL = 'socket.io#control';
// The most sockets an `except` may name across the cluster (the sidecar's
// limit on a request's exclusions).
const MAX_EXCLUDE = 1024;
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

// The reserved room of the adapters of namespace `nsp` (no Socket.IO room
// maps to a name of this form).
const controlRoom = (nsp) => `sio!${crypto.createHash('sha256').update(nsp).digest('base64url')}`;

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
  // A delivery's message; undefined (reported to onError) if it is not one.
  const decodeOrReport = (event) => {
    try {
      return decode(event.payload);
    } catch (err) {
      onError(err);
      return undefined;
    }
  };

  class StatesideAdapter extends Adapter {
    constructor(nsp) {
      super(nsp);
      this._client = client;
      this._nspRoom = sidecarRoom(nsp.name, '');
      this._chains = new Map();  // socket id -> its registration's promise chain
      this._seen = new Map();    // broadcast id -> { sockets: Set, timer }
      this._publishing = new Set();  // publishes not answered yet
      this._closed = false;
      this._controlId = `sioctl.${crypto.randomUUID()}`;
      this._controlRoom = controlRoom(nsp.name);
      this._instance = null;  // this sidecar's instance id, once asked
      this._subscription = this._subscribe();
      // Resolves once this adapter receives serverSideEmit and the other
      // adapters' socketsJoin/socketsLeave (never rejects: onError).
      this.ready = client.registerConnection(this._controlId, { rooms: [this._controlRoom] })
        .catch((err) => onError(err));
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
      for (const room of rooms) this._track(this._client.publish({ room }, EVENT, message).catch((err) => onError(err)));
    }

    // Resolves once every broadcast and cluster-wide operation made so far
    // has been sent.
    async flush() {
      await Promise.all([...this._publishing]);
    }

    serverCount() {
      return this._client.listInstances().then((list) => list.length);
    }

    async _instanceId() {
      this._instance ??= this._client.getInstance().then((r) => r.instance.id);
      return this._instance;
    }

    // Every member of sidecar room `room`, cluster-wide: [{ instanceId, connId }].
    async _members(room) {
      const members = [];
      let pageToken = '';
      do {
        const page = await this._client.roomMembers(room, { pageSize: 1000, pageToken });
        members.push(...page.members);
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      return members;
    }

    // The sidecar targets of opts.rooms (the namespace when none), and the
    // connections of opts.except's rooms, cluster-wide.
    async _selection(opts) {
      const targets = opts.rooms?.size ? [...opts.rooms].map((r) => sidecarRoom(this.nsp.name, r)) : [this._nspRoom];
      const exclude = new Map();
      for (const room of opts.except ?? []) {
        for (const m of await this._members(sidecarRoom(this.nsp.name, room))) exclude.set(`${m.instanceId}/${m.connId}`, m);
      }
      return { targets, exclude: [...exclude.values()] };
    }

    // The matching sockets of the cluster: this instance's as Socket
    // objects, the others' as RemoteSocket details: id, rooms (its own id
    // and those of opts.rooms it is in; the sidecar does not know the
    // rest) and no handshake or data (undefined: the sidecar has neither).
    async fetchSockets(opts) {
      if (opts.flags?.local) return super.fetchSockets(opts);
      const { targets, exclude } = await this._selection(opts);
      const excluded = new Set(exclude.map((m) => `${m.instanceId}/${m.connId}`));
      const self = await this._instanceId();
      const found = new Map();
      for (const [i, room] of targets.entries()) {
        for (const m of await this._members(room)) {
          const key = `${m.instanceId}/${m.connId}`;
          if (!m.connId.startsWith('sio.') || excluded.has(key)) continue;
          const id = m.connId.slice(4);
          const local = m.instanceId === self ? this.nsp.sockets.get(id) : undefined;
          if (!found.has(key)) found.set(key, local ?? { id, handshake: undefined, rooms: [id], data: undefined });
          if (!local && opts.rooms?.size) found.get(key).rooms.push([...opts.rooms][i]);
        }
      }
      return [...found.values()];
    }

    // `name` (joinConnections, leaveConnections, disconnectConnections) for
    // every target of opts, except opts.except's connections.
    async _everywhere(name, opts, ...args) {
      const { targets, exclude } = await this._selection(opts);
      if (exclude.length > MAX_EXCLUDE) {
        throw new RangeError(`${name}: except names ${exclude.length} connections, more than ${MAX_EXCLUDE}`);
      }
      await Promise.all(targets.map((room) => this._client[name]({ room }, ...args, { exclude })));
    }

    // Cluster-wide: the sidecars change the memberships, then every
    // adapter of the namespace (this one too) is told, to update its own
    // view (socket.rooms, local broadcasts). Resolves once both are sent.
    _roomsEverywhere(name, kind, opts, rooms) {
      if (opts.flags?.local) {
        return kind === 'join' ? super.addSockets(opts, rooms) : super.delSockets(opts, rooms);
      }
      const done = this._everywhere(name, opts, rooms.map((r) => sidecarRoom(this.nsp.name, r)))
        .then(() => this._control({ t: kind, r: [...(opts.rooms ?? [])], x: [...(opts.except ?? [])], n: rooms }))
        .catch((err) => onError(err));
      this._track(done);
      return done;
    }

    addSockets(opts, rooms) {
      return this._roomsEverywhere('joinConnections', 'join', opts, rooms);
    }

    delSockets(opts, rooms) {
      return this._roomsEverywhere('leaveConnections', 'leave', opts, rooms);
    }

    // Remotely the sockets are closed as disconnect(true): the sidecar's
    // Disconnect event carries no `close`.
    disconnectSockets(opts, close) {
      if (opts.flags?.local) return super.disconnectSockets(opts, close);
      const done = this._everywhere('disconnectConnections', opts).catch((err) => onError(err));
      this._track(done);
      return done;
    }

    // To the namespace's serverSideEmit listeners of the other instances'
    // adapters (not this one's). No acknowledgements: an Error.
    serverSideEmit(packet) {
      if (typeof packet[packet.length - 1] === 'function') {
        throw new Error('stateside adapter: serverSideEmit with an acknowledgement (serverSideEmitWithAck) is not supported');
      }
      this._track(this._control({ t: 'emit', d: packet }, [{ connId: this._controlId }]).catch((err) => onError(err)));
    }

    // A control message to every adapter of the namespace but `exclude`.
    async _control(message, exclude = []) {
      await this.ready;
      await this._client.publish({ room: this._controlRoom }, CONTROL, encode(message), { exclude });
    }

    _track(p) {
      const tracked = p.finally(() => this._publishing.delete(tracked));
      this._publishing.add(tracked);
    }

    _onControl(event) {
      if (!event.connIds.includes(this._controlId)) return;
      const m = decodeOrReport(event);
      if (m === undefined) return;
      if (m.t === 'emit') {
        this.nsp._onServerSideEmit(m.d);
        return;
      }
      // The sidecars have the memberships already: only this view changes.
      const rooms = new Set(m.n);
      this.apply({ rooms: new Set(m.r), except: new Set(m.x) }, (socket) => {
        if (m.t === 'join') super.addAll(socket.id, rooms);
        else for (const room of rooms) super.del(socket.id, room);
      });
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
            else if (event.kind === 'delivery' && event.event === CONTROL) this._onControl(event);
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
      const message = decodeOrReport(event);
      if (message === undefined) return;
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
      this._client.unregisterConnection(this._controlId).catch(() => {});
      for (const t of this._seen.values()) clearTimeout(t.timer);
      this._seen.clear();
    }
  }
  return StatesideAdapter;
}

module.exports = { createAdapter, sidecarRoom, controlRoom };

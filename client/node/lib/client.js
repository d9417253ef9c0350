// Client: the application's handle on its Stateside sidecar, over gRPC on
// the sidecar's Unix socket. One Client is meant to be shared by the whole
// process. The contract (deadlines, retries, errors) is in README.md.
'use strict';
const grpc = require('@grpc/grpc-js');
const { loadProtos } = require('./proto');
const { StatesideError, fromGrpcError } = require('./errors');
const { isRetryable, newRequestId, backoffDelay } = require('./retry');
const c = require('./convert');
const { PipeTransport, NotSent } = require('./pipe');

const CLIENT_OPTIONS = ['socketPath', 'protoDir', 'callTimeoutMs', 'readyTimeoutMs', 'maxRetries',
                        'initialBackoffMs', 'maxBackoffMs', 'pipe'];
// Replies above gRPC's 4 MiB default are legitimate (a large session, a long
// listing); the sidecar's limits are what bound them.
const MAX_RECEIVE_BYTES = 64 << 20;

function defaultSocketPath() {
  return process.env.STATESIDE_SOCKET || '/tmp/stateside/stateside.sock';
}

// The longest wait a timer can take: setTimeout fires a longer one after 1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1;

function positive(value, name, { zero = false } = {}) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zero && value === 0)) {
    throw new TypeError(`${name} must be a ${zero ? 'non-negative' : 'positive'} number`);
  }
  if (value > MAX_TIMER_MS) throw new RangeError(`${name} must be at most ${MAX_TIMER_MS} ms`);
  return value;
}

function flag(value, name) {
  if (value !== undefined && typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean`);
  return value === true;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const DRAIN_STATES = {
  DRAIN_STATE_SERVING: 'serving', DRAIN_STATE_DRAINING: 'draining', DRAIN_STATE_DRAINED: 'drained',
};
const TOPOLOGIES = {
  TOPOLOGY_MEMORY: 'memory', TOPOLOGY_STANDALONE: 'standalone', TOPOLOGY_SENTINEL: 'sentinel',
  TOPOLOGY_CLUSTER: 'cluster',
};

const SESSION_EVENT_KINDS = {
  created: 'SESSION_EVENT_KIND_CREATED', regenerated: 'SESSION_EVENT_KIND_REGENERATED',
  updated: 'SESSION_EVENT_KIND_UPDATED', destroyed: 'SESSION_EVENT_KIND_DESTROYED',
  expired: 'SESSION_EVENT_KIND_EXPIRED',
};
const connectionRefOut = (r) => ({ instanceId: r.instanceId, connId: r.connId });

function instanceOut(i) {
  return {
    id: i.id,
    hostname: i.hostname,
    pid: c.num(i.pid),
    startTime: c.timestamp(i.startTime),
    uptimeMs: c.durationMs(i.uptime),
    version: i.version,
    drainState: DRAIN_STATES[i.drainState] ?? 'unspecified',
    backend: i.backend,
    adminAddress: i.adminAddress,
    ready: i.ready,
    prestopDelayMs: c.durationMs(i.prestopDelay),
  };
}

// A server stream as an async iterable of converted messages. The first
// message has been read by the caller (`first`); cancel() ends it, and a
// stream that ends with CANCELLED after cancel() ends the iteration quietly.
// An error before anyone iterates (grpc-js emits it with no listener of
// its own yet, after ending the stream) is kept and thrown by the
// iteration instead of crashing the process or passing for a clean end.
// `live`: the Client's set of open streams, which close() cancels.
class StreamIterable {
  constructor(call, iterator, convert, live) {
    this._call = call;
    this._iterator = iterator;
    this._convert = convert;
    this._cancelled = false;
    this._early = null;
    this._live = live;
    call.on('error', (e) => { this._early ??= e; });
    call.on('status', () => live.delete(this));
    live.add(this);
  }

  cancel() {
    this._cancelled = true;
    this._live.delete(this);
    this._call.cancel();
  }

  async *[Symbol.asyncIterator]() {
    try {
      for (;;) {
        let next;
        try {
          next = await this._iterator.next();
        } catch (err) {
          if (this._cancelled && err.code === grpc.status.CANCELLED) return;
          throw fromGrpcError(err);
        }
        if (next.done) {
          if (this._early !== null && !(this._cancelled && this._early.code === grpc.status.CANCELLED)) {
            throw fromGrpcError(this._early);
          }
          return;
        }
        const event = this._convert(next.value);
        if (event !== null) yield event;
      }
    } finally {
      if (!this._cancelled) this.cancel();
    }
  }
}

class Client {
  // No I/O: the first call finds out whether the sidecar is there. Client.connect
  // also waits until it serves.
  constructor(options = {}) {
    c.checkOptions(options, CLIENT_OPTIONS, 'Client');
    this.options = Object.freeze({
      socketPath: c.text(options.socketPath ?? defaultSocketPath(), 'socketPath', { required: true }),
      callTimeoutMs: positive(options.callTimeoutMs ?? 2000, 'callTimeoutMs'),
      readyTimeoutMs: positive(options.readyTimeoutMs ?? 10000, 'readyTimeoutMs', { zero: true }),
      maxRetries: options.maxRetries ?? 3,
      initialBackoffMs: positive(options.initialBackoffMs ?? 20, 'initialBackoffMs'),
      maxBackoffMs: positive(options.maxBackoffMs ?? 1000, 'maxBackoffMs'),
    });
    if (!Number.isInteger(this.options.maxRetries) || this.options.maxRetries < 0) {
      throw new TypeError('maxRetries must be a non-negative integer');
    }
    if (options.pipe !== undefined && typeof options.pipe !== 'boolean') throw new TypeError('pipe must be a boolean');
    if (this.options.initialBackoffMs > this.options.maxBackoffMs) {
      throw new RangeError('initialBackoffMs must be at most maxBackoffMs');
    }
    this._streams = new Set();  // open streams and streams being opened: close() cancels them
    const protos = loadProtos(options.protoDir);
    this._channel = new grpc.Channel(`unix:${this.options.socketPath}`, grpc.credentials.createInsecure(), {
      // A local socket is cheap to retry: reconnect within 50 ms..1 s
      // instead of gRPC's 1 s..120 s, so a restarted sidecar is found quickly.
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.min_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
    });
    const stub = (Service) => new Service('unused', null, { channelOverride: this._channel });
    this._session = stub(protos.v1.SessionService);
    this._analytics = stub(protos.v1.AnalyticsService);
    this._lifecycle = stub(protos.v1.LifecycleService);
    this._realtime = stub(protos.v1.RealtimeService);
    this._health = stub(protos.health.Health);
    // getSession and updateSession on a Pipe stream (default), else unary.
    this._pipe = options.pipe === false ? null : new PipeTransport(this, protos.v1.SessionService);
  }

  // A Client whose sidecar serves: waits up to readyTimeoutMs for its
  // grpc.health.v1 status SERVING (the app may start before its sidecar);
  // else UNAVAILABLE naming the last cause, and the client is closed.
  static async connect(options = {}) {
    const client = new Client(options);
    try {
      await client.waitUntilReady();
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  async waitUntilReady() {
    const deadline = Date.now() + this.options.readyTimeoutMs;
    let last = 'no health check completed';
    for (let attempt = 1; Date.now() < deadline; ++attempt) {
      try {
        const reply = await this._unary(this._health, 'check', { service: '' },
          Math.min(deadline, Date.now() + this.options.callTimeoutMs), { waitForReady: true });
        if (reply.status === 'SERVING') return;
        last = `the sidecar answers ${reply.status}`;
      } catch (err) {
        last = err.message;
      }
      const wait = backoffDelay(attempt, 50, 1000, Math.random());
      if (Date.now() + wait >= deadline) break;
      await sleep(wait);
    }
    throw new StatesideError(grpc.status.UNAVAILABLE,
      `the sidecar at ${this.options.socketPath} did not serve within ${this.options.readyTimeoutMs} ms: ${last}`);
  }

  // Cancels the open streams (their iterations end as after cancel()) and
  // closes the connection.
  close() {
    this._pipe?.close();
    for (const s of [...this._streams]) s.cancel();
    this._channel.close();
  }

  // One attempt of a unary call.
  _unary(stub, method, request, deadline, callOptions = {}) {
    return new Promise((resolve, reject) => {
      stub[method](request, new grpc.Metadata(), { deadline, ...callOptions }, (err, reply) => {
        if (err) reject(err);
        else resolve(reply);
      });
    });
  }

  // One attempt of `name`: on the Pipe stream if it carries the call and
  // can, else (also for a call the stream never sent) a unary RPC.
  async _attempt(name, stub, method, request, deadline) {
    const piped = this._pipe?.carries(name);
    if (piped) {
      try {
        return await this._pipe.call(name, request, deadline);
      } catch (e) {
        if (!(e instanceof NotSent)) throw e;
      }
      this._pipe.stats.unary++;
    }
    return this._unary(stub, method, request, deadline);
  }

  // A call under one deadline (callTimeoutMs from now), retried on
  // UNAVAILABLE when `name` may be retried, with backoff; a retry that could
  // not finish before the deadline is not attempted.
  async _call(name, stub, method, request) {
    const o = this.options;
    const deadline = Date.now() + o.callTimeoutMs;
    for (let retries = 0; ; ++retries) {
      try {
        return await this._attempt(name, stub, method, request, deadline);
      } catch (e) {
        const err = e instanceof StatesideError ? e : fromGrpcError(e);
        if (err.code === grpc.status.UNAVAILABLE && isRetryable(name) && retries < o.maxRetries) {
          const delay = backoffDelay(retries + 1, o.initialBackoffMs, o.maxBackoffMs, Math.random());
          if (Date.now() + delay < deadline) {
            await sleep(delay);
            continue;
          }
        }
        throw err;
      }
    }
  }

  // Opens a server stream and waits, within callTimeoutMs, for its first
  // message (of oneof kind `firstKind`: the sidecar's word that the stream
  // is live); retried on UNAVAILABLE until then when `name` may be
  // retried. Then the rest as a StreamIterable of convert(message).
  async _openStream(name, start, firstKind, convert) {
    const o = this.options;
    const deadline = Date.now() + o.callTimeoutMs;
    for (let retries = 0; ; ++retries) {
      const call = start();
      const iterator = call[Symbol.asyncIterator]();
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; call.cancel(); }, Math.max(0, deadline - Date.now()));
      const opening = { cancel: () => call.cancel() };
      this._streams.add(opening);
      try {
        const first = await iterator.next();
        if (first.done || first.value.kind !== firstKind) {
          throw new StatesideError(grpc.status.INTERNAL, `${name}: the stream did not start with \`${firstKind}\``);
        }
        return new StreamIterable(call, iterator, convert, this._streams);
      } catch (e) {
        call.cancel();
        let err = e instanceof StatesideError ? e : fromGrpcError(e);
        if (err.code === grpc.status.CANCELLED && timedOut) {
          err = new StatesideError(grpc.status.DEADLINE_EXCEEDED, `${name}: no \`${firstKind}\` within callTimeoutMs`);
        }
        const delay = backoffDelay(retries + 1, o.initialBackoffMs, o.maxBackoffMs, Math.random());
        if (err.code !== grpc.status.UNAVAILABLE || !isRetryable(name) || retries >= o.maxRetries ||
            Date.now() + delay >= deadline) {
          throw err;
        }
        await sleep(delay);
      } finally {
        clearTimeout(timer);
        this._streams.delete(opening);
      }
    }
  }

  // --- SessionService ---

  // A new session for options.userId (absent: anonymous) holding
  // options.attributes. Retried with one request id per call.
  async createSession(options = {}) {
    const o = c.checkOptions(options, ['userId', 'attributes', 'idleTtlMs', 'absoluteTtlMs',
      'maxSessionsPerUser', 'sessionLimitPolicy', 'requestId', 'encoding'], 'createSession');
    const encoding = c.checkEncoding(o.encoding, 'createSession');
    const request = {
      userId: c.text(o.userId, 'userId'),
      attributes: c.attributesIn(o.attributes, 'attributes'),
      sessionLimitPolicy: c.limitPolicyIn(o.sessionLimitPolicy),
      requestId: o.requestId === undefined ? newRequestId() : c.requestIdIn(o.requestId),
    };
    if (o.idleTtlMs !== undefined) request.idleTtl = c.durationIn(o.idleTtlMs, 'idleTtlMs');
    if (o.absoluteTtlMs !== undefined) request.absoluteTtl = c.durationIn(o.absoluteTtlMs, 'absoluteTtlMs');
    if (o.maxSessionsPerUser !== undefined) {
      request.maxSessionsPerUser = c.uint32In(o.maxSessionsPerUser, 'maxSessionsPerUser');
    }
    const reply = await this._call('createSession', this._session, 'create', request);
    return c.sessionOut(reply.session, encoding);
  }

  // The session with its attributes; touch (default true) rolls the idle timeout.
  async getSession(key, options = {}) {
    const o = c.checkOptions(options, ['touch', 'encoding'], 'getSession');
    const encoding = c.checkEncoding(o.encoding, 'getSession');
    const request = { key: c.keyIn(key) };
    if (o.touch !== undefined) {
      if (typeof o.touch !== 'boolean') throw new TypeError('touch must be a boolean');
      request.touch = o.touch;
    }
    const reply = await this._call('getSession', this._session, 'get', request);
    return c.sessionOut(reply.session, encoding);
  }

  // Sets options.set and deletes options.remove (a name may not be in
  // both); with expectedVersion, applies only at that version (else
  // ABORTED, reason VERSION_MISMATCH). Not retried (see README).
  async updateSession(key, options = {}) {
    const o = c.checkOptions(options, ['set', 'remove', 'expectedVersion'], 'updateSession');
    const request = {
      key: c.keyIn(key),
      set: c.attributesIn(o.set, 'set'),
      remove: c.stringList(o.remove, 'remove'),
    };
    if (o.expectedVersion !== undefined) {
      request.expectedVersion = c.uint64In(o.expectedVersion, 'expectedVersion');
    }
    const reply = await this._call('updateSession', this._session, 'update', request);
    return c.metadataOut(reply.metadata);
  }

  async touchSession(key) {
    const reply = await this._call('touchSession', this._session, 'touch', { key: c.keyIn(key) });
    return c.metadataOut(reply.metadata);
  }

  // true if the session existed (after a retry: what the last attempt saw).
  async destroySession(key) {
    const reply = await this._call('destroySession', this._session, 'destroy', { key: c.keyIn(key) });
    return reply.existed;
  }

  // New id and cookie, same attributes; the old id is gone. options.userId
  // gives an anonymous session its owner (login that keeps the cart); null
  // is no owner asked for, as undefined (and as in createSession).
  async regenerateSession(key, options = {}) {
    const o = c.checkOptions(options, ['userId', 'maxSessionsPerUser', 'sessionLimitPolicy',
      'requestId', 'encoding'], 'regenerateSession');
    const encoding = c.checkEncoding(o.encoding, 'regenerateSession');
    const request = {
      key: c.keyIn(key),
      sessionLimitPolicy: c.limitPolicyIn(o.sessionLimitPolicy),
      requestId: o.requestId === undefined ? newRequestId() : c.requestIdIn(o.requestId),
    };
    if (o.userId != null) request.userId = c.text(o.userId, 'userId');
    if (o.maxSessionsPerUser !== undefined) {
      request.maxSessionsPerUser = c.uint32In(o.maxSessionsPerUser, 'maxSessionsPerUser');
    }
    const reply = await this._call('regenerateSession', this._session, 'regenerate', request);
    const session = c.sessionOut(reply.session, encoding);
    if (o.userId != null && session.userId !== o.userId) {
      // A sidecar before API revision 2 ignores user_id. It regenerated all
      // the same (the old id is gone): the new session goes with the error.
      const err = new StatesideError(grpc.status.FAILED_PRECONDITION,
        'the sidecar did not give the session the userId asked for (it predates API revision 2)');
      err.session = session;
      throw err;
    }
    return session;
  }

  // One page of the user's live sessions: { sessions, nextPageToken } ("":
  // the last page). A page may hold fewer sessions, or none, and still have
  // a next one.
  async listUserSessions(userId, options = {}) {
    const o = c.checkOptions(options, ['pageSize', 'pageToken'], 'listUserSessions');
    const request = {
      userId: c.text(userId, 'userId', { required: true }),
      pageSize: o.pageSize === undefined ? 0 : c.uint32In(o.pageSize, 'pageSize'),
      pageToken: c.text(o.pageToken, 'pageToken'),
    };
    const reply = await this._call('listUserSessions', this._session, 'listUserSessions', request);
    return { sessions: reply.sessions.map(c.metadataOut), nextPageToken: reply.nextPageToken };
  }

  // Every page of the above, one call per page of 1000.
  async *allUserSessions(userId) {
    let pageToken = '';
    do {
      const page = await this.listUserSessions(userId, { pageToken, pageSize: 1000 });
      yield* page.sessions;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  // Destroys every session of userId except options.keep; how many.
  async destroyUserSessions(userId, options = {}) {
    const o = c.checkOptions(options, ['keep', 'closeConnections'], 'destroyUserSessions');
    const request = { userId: c.text(userId, 'userId', { required: true }) };
    if (o.keep !== undefined) request.keep = c.keyIn(o.keep, 'keep');
    if (o.closeConnections !== undefined) {
      if (typeof o.closeConnections !== 'boolean') throw new TypeError('closeConnections must be a boolean');
      request.closeConnections = o.closeConnections;
    }
    const reply = await this._call('destroyUserSessions', this._session, 'destroyUserSessions', request);
    return reply.destroyed;
  }

  // The sessions' changes as they happen (API revision 3,
  // capabilities.sessionEvents): resolves once the sidecar says `watching`
  // (within callTimeoutMs; not retried) to an async iterable of { kind:
  // 'change', change: 'created' | 'regenerated' | 'updated' | 'destroyed' |
  // 'expired', sessionId, userId, time, previousSessionId, attributes (the
  // names), originInstance } and { kind: 'gap', ... }, with cancel(). No
  // deadline after that; after a break, watch again and treat it as a gap.
  // options.kinds: only these (default every kind).
  async watchSessionEvents(options = {}) {
    const o = c.checkOptions(options, ['kinds'], 'watchSessionEvents');
    const kinds = c.stringList(o.kinds, 'kinds').map((k) => {
      if (!Object.hasOwn(SESSION_EVENT_KINDS, k)) {
        throw new TypeError(`kinds: unknown kind "${k}" (known: ${Object.keys(SESSION_EVENT_KINDS).join(', ')})`);
      }
      return SESSION_EVENT_KINDS[k];
    });
    const names = Object.fromEntries(Object.entries(SESSION_EVENT_KINDS).map(([k, v]) => [v, k]));
    return this._openStream('watchSessionEvents', () => this._session.watchSessionEvents({ kinds }), 'watching', (e) => {
      if (e.kind === 'gap') return { kind: 'gap', ...c.gapOut(e.gap) };
      if (e.kind !== 'change') return null;
      const ch = e.change;
      return {
        kind: 'change', change: names[ch.kind] ?? 'unspecified', sessionId: ch.sessionId, userId: ch.userId,
        time: c.timestamp(ch.time), previousSessionId: ch.previousSessionId, attributes: ch.attributes,
        originInstance: ch.originInstance,
      };
    });
  }

  // --- AnalyticsService ---

  async setOptOut(subject, optedOut, options = {}) {
    const o = c.checkOptions(options, ['ttlMs'], 'setOptOut');
    if (typeof optedOut !== 'boolean') throw new TypeError('optedOut must be a boolean');
    const request = { subject: c.text(subject, 'subject', { required: true }), optedOut };
    if (o.ttlMs !== undefined) request.ttl = c.durationIn(o.ttlMs, 'ttlMs');
    await this._call('setOptOut', this._analytics, 'setOptOut', request);
  }

  async getOptOut(subject) {
    const reply = await this._call('getOptOut', this._analytics, 'getOptOut',
      { subject: c.text(subject, 'subject', { required: true }) });
    return reply.optedOut;
  }

  // --- LifecycleService ---

  // { instance, apiRevision, capabilities }.
  async getInstance() {
    const reply = await this._call('getInstance', this._lifecycle, 'getInstance', {});
    const caps = reply.capabilities ?? {};
    return {
      instance: instanceOut(reply.instance ?? {}),
      apiRevision: reply.apiRevision,
      capabilities: {
        pipe: caps.pipe, sessionEvents: caps.sessionEvents, reflection: caps.reflection,
        requestIds: caps.requestIds, realtimeResume: caps.realtimeResume,
        topology: TOPOLOGIES[caps.topology] ?? 'unspecified',
      },
    };
  }

  async listInstances() {
    const reply = await this._call('listInstances', this._lifecycle, 'listInstances', {});
    return reply.instances.map(instanceOut);
  }

  // The sidecar's grpc.health.v1 status ('' = the server as a whole):
  // 'SERVING', 'NOT_SERVING' (a draining sidecar: a value, not an error), ...
  async checkHealth(service = '') {
    const reply = await this._call('checkHealth', this._health, 'check', { service: c.text(service, 'service') });
    return reply.status;
  }

  // Starts the sidecar's drain, as SIGTERM to it does.
  async drain(options = {}) {
    const o = c.checkOptions(options, ['holdUntilSignal'], 'drain');
    await this._call('drain', this._lifecycle, 'drain', { holdUntilSignal: flag(o.holdUntilSignal, 'holdUntilSignal') });
  }

  // This app has finished draining. drainToken: the draining event's.
  async reportDrained(drainToken = '') {
    await this._call('reportDrained', this._lifecycle, 'reportDrained',
      { drainToken: c.text(drainToken, 'drainToken') });
  }

  // One WatchDrain stream, as an async iterable of { state ('serving',
  // 'draining', 'drained'), deadline (Date or null), drainToken }. No
  // deadline and no retry; it ends after 'drained', throws a StatesideError
  // when the stream breaks, and cancel() ends it.
  watchDrain(options = {}) {
    const o = c.checkOptions(options, ['observer'], 'watchDrain');
    const call = this._lifecycle.watchDrain({ observer: flag(o.observer, 'observer') });
    return new StreamIterable(call, call[Symbol.asyncIterator](), (e) => ({
      state: DRAIN_STATES[e.state] ?? 'unspecified',
      deadline: c.timestamp(e.deadline),
      drainToken: e.drainToken,
    }), this._streams);
  }

  // --- RealtimeService ---

  async registerConnection(connId, options = {}) {
    const o = c.checkOptions(options, ['userId', 'rooms'], 'registerConnection');
    await this._call('registerConnection', this._realtime, 'registerConnection', {
      connId: c.text(connId, 'connId', { required: true }),
      userId: c.text(o.userId, 'userId'),
      rooms: c.stringList(o.rooms, 'rooms'),
    });
  }

  async unregisterConnection(connId) {
    const reply = await this._call('unregisterConnection', this._realtime, 'unregisterConnection',
      { connId: c.text(connId, 'connId', { required: true }) });
    return reply.found;
  }

  async join(connId, rooms) {
    await this._call('join', this._realtime, 'join',
      { connId: c.text(connId, 'connId', { required: true }), rooms: c.stringList(rooms, 'rooms') });
  }

  async leave(connId, rooms) {
    await this._call('leave', this._realtime, 'leave',
      { connId: c.text(connId, 'connId', { required: true }), rooms: c.stringList(rooms, 'rooms') });
  }

  // target: { room } | { userId } | { connection: { connId, instanceId? } } |
  // { all: true }; payload: string or Buffer. { sequence (bigint), instances }.
  async publish(target, event, payload, options = {}) {
    const o = c.checkOptions(options, ['exclude', 'senderUserId', 'requestId'], 'publish');
    if (o.exclude !== undefined && !Array.isArray(o.exclude)) throw new TypeError('exclude must be an array');
    const request = {
      ...c.targetIn(target, 'target'),
      event: c.text(event, 'event'),
      payload: c.bytes(payload ?? Buffer.alloc(0), 'payload'),
      exclude: (o.exclude ?? []).map((r, i) => c.connectionRefIn(r, `exclude[${i}]`)),
      senderUserId: c.text(o.senderUserId, 'senderUserId'),
      requestId: o.requestId === undefined ? newRequestId() : c.requestIdIn(o.requestId),
    };
    const reply = await this._call('publish', this._realtime, 'publish', request);
    return { sequence: c.big(reply.sequence), instances: c.num(reply.instances) };
  }

  // This instance's events: resolves once the sidecar says `subscribed`
  // (retried on UNAVAILABLE until then, within callTimeoutMs), to an async
  // iterable of { kind: 'delivery' | 'gap' | 'disconnect', ... } with
  // cancel(). options.connections: [{ connId, userId?, rooms? }] registered
  // for the stream's life; options.resume: [{ room | userId | connection |
  // all, sequence }]; options.encoding: payloads as strings.
  async subscribe(options = {}) {
    const o = c.checkOptions(options, ['connections', 'resume', 'encoding'], 'subscribe');
    const encoding = c.checkEncoding(o.encoding, 'subscribe');
    const request = {
      connections: (o.connections ?? []).map((r, i) => {
        c.checkOptions(r, ['connId', 'userId', 'rooms'], `connections[${i}]`);
        return { connId: c.text(r.connId, `connections[${i}].connId`, { required: true }),
                 userId: c.text(r.userId, `connections[${i}].userId`),
                 rooms: c.stringList(r.rooms, `connections[${i}].rooms`) };
      }),
      resume: (o.resume ?? []).map((p, i) => {
        const { sequence, ...target } = p ?? {};
        return { ...c.targetIn(target, `resume[${i}]`), sequence: c.uint64In(sequence ?? 0, `resume[${i}].sequence`) };
      }),
    };
    const convert = (e) => {
      if (e.kind === 'delivery') return { kind: 'delivery', ...c.deliveryOut(e.delivery, encoding) };
      if (e.kind === 'gap') return { kind: 'gap', ...c.gapOut(e.gap) };
      if (e.kind === 'disconnect') return { kind: 'disconnect', connIds: e.disconnect.connIds };
      return null;  // a kind this client does not know
    };
    return this._openStream('subscribe', () => this._realtime.subscribe(request), 'subscribed', convert);
  }

  // One page of a room's members, cluster-wide: { count, members, nextPageToken }.
  async roomMembers(room, options = {}) {
    const o = c.checkOptions(options, ['pageSize', 'pageToken'], 'roomMembers');
    const reply = await this._call('roomMembers', this._realtime, 'roomMembers', {
      room: c.text(room, 'room', { required: true }),
      pageSize: o.pageSize === undefined ? 0 : c.int32In(o.pageSize, 'pageSize'),
      pageToken: c.text(o.pageToken, 'pageToken'),
    });
    return { count: c.num(reply.count), members: reply.members.map(connectionRefOut),
             nextPageToken: reply.nextPageToken };
  }

  async userConnections(userId) {
    const reply = await this._call('userConnections', this._realtime, 'userConnections',
      { userId: c.text(userId, 'userId', { required: true }) });
    return reply.connections.map(connectionRefOut);
  }

  // Cluster-wide (capabilities.realtimeResume): the connections of `of` (a
  // target, as publish's), except options.exclude, join or leave `rooms`,
  // or are disconnected. The instances it was sent to. Not retried.
  async joinConnections(of, rooms, options = {}) {
    return this._selectorCall('joinConnections', of, options, { rooms: c.stringList(rooms, 'rooms') });
  }

  async leaveConnections(of, rooms, options = {}) {
    return this._selectorCall('leaveConnections', of, options, { rooms: c.stringList(rooms, 'rooms') });
  }

  async disconnectConnections(of, options = {}) {
    return this._selectorCall('disconnectConnections', of, options, {});
  }

  async _selectorCall(name, of, options, extra) {
    const o = c.checkOptions(options, ['exclude'], name);
    if (o.exclude !== undefined && !Array.isArray(o.exclude)) throw new TypeError('exclude must be an array');
    const connections = {
      ...c.targetIn(of, 'of'),
      exclude: (o.exclude ?? []).map((r, i) => c.connectionRefIn(r, `exclude[${i}]`)),
    };
    const reply = await this._call(name, this._realtime, name, { connections, ...extra });
    return c.num(reply.instances);
  }

  // A room's recent events: { events, complete, lastSequence, firstSequence, more }.
  async history(room, options = {}) {
    const o = c.checkOptions(options, ['afterSequence', 'limit', 'encoding'], 'history');
    const encoding = c.checkEncoding(o.encoding, 'history');
    const reply = await this._call('history', this._realtime, 'history', {
      room: c.text(room, 'room', { required: true }),
      afterSequence: c.uint64In(o.afterSequence ?? 0, 'afterSequence'),
      limit: o.limit === undefined ? 0 : c.int32In(o.limit, 'limit'),
    });
    return {
      events: reply.events.map((d) => c.deliveryOut(d, encoding)),
      complete: reply.complete,
      lastSequence: c.big(reply.lastSequence),
      firstSequence: c.big(reply.firstSequence),
      more: reply.more,
    };
  }
}

module.exports = { Client, defaultSocketPath };

// PipeTransport: getSession and updateSession multiplexed on one
// SessionService.Pipe stream (proto/stateside/v1/session.proto), batched:
// the calls made in one turn of the event loop go out in one PipeRequest.
// The rules, answers and codes are those of the unary RPCs (the C++
// client's client/src/pipe_transport.cc does the same). Falls back to
// unary RPCs: for the Client's life when the sidecar does not serve Pipe
// (Capabilities.pipe false, or the stream refused UNIMPLEMENTED before any
// answer); for a while after the stream breaks (50 ms, doubling to 1 s
// while new streams break before answering).
'use strict';
const grpc = require('@grpc/grpc-js');
const { StatesideError } = require('./errors');

// The sidecar ends a stream whose message carries more calls than this.
const MAX_CALLS_PER_WRITE = 1024;
// A write carries at most this much even below the sidecar's limit.
const MAX_WRITE_BYTES = 1 << 20;
// The sidecar's announcement of the largest message it accepts.
const MAX_MESSAGE_BYTES_KEY = 'stateside-max-message-bytes';
// A sidecar that announces nothing: writes stay below this (the smallest
// limit a sidecar has had); a single call above it goes unary.
const UNANNOUNCED_MAX_MESSAGE_BYTES = 256 * 1024;
// Calls the stream may hold, queued or awaiting their result; one more
// fails at once with RESOURCE_EXHAUSTED (memory stays bounded when the
// sidecar stops reading), as the C++ client's max_calls_per_stream.
const MAX_PENDING_CALLS = 4096;
const REOPEN_MIN_MS = 50;
const REOPEN_MAX_MS = 1000;
// The PipeCall oneof field of each call this transport carries.
const OPS = { getSession: 'get', updateSession: 'update' };

// Rejects with this: the call never reached the sidecar; send it unary.
class NotSent extends Error {}

class PipeTransport {
  // client: the Client (its channel's SessionService stub and getInstance).
  constructor(client, service) {
    this._client = client;
    this._serialize = service.service.Pipe.requestSerialize;
    this._unaryForever = false;
    this._capability = null;  // Capabilities.pipe once known; 'asking' meanwhile
    this._stream = null;
    this._reopenAt = 0;
    this._reopenDelay = REOPEN_MIN_MS;
    this._nextId = 1;
    this._pending = new Map();  // id -> { resolve, reject, timer, sent }
    this._queue = [];           // { id, bytes, call } not written yet
    this._flushScheduled = false;
    this.stats = { piped: 0, unary: 0, streams: 0 };
  }

  carries(name) {
    return Object.hasOwn(OPS, name);
  }

  // The reply of `name` (an op this transport carries) with `request`,
  // before `deadline` (ms since the epoch); rejects with a StatesideError,
  // or with NotSent when the call must go unary (it never ran).
  async call(name, request, deadline) {
    if (!this._usable()) throw new NotSent();
    const id = this._nextId++;
    const remaining = Math.max(1, Math.floor(deadline - Date.now()));
    const call = {
      id: String(id),
      timeout: { seconds: String(Math.floor(remaining / 1000)), nanos: (remaining % 1000) * 1e6 },
      [OPS[name]]: request,
    };
    const bytes = this._serialize({ calls: [call] }).length;
    if (bytes > this._limit()) throw new NotSent();  // the sidecar judges it unary
    if (this._pending.size >= MAX_PENDING_CALLS) {
      throw new StatesideError(grpc.status.RESOURCE_EXHAUSTED,
        `the client's Pipe stream already holds ${MAX_PENDING_CALLS} calls`);
    }
    const stream = this._open();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new StatesideError(grpc.status.DEADLINE_EXCEEDED,
                                  'deadline exceeded before the sidecar answered on the Pipe stream'));
      }, remaining);
      this._pending.set(id, { resolve, reject, timer, sent: false, stream, op: OPS[name] });
      this._queue.push({ id, bytes, call });
      this._scheduleFlush();
    });
  }

  // Whether this call may go on the stream. Until the sidecar's
  // capabilities are known (asked once, in the background: the probe
  // must not spend the call's deadline) calls go unary.
  _usable() {
    if (this._unaryForever || Date.now() < this._reopenAt) return false;
    if (this._capability === null) {
      this._capability = 'asking';
      this._client.getInstance().then((i) => {
        this._capability = i.capabilities.pipe === true;
        if (!this._capability) this._unaryForever = true;
      }, () => {
        this._capability = null;  // asked again by the next call
      });
    }
    return this._capability === true;
  }

  _limit() {
    return this._stream?.maxBytes ?? UNANNOUNCED_MAX_MESSAGE_BYTES;
  }

  _open() {
    if (this._stream) return this._stream;
    const call = this._client._session.pipe(new grpc.Metadata(), {});
    const stream = { call, ready: false, answered: false, maxBytes: null, ended: false };
    this._stream = stream;
    this.stats.streams++;
    call.on('metadata', (md) => {
      const announced = Number.parseInt(String(md.get(MAX_MESSAGE_BYTES_KEY)[0] ?? ''), 10);
      stream.maxBytes = Number.isSafeInteger(announced) && announced > 0 ? announced : UNANNOUNCED_MAX_MESSAGE_BYTES;
      stream.ready = true;
      this._scheduleFlush();
    });
    call.on('data', (response) => {
      stream.answered = true;
      this._reopenDelay = REOPEN_MIN_MS;
      for (const result of response.results) this._settle(Number(result.id), result);
    });
    call.on('error', () => {});  // the status says it
    call.on('status', (status) => this._ended(stream, status));
    return stream;
  }

  _settle(id, result) {
    const p = this._pending.get(id);
    if (!p) return;  // expired meanwhile
    this._pending.delete(id);
    clearTimeout(p.timer);
    if (result.code === grpc.status.OK) {
      this.stats.piped++;
      p.resolve(result[p.op]);
    } else {
      const info = result.errorInfo && result.errorInfo.reason ? result.errorInfo : null;
      p.reject(new StatesideError(result.code, result.message, info));
    }
  }

  _scheduleFlush() {
    if (this._flushScheduled) return;
    this._flushScheduled = true;
    setImmediate(() => {
      this._flushScheduled = false;
      this._flush();
    });
  }

  // Writes the queued calls, up to a write's worth per message.
  _flush() {
    const stream = this._stream;
    if (!stream || !stream.ready || stream.ended) return;
    const limit = Math.min(stream.maxBytes, MAX_WRITE_BYTES);
    while (this._queue.length > 0) {
      const calls = [];
      let bytes = 0;
      while (this._queue.length > 0 && calls.length < MAX_CALLS_PER_WRITE) {
        const next = this._queue[0];
        if (!this._pending.has(next.id)) {  // expired before its write
          this._queue.shift();
          continue;
        }
        if (next.bytes > stream.maxBytes) {  // larger than the announced limit: unary
          this._queue.shift();
          this._fail(next.id, new NotSent());
          continue;
        }
        if (calls.length > 0 && bytes + next.bytes > limit) break;
        this._queue.shift();
        calls.push(next.call);
        bytes += next.bytes;
        this._pending.get(next.id).sent = true;
      }
      if (calls.length > 0) stream.call.write({ calls });
    }
  }

  _fail(id, err) {
    const p = this._pending.get(id);
    if (!p) return;
    this._pending.delete(id);
    clearTimeout(p.timer);
    p.reject(err);
  }

  // The stream ended: calls never written go unary; calls written fail
  // UNAVAILABLE (retried by the unary rules); a sidecar that refused the
  // stream before answering anything UNIMPLEMENTED has no Pipe.
  _ended(stream, status) {
    stream.ended = true;
    if (this._stream === stream) this._stream = null;
    const noPipe = status.code === grpc.status.UNIMPLEMENTED && !stream.answered;
    if (noPipe) this._unaryForever = true;
    if (!stream.answered) this._reopenDelay = Math.min(this._reopenDelay * 2, REOPEN_MAX_MS);
    this._reopenAt = Date.now() + this._reopenDelay;
    this._queue = this._queue.filter((q) => this._pending.get(q.id)?.stream !== stream);
    for (const [id, p] of [...this._pending]) {
      if (p.stream !== stream) continue;
      this._fail(id, noPipe || !p.sent ? new NotSent()
        : new StatesideError(grpc.status.UNAVAILABLE, `the Pipe stream ended: ${status.details || status.code}`));
    }
  }

  close() {
    this._stream?.call.cancel();
  }
}

module.exports = { PipeTransport, NotSent, MAX_PENDING_CALLS };

// Checking what the caller passes and converting what the sidecar answers.
//
// 64-bit integers (proto-loader gives them as decimal strings):
//   bigint: SessionMetadata.version, Publish's and Delivery's sequence,
//           History's sequences, StreamPosition.sequence, Gap.dropped and
//           first_sequence (counters that may in principle pass 2^53).
//   Number: Instance.pid, the `instances` counts (bounded by the cluster).
// Timestamps become Date (millisecond precision), Durations milliseconds.
'use strict';

// Rejects keys of `options` not in `allowed` (a misspelt option would
// otherwise be ignored silently) and a non-object.
function checkOptions(options, allowed, where) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${where}: unknown option "${key}" (known: ${allowed.join(', ')})`);
    }
  }
  return options;
}

// In a u-mode regexp a surrogate pair is one code point: only a lone
// surrogate matches (String.prototype.isWellFormed needs Node.js 20).
const LONE_SURROGATE = /\p{Surrogate}/u;

// A string field of the API (ids, names, user ids): a well-formed string
// (a lone surrogate would be sent as U+FFFD, naming something else).
function text(value, name, { required = false } = {}) {
  if (value === undefined || value === null) {
    if (required) throw new TypeError(`${name} is required`);
    return '';
  }
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  if (LONE_SURROGATE.test(value)) throw new TypeError(`${name} is not well-formed Unicode (a lone surrogate)`);
  if (required && value === '') throw new TypeError(`${name} must not be empty`);
  return value;
}

// An attribute value or payload: a well-formed string (sent as its UTF-8
// bytes) or bytes (Buffer, any Uint8Array), sent exactly as given.
function bytes(value, name) {
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) throw new TypeError(`${name} is not well-formed Unicode (a lone surrogate)`);
    return Buffer.from(value, 'utf8');
  }
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`${name} must be a string or a Buffer/Uint8Array`);
}

// out[k] = value, also for k === '__proto__' (an assignment would set the
// prototype instead of adding the attribute).
function setOwn(out, k, value) {
  Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
}

function attributesIn(attrs, name) {
  if (attrs === undefined || attrs === null) return {};
  if (typeof attrs !== 'object' || Array.isArray(attrs) || attrs instanceof Map) {
    throw new TypeError(`${name} must be a plain object of name -> string or Buffer`);
  }
  const out = {};
  for (const [k, v] of Object.entries(attrs)) {
    text(k, `${name} name`);
    setOwn(out, k, bytes(v, `${name}["${k}"]`));
  }
  return out;
}

// The encoding option: undefined (Buffers) or a Buffer encoding.
function checkEncoding(encoding, where) {
  if (encoding === undefined) return undefined;
  if (typeof encoding !== 'string' || !Buffer.isEncoding(encoding)) {
    throw new TypeError(`${where}: unknown encoding ${JSON.stringify(encoding)}`);
  }
  return encoding.toLowerCase();
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

// Attribute values as Buffers, or as strings in `encoding`. 'utf8' decodes
// strictly: bytes that are not UTF-8 throw a TypeError naming the attribute
// instead of turning into U+FFFD (ask for Buffers to read such values).
function attributesOut(attrs, encoding) {
  const out = {};
  for (const [k, v] of Object.entries(attrs ?? {})) {
    const buf = Buffer.from(v);
    const value = decode(buf, encoding);
    if (value === null) throw new TypeError(`attribute "${k}" is not valid UTF-8: read it without the encoding option`);
    setOwn(out, k, value);
  }
  return out;
}

// buf as a string in `encoding` (undefined: buf itself); null for bytes
// that are not UTF-8 when encoding is 'utf8' (never U+FFFD).
function decode(buf, encoding) {
  if (encoding === undefined) return buf;
  if (encoding !== 'utf8' && encoding !== 'utf-8') return buf.toString(encoding);
  try {
    return strictUtf8.decode(buf);
  } catch {
    return null;
  }
}

function timestamp(ts) {
  if (!ts) return null;
  const seconds = Number(ts.seconds ?? 0);
  return new Date(seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
}

function durationMs(d) {
  if (!d) return null;
  return Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6);
}

// google.protobuf.Duration's range: 10000 years.
const MAX_DURATION_MS = 315576000000 * 1000;

// A Duration from milliseconds (a non-negative finite number, at most
// MAX_DURATION_MS; nanoseconds rounded).
function durationIn(ms, name) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new TypeError(`${name} must be a non-negative number of milliseconds`);
  }
  if (ms > MAX_DURATION_MS) throw new RangeError(`${name} must be at most ${MAX_DURATION_MS} ms (10000 years)`);
  let seconds = Math.floor(ms / 1000);
  let nanos = Math.round((ms - seconds * 1000) * 1e6);
  if (nanos >= 1e9) {  // 1999.9999999 ms rounds up to the next second
    seconds += 1;
    nanos -= 1e9;
  }
  return { seconds: String(seconds), nanos };
}

const big = (s) => BigInt(s ?? 0);
const num = (s) => Number(s ?? 0);

// An unsigned 64-bit value from the caller: a bigint, or a Number that is a
// safe integer; sent as a decimal string.
function uint64In(value, name) {
  if (typeof value === 'bigint') {
    if (value < 0n || value >= 1n << 64n) throw new RangeError(`${name} is out of the uint64 range`);
    return value.toString();
  }
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  throw new TypeError(`${name} must be a bigint or a non-negative safe integer`);
}

// An int32 count of the API (history's limit, roomMembers' pageSize):
// 0..2^31-1, so that it is never sent as a negative number.
function int32In(value, name) {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
    throw new TypeError(`${name} must be an integer in 0..2147483647`);
  }
  return value;
}

function uint32In(value, name) {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new TypeError(`${name} must be an integer in 0..4294967295`);
  }
  return value;
}

function metadataOut(m) {
  return {
    id: m.id,
    userId: m.userId,
    created: timestamp(m.created),
    lastAccess: timestamp(m.lastAccess),
    idleExpiry: timestamp(m.idleExpiry),
    absoluteExpiry: timestamp(m.absoluteExpiry),
    version: big(m.version),
  };
}

function sessionOut(s, encoding) {
  return { ...metadataOut(s.metadata ?? {}), cookie: s.cookie, attributes: attributesOut(s.attributes, encoding) };
}

// A session key: { id } or { cookie }, exactly one. A cookie from a browser
// goes as { cookie } so that the sidecar checks its signature.
function keyIn(key, name = 'key') {
  if (key === null || typeof key !== 'object') {
    throw new TypeError(`${name} must be { id } or { cookie }`);
  }
  checkOptions(key, ['id', 'cookie'], name);
  const hasId = key.id !== undefined;
  const hasCookie = key.cookie !== undefined;
  if (hasId === hasCookie) throw new TypeError(`${name} must have exactly one of id and cookie`);
  return hasId ? { id: text(key.id, `${name}.id`, { required: true }) }
               : { cookie: text(key.cookie, `${name}.cookie`, { required: true }) };
}

const LIMIT_POLICIES = {
  refuse: 'SESSION_LIMIT_POLICY_REFUSE',
  endOldest: 'SESSION_LIMIT_POLICY_END_OLDEST',
};
function limitPolicyIn(policy) {
  if (policy === undefined) return 'SESSION_LIMIT_POLICY_UNSPECIFIED';
  if (!Object.hasOwn(LIMIT_POLICIES, policy)) {
    throw new TypeError(`sessionLimitPolicy must be one of ${Object.keys(LIMIT_POLICIES).join(', ')}`);
  }
  return LIMIT_POLICIES[policy];
}

// A request_id given by the caller: 1..128 printable ASCII bytes.
function requestIdIn(value) {
  text(value, 'requestId', { required: true });
  if (!/^[\x21-\x7e]{1,128}$/.test(value)) {
    throw new TypeError('requestId must be 1..128 printable ASCII characters (0x21..0x7e)');
  }
  return value;
}

// A publish or selector target: { room } | { userId } | { connection: { connId, instanceId? } } | { all: true }.
function targetIn(target, name) {
  if (target === null || typeof target !== 'object') throw new TypeError(`${name} must be an object`);
  checkOptions(target, ['room', 'userId', 'connection', 'all'], name);
  const keys = Object.keys(target).filter((k) => target[k] !== undefined);
  if (keys.length !== 1) throw new TypeError(`${name} must have exactly one of room, userId, connection, all`);
  if (keys[0] === 'all') {
    if (target.all !== true) throw new TypeError(`${name}.all must be true`);
    return { all: true };
  }
  if (keys[0] === 'connection') return { connection: connectionRefIn(target.connection, `${name}.connection`) };
  return { [keys[0]]: text(target[keys[0]], `${name}.${keys[0]}`, { required: true }) };
}

function connectionRefIn(ref, name) {
  if (ref === null || typeof ref !== 'object') throw new TypeError(`${name} must be { connId, instanceId? }`);
  checkOptions(ref, ['connId', 'instanceId'], name);
  return { connId: text(ref.connId, `${name}.connId`, { required: true }),
           instanceId: text(ref.instanceId, `${name}.instanceId`) };
}

function stringList(list, name) {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new TypeError(`${name} must be an array of strings`);
  return list.map((s, i) => text(s, `${name}[${i}]`, { required: true }));
}

const TARGETS = { TARGET_ROOM: 'room', TARGET_USER: 'userId', TARGET_CONNECTION: 'connection', TARGET_ALL: 'all' };

// With encoding 'utf8', a payload that is not UTF-8 stays its Buffer and
// the delivery has undecoded: true (one bad event neither ends a stream
// nor fails a history page).
function deliveryOut(d, encoding) {
  const raw = Buffer.from(d.payload ?? []);
  const payload = decode(raw, encoding);
  return {
    target: TARGETS[d.target] ?? 'unspecified',
    to: d.to,
    event: d.event,
    payload: payload ?? raw,
    ...(payload === null ? { undecoded: true } : {}),
    connIds: d.connIds ?? [],
    sequence: big(d.sequence),
    publishedAt: timestamp(d.publishedAt),
    originInstance: d.originInstance,
  };
}

// A StreamPosition as subscribe's resume option takes it: { room | userId |
// connection | all, sequence }.
function positionOut(p) {
  const out = {};
  if (p.target === 'connection') {
    out.connection = { connId: p.connection.connId, instanceId: p.connection.instanceId };
  } else if (p.target === 'room' || p.target === 'userId' || p.target === 'all') {
    out[p.target] = p[p.target];
  }
  out.sequence = big(p.sequence);
  return out;
}

function gapOut(g) {
  return {
    reason: g.reason,
    dropped: big(g.dropped),
    fromTime: timestamp(g.fromTime),
    toTime: timestamp(g.toTime),
    resume: g.resume ? positionOut(g.resume) : null,
    firstSequence: big(g.firstSequence),
  };
}

module.exports = {
  checkOptions, text, bytes, attributesIn, attributesOut, checkEncoding, timestamp, durationMs,
  durationIn, big, num, uint64In, int32In, uint32In, metadataOut, sessionOut, keyIn, limitPolicyIn,
  requestIdIn, targetIn, connectionRefIn, stringList, deliveryOut, gapOut,
};

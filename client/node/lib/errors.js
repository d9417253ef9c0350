// StatesideError: a failed call, with the gRPC status code and the
// ErrorInfo the sidecar puts in every error's status details (the
// grpc-status-details-bin trailer: an RpcStatus, i.e. google.rpc.Status,
// holding one google.rpc.ErrorInfo; see proto/stateside/v1/error.proto).
'use strict';
const grpc = require('@grpc/grpc-js');

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));
const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

class StatesideError extends Error {
  // code: a grpc.status number. info: { reason, domain, metadata } or null.
  constructor(code, message, info = null, cause = undefined) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'StatesideError';
    this.code = code;
    this.codeName = CODE_NAMES[code] ?? `CODE_${code}`;
    // Act on reason, never on the message (error.proto). Without details
    // (an error made by gRPC itself, e.g. the socket is missing): the
    // status code's name, as the sidecar's own errors without a reason.
    this.reason = info?.reason || this.codeName;
    this.metadata = Object.freeze({ ...(info?.metadata ?? {}) });
    this.field = this.metadata.field;   // the request field at fault, if any
    this.limit = this.metadata.limit;   // the limit's name, if any
  }
}

// --- A minimal protobuf wire reader: enough for RpcStatus, Any and
// ErrorInfo (varints and length-delimited fields), so that no other
// protobuf library is needed.
function* fields(buf) {
  let pos = 0;
  const varint = () => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length || shift > 63n) throw new Error('bad varint');
      const b = buf[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const number = key >>> 3;
    const wire = key & 7;
    if (wire === 0) {
      yield [number, varint()];
    } else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new Error('truncated field');
      yield [number, buf.subarray(pos, pos + len)];
      pos += len;
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

function decodeErrorInfo(buf) {
  const info = { reason: '', domain: '', metadata: {} };
  for (const [n, v] of fields(buf)) {
    if (n === 1) info.reason = Buffer.from(v).toString('utf8');
    else if (n === 2) info.domain = Buffer.from(v).toString('utf8');
    else if (n === 3) {
      let key = '';
      let value = '';
      for (const [en, ev] of fields(v)) {
        if (en === 1) key = Buffer.from(ev).toString('utf8');
        else if (en === 2) value = Buffer.from(ev).toString('utf8');
      }
      info.metadata[key] = value;
    }
  }
  return info;
}

// The ErrorInfo of a grpc-status-details-bin value, or null.
function errorInfoOfDetails(buf) {
  try {
    for (const [n, any] of fields(buf)) {
      if (n !== 3) continue;  // RpcStatus.details
      let typeUrl = '';
      let value = null;
      for (const [an, av] of fields(any)) {
        if (an === 1) typeUrl = Buffer.from(av).toString('utf8');
        else if (an === 2) value = av;
      }
      if (typeUrl === ERROR_INFO_TYPE_URL && value) return decodeErrorInfo(value);
    }
  } catch {
    return null;  // unreadable details: the code alone
  }
  return null;
}

// A grpc-js ServiceError as a StatesideError.
function fromGrpcError(err) {
  const details = err.metadata?.get?.('grpc-status-details-bin') ?? [];
  const info = details.length > 0 && Buffer.isBuffer(details[0]) ? errorInfoOfDetails(details[0]) : null;
  const code = typeof err.code === 'number' ? err.code : grpc.status.UNKNOWN;
  return new StatesideError(code, err.details || err.message, info, err);
}

module.exports = { StatesideError, fromGrpcError, errorInfoOfDetails, CODE_NAMES };

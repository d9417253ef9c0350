// The retry policy of the C++ client (client/src/retry.cc), call for call.
'use strict';
const crypto = require('node:crypto');

// Calls whose repetition has the effect of one. Update is not among them:
// with expectedVersion a retry of an applied write answers ABORTED, without
// it a retry can re-apply an old value over a newer concurrent write; the
// caller, who knows its data, decides (as the C++ client).
const IDEMPOTENT = new Set([
  'getSession', 'touchSession', 'destroySession', 'listUserSessions', 'destroyUserSessions',
  'setOptOut', 'getOptOut', 'getInstance', 'checkHealth', 'listInstances', 'drain',
  'reportDrained', 'registerConnection', 'unregisterConnection', 'join', 'leave',
  'subscribe', 'roomMembers', 'userConnections', 'history',
]);
// Calls sent with a request_id, generated once per call and the same in
// every attempt: a sidecar of API revision 3 applies them once.
const WITH_REQUEST_ID = new Set(['createSession', 'regenerateSession', 'publish']);

const isRetryable = (call) => IDEMPOTENT.has(call) || WITH_REQUEST_ID.has(call);

// 128 random bits from the kernel's generator, 32 lowercase hex characters:
// unguessable (a retried anonymous Create answers the first answer, a
// session's cookie, to whoever sends the same id).
const newRequestId = () => crypto.randomBytes(16).toString('hex');

// The wait before retry number `retry` (1 = first), in ms: cap =
// min(maxMs, initialMs * 2^(retry-1)), then uniform in [cap/2, cap] for
// jitter in [0, 1] ("equal jitter").
function backoffDelay(retry, initialMs, maxMs, jitter) {
  let cap = Math.min(initialMs, maxMs);
  for (let i = 1; i < retry && cap < maxMs; ++i) cap = Math.min(cap * 2, maxMs);
  const j = Math.min(Math.max(jitter, 0), 1);
  return cap / 2 + (cap / 2) * j;
}

module.exports = { IDEMPOTENT, WITH_REQUEST_ID, isRetryable, newRequestId, backoffDelay };

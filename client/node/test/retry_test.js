// The retry policy, against the C++ client's (client/src/retry.cc).
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { isRetryable, newRequestId, backoffDelay } = require('../lib/retry');

test('which calls are retried', () => {
  for (const call of ['getSession', 'touchSession', 'destroySession', 'listUserSessions',
                      'destroyUserSessions', 'setOptOut', 'getOptOut', 'getInstance', 'reportDrained',
                      'registerConnection', 'join', 'leave', 'subscribe', 'history',
                      'createSession', 'regenerateSession', 'publish']) {
    assert.equal(isRetryable(call), true, call);
  }
  // Update is not: a retry of an applied write answers ABORTED (with
  // expectedVersion) or re-applies an old value over a newer one.
  assert.equal(isRetryable('updateSession'), false);
  // Nor the cluster-wide operations (each instance applies what arrives:
  // a retry could apply twice), nor the session events' stream (a gap).
  for (const call of ['joinConnections', 'leaveConnections', 'disconnectConnections', 'watchSessionEvents']) {
    assert.equal(isRetryable(call), false, call);
  }
  assert.equal(isRetryable('noSuchCall'), false);
});

test('backoff: equal jitter, doubling, capped', () => {
  assert.equal(backoffDelay(1, 20, 1000, 0), 10);
  assert.equal(backoffDelay(1, 20, 1000, 1), 20);
  assert.equal(backoffDelay(3, 20, 1000, 1), 80);
  assert.equal(backoffDelay(30, 20, 1000, 0.5), 750);
  assert.equal(backoffDelay(2, 20, 1000, 7), 40, 'jitter is clamped');
});

test('request ids: 128 random bits in hex, new each time', () => {
  const a = newRequestId();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(newRequestId(), a);
});

// The coordinated drain through @stateside/client against a real sidecar:
// an app watcher is told DRAINING with its drain token, a token the drain
// did not hand out is refused, and the report with the right one lets the
// sidecar finish and exit 0 before its drain timeout.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Client, StatesideError, status } = require('..');
const { startSidecar } = require('./support');

test('watchDrain, drain, reportDrained with the drain token', async () => {
  // A drain timeout far above the test's: an exit before it means the report counted.
  const sidecar = await startSidecar('drain', { env: { STATESIDE_DRAIN_TIMEOUT: '120s',
                                                       STATESIDE_SHUTDOWN_TIMEOUT: '180s' } });
  const client = await Client.connect({ socketPath: sidecar.socket, readyTimeoutMs: 30000 });
  try {
    const watch = client.watchDrain();
    const events = watch[Symbol.asyncIterator]();
    assert.equal((await events.next()).value.state, 'serving');
    await client.drain();
    const draining = (await events.next()).value;
    assert.equal(draining.state, 'draining');
    assert.ok(draining.deadline instanceof Date);
    assert.ok(draining.drainToken.length > 0);
    await assert.rejects(client.reportDrained('not-a-token'),
                         (e) => e instanceof StatesideError && e.code === status.FAILED_PRECONDITION &&
                                e.reason === 'DRAIN_TOKEN_UNKNOWN');
    await client.reportDrained(draining.drainToken);
    assert.equal(await sidecar.exited, 0);
    // The stream ended with the sidecar: DRAINED, or the end (or a break).
    const rest = await events.next().catch((e) => ({ error: e }));
    assert.ok(rest.done || rest.value?.state === 'drained' || rest.error instanceof StatesideError,
              JSON.stringify(rest));
  } finally {
    client.close();
  }
});

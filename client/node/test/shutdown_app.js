// An app for shutdown_test.js: a node:http server under gracefulShutdown on
// the sidecar at $STATESIDE_SOCKET (signals forwarded unless $FORWARD is 0). It says what happens as JSON lines on
// stdout. GET /hello and POST /release answer the connection's remote
// port; GET /slow answers once /release came.
'use strict';
const http = require('node:http');
const { Client, gracefulShutdown } = require('..');

const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
let release;
const released = new Promise((resolve) => { release = resolve; });
const server = http.createServer((req, res) => {
  if (req.url === '/hello') {
    res.end(String(req.socket.remotePort));
  } else if (req.url === '/slow') {
    say({ slow: 'started' });
    released.then(() => res.end('done'));
  } else if (req.url === '/release') {
    release();
    res.end(String(req.socket.remotePort));
  } else {
    res.statusCode = 404;
    res.end();
  }
});

(async () => {
  const client = await Client.connect({ readyTimeoutMs: 30000 });
  // FORWARD=0: the sidecar is signalled itself (a native-sidecar pod's preStop).
  const shutdown = gracefulShutdown(server, client, { idleGraceMs: 60000, forwardSignals: process.env.FORWARD !== '0' });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  await shutdown.watching;
  say({ listening: server.address().port });
  const { reason } = await shutdown.draining;
  say({ draining: reason });
  const done = await shutdown.drained;
  say({ drained: done });
  client.close();
})().catch((err) => {
  say({ error: String(err) });
  process.exit(3);
});

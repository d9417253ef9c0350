// gracefulShutdown against a real sidecar: an app process (shutdown_app.js)
// gets SIGTERM, forwards it to the sidecar as a Drain, drains on the
// sidecar's DRAINING (new connections refused, the request in flight
// finished, a request on a kept-alive connection answered with
// Connection: close) and reports with the drain token: the sidecar exits 0
// long before its drain timeout.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { after } = require('node:test');
const { gracefulShutdown } = require('..');
const { startSidecar } = require('./support');

// A request on `agent`: { status, headers, body }.
function request(agent, port, method, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

// The app's JSON lines, one at a time: next() resolves to the next one.
function lines(stream) {
  const queue = [];
  const waiting = [];
  readline.createInterface({ input: stream }).on('line', (line) => {
    const o = JSON.parse(line);
    if (waiting.length) waiting.shift()(o);
    else queue.push(o);
  });
  return { next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r))) };
}

// The sidecar (drain timeout 120 s: an exit before it means the report
// counted) and the app on it, once the app watches the drain state.
async function startApp(name, forward) {
  const sidecar = await startSidecar(name, { env: { STATESIDE_DRAIN_TIMEOUT: '120s',
                                                    STATESIDE_SHUTDOWN_TIMEOUT: '180s' } });
  const app = spawn(process.execPath, [path.join(__dirname, 'shutdown_app.js')], {
    env: { PATH: process.env.PATH, NODE_PATH: process.env.NODE_PATH ?? '', STATESIDE_SOCKET: sidecar.socket,
           FORWARD: forward ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  after(() => { if (app.exitCode === null && app.signalCode === null) app.kill('SIGKILL'); });
  const exited = new Promise((resolve) => app.once('exit', (code, signal) => resolve({ code, signal })));
  const out = lines(app.stdout);
  const { listening: port } = await out.next();
  assert.ok(port > 0);
  return { sidecar, app, exited, out, port };
}

for (const [who, forward] of [['the app (forwarded as a Drain)', true], ['the sidecar', false]]) {
  test(`SIGTERM to ${who}: drained, the request in flight finished, keep-alive closed, reported`, async () => {
    const { sidecar, app, exited, out, port } = await startApp(forward ? 'shutdown-app' : 'shutdown-sidecar', forward);
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const hello = await request(keepAlive, port, 'GET', '/hello');
    assert.equal(hello.headers.connection, 'keep-alive');
    const slow = request(new http.Agent({ keepAlive: false }), port, 'GET', '/slow');
    assert.deepEqual(await out.next(), { slow: 'started' });

    (forward ? app : sidecar.process).kill('SIGTERM');
    assert.deepEqual(await out.next(), { draining: 'the sidecar is draining' });
    await assert.rejects(request(new http.Agent(), port, 'GET', '/hello'), { code: 'ECONNREFUSED' },
                         'no new connections');
    const release = await request(keepAlive, port, 'POST', '/release');
    assert.equal(release.status, 200);
    assert.equal(release.body, hello.body, 'the kept-alive connection');
    assert.equal(release.headers.connection, 'close');
    const finished = await slow;
    assert.deepEqual([finished.status, finished.body, finished.headers.connection], [200, 'done', 'close']);
    assert.deepEqual(await out.next(), { drained: { reason: 'the sidecar is draining', forced: false, reported: true } });
    assert.deepEqual(await exited, { code: 0, signal: null });
    // Its drain timeout is 120 s: exiting now means the report counted.
    assert.equal(await sidecar.exited, 0);
    keepAlive.destroy();
  });
}

test('a second SIGTERM to the app exits at once with status 1', async () => {
  const { app, exited, out, port } = await startApp('shutdown-twice', true);
  const slow = request(new http.Agent({ keepAlive: false }), port, 'GET', '/slow').catch((e) => e);
  assert.deepEqual(await out.next(), { slow: 'started' });
  app.kill('SIGTERM');
  assert.deepEqual(await out.next(), { draining: 'the sidecar is draining' });
  app.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 1, signal: null });
  assert.equal((await slow).code, 'ECONNRESET', 'the request in flight was cut');
});

test('gracefulShutdown checks its arguments', () => {
  const server = http.createServer();
  assert.throws(() => gracefulShutdown({}, null), TypeError);
  assert.throws(() => gracefulShutdown(server, null, { grace: 1 }),
                { name: 'TypeError', message: /unknown option "grace"/ });
  assert.throws(() => gracefulShutdown(server, null, { idleGraceMs: -1 }), TypeError);
  assert.throws(() => gracefulShutdown(server, null, { forwardSignals: 'yes' }), TypeError);
});

// Real processes for the tests: the built sidecar (STATESIDE_BIN_DIR, else
// the checkout's build/bin) on its embedded memory store or on a
// redis-server started here on a free loopback port below the ephemeral
// range. Each is killed when the test file ends.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { spawn, spawnSync } = require('node:child_process');
const { after } = require('node:test');

const BIN_DIR = process.env.STATESIDE_BIN_DIR || path.resolve(__dirname, '..', '..', '..', 'build', 'bin');

// ctest sets NODE_PATH to the packages it installed from the lock file; a
// client/node/node_modules (npm ci by hand) would be found first instead.
if (process.env.NODE_PATH) {
  const local = path.resolve(__dirname, '..', 'node_modules');
  assert.ok(!require.resolve('@grpc/grpc-js').startsWith(local + path.sep),
            `${local} takes precedence over NODE_PATH=${process.env.NODE_PATH}: remove it to test the locked packages`);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stateside-node-client-'));
const children = [];
after(() => {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

// Polls check() until it returns a truthy value or `ms` pass (a deadline,
// not a fixed sleep).
async function waitFor(what, ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function spawnLogged(argv, env, log) {
  const fd = fs.openSync(log, 'w');
  // --pdeathsig: a test runner that dies takes its servers with it.
  const setpriv = fs.existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL'] : [];
  const [cmd, ...args] = [...setpriv, ...argv];
  // Not the whole environment (a REDIS_URL or STATESIDE_* of the shell
  // would change the server): PATH and the sanitizers' options of a
  // sanitizer pass.
  const inherited = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => k === 'PATH' || /^[A-Z]+SAN_OPTIONS$/.test(k)));
  const p = spawn(cmd, args, { env: { ...inherited, ...env }, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  children.push(p);
  return p;
}

const redisAvailable = () => spawnSync('redis-server', ['--version']).status === 0;

// Whether something accepts connections on 127.0.0.1:port.
function answers(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// A redis-server on 127.0.0.1 at a free port in 20000..31999; { port }.
// Ready when its own log says so: a port taken between the probe and its
// bind could answer for another server while this one fails.
async function startRedis() {
  for (let attempt = 0; attempt < 10; ++attempt) {
    const port = 20000 + crypto.randomInt(12000);
    if (await answers(port)) continue;
    const dir = fs.mkdtempSync(path.join(tmp, 'redis-'));
    const log = path.join(dir, 'redis.log');
    const p = spawnLogged(['redis-server', '--port', String(port), '--bind', '127.0.0.1',
                           '--save', '', '--appendonly', 'no', '--dir', dir], {}, log);
    const ready = await waitFor('redis-server', 10000, () => {
      if (p.exitCode !== null) return 'exited';
      return fs.readFileSync(log, 'utf8').includes('Ready to accept connections') && 'up';
    });
    if (ready === 'up') return { port };
    // Another process took the port first: another one.
  }
  throw new Error('no redis-server could bind a free port');
}

// Fresh random session secrets, the settings of sidecars on one Redis.
function redisSecrets() {
  return {
    SESSION_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex'),
    SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
  };
}

// The sidecar on `socket` (default: one in a temp dir); { socket, process,
// log, exited }. redisPort: on that Redis (fresh random secrets), else the
// memory store.
async function startSidecar(name, { redisPort, env = {}, socket: socketPath } = {}) {
  const bin = path.join(BIN_DIR, 'stateside');
  assert.ok(fs.existsSync(bin), `${bin} is not built (cmake --build build --target stateside)`);
  const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
  const socket = socketPath ?? path.join(dir, 's.sock');
  const log = path.join(dir, 'sidecar.log');
  // Sidecars sharing a Redis share its secrets: pass them in `env`.
  const settings = redisPort ? { ...redisSecrets(), ...env, REDIS_URL: `redis://127.0.0.1:${redisPort}` }
                             : { ...env };
  const p = spawnLogged([bin, '--socket', socket, '--admin-addr', '127.0.0.1:0', '--instance-id', name],
                        settings, log);
  await waitFor(`${name} serving`, 30000, () => {
    if (p.exitCode !== null) throw new Error(`${name} exited ${p.exitCode}: ${fs.readFileSync(log, 'utf8')}`);
    return fs.readFileSync(log, 'utf8').includes('serving on unix:');
  });
  return { socket, process: p, log, exited: new Promise((r) => p.once('exit', (code) => r(code))) };
}

// `count` app instances' sidecars (default two): `${name}-a`, `${name}-b`,
// ... on one redis-server the test starts (sharing its secrets), or,
// without redis-server, one memory-store sidecar `count` times. Their
// sockets.
async function startSidecarPair(name, count = 2) {
  if (!redisAvailable()) {
    const { socket } = await startSidecar(`${name}-a`);
    return Array(count).fill(socket);
  }
  const redis = await startRedis();
  const env = redisSecrets();
  return Promise.all([...'abcdefgh'.slice(0, count)].map(async (suffix) =>
    (await startSidecar(`${name}-${suffix}`, { redisPort: redis.port, env })).socket));
}

// The example app (example/server.js) on `socket` with the settings `env`
// (over RADAR_COOKIE_SECURE=false): { child, exited, line, output,
// listening }; `listening` resolves with its "listening on" line (its
// port), or with its exit.
function startExample(socket, env = {}) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'example', 'server.js'),
                                         '--listen', '127.0.0.1:0', '--socket', socket], {
    env: { PATH: process.env.PATH, NODE_PATH: process.env.NODE_PATH ?? '', RADAR_COOKIE_SECURE: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const done = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const waiting = [];
  const output = [];
  const onLine = (line) => {
    output.push(line);
    for (const w of [...waiting]) if (w.re.test(line)) { waiting.splice(waiting.indexOf(w), 1); w.resolve(line); }
  };
  readline.createInterface({ input: child.stdout }).on('line', onLine);
  readline.createInterface({ input: child.stderr }).on('line', onLine);
  // The first line (from now on) matching re.
  const line = (re) => new Promise((resolve) => waiting.push({ re, resolve }));
  const listening = Promise.race([line(/ listening on 127\.0\.0\.1:\d+$/), done]);
  return { child, exited: done, line, output, listening };
}

// One request to 127.0.0.1:port: { status, headers, body (parsed when JSON) }.
function request(port, method, urlPath, { cookie, body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (cookie) h.Cookie = cookie;
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    if (text !== undefined && h['Content-Type'] === undefined) h['Content-Type'] = 'application/json';
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: h, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => {
        const json = /json/.test(res.headers['content-type'] ?? '') ? JSON.parse(data) : data;
        resolve({ status: res.statusCode, headers: res.headers, body: json });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

module.exports = { BIN_DIR, startSidecar, startSidecarPair, startRedis, redisAvailable, waitFor, startExample, request };

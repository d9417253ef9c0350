// gracefulShutdown(server, client, options): an http.Server's part in the
// sidecar's coordinated drain, as radar-app does it (app/main.cc). The
// drain starts on the sidecar's DRAINING (watchDrain), which the app's own
// SIGTERM/SIGINT triggers when forwarded as Drain; or on the app's own when
// the sidecar could not be told or has not said DRAINING within its
// pre-stop delay + 5 s of the signal. Then: stop accepting, answer every
// request still coming (in flight or on a kept-alive connection) with
// Connection: close, close idle keep-alive connections after a grace, wait
// for the requests in flight (bounded by the sidecar's deadline), and
// report drained with the drain token. A second signal exits at once with
// status 1.
'use strict';
const net = require('node:net');
const c = require('./convert');
const { backoffDelay } = require('./retry');

// Finish this much before the sidecar's deadline, so that the report
// arrives while it still waits for it.
const REPORT_MARGIN_MS = 250;
// Our own drain (sidecar unreachable, or no deadline given): as long as the
// sidecar's default STATESIDE_DRAIN_TIMEOUT.
const OWN_DRAIN_TIMEOUT_MS = 10000;
// After our signal the sidecar says DRAINING after its pre-stop delay; if
// it has not this much later, drain alone.
const DRAINING_LATE_BY_MS = 5000;
// The wait for a sidecar that does not report its pre-stop delay.
const UNKNOWN_PRESTOP_WAIT_MS = 60000;
// How often the drain looks again for connections idle for the grace.
const IDLE_RECHECK_MS = 100;

function nonNegative(value, name) {
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a non-negative number of ms`);
  return value;
}

function gracefulShutdown(server, client, options = {}) {
  const o = c.checkOptions(options, ['forwardSignals', 'idleGraceMs', 'onSecondSignal'], 'gracefulShutdown');
  if (!(server instanceof net.Server)) throw new TypeError('server must be an http.Server');
  const forwardSignals = o.forwardSignals ?? true;
  if (typeof forwardSignals !== 'boolean') throw new TypeError('forwardSignals must be a boolean');
  const idleGraceMs = nonNegative(o.idleGraceMs ?? 1000, 'idleGraceMs');
  const onSecondSignal = o.onSecondSignal ?? (() => process.exit(1));
  if (typeof onSecondSignal !== 'function') throw new TypeError('onSecondSignal must be a function');

  let stopped = false;
  let begun = null;
  let resolveWatching;
  let resolveDraining;
  let resolveDrained;
  let rejectDrained;
  const watching = new Promise((resolve) => { resolveWatching = resolve; });
  const draining = new Promise((resolve) => { resolveDraining = resolve; });
  const drained = new Promise((resolve, reject) => { resolveDrained = resolve; rejectDrained = reject; });
  drained.catch(() => {});  // the app may only await `draining`
  const responses = new Set();
  const timers = new Set();
  const later = (ms, fn) => {
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    timers.add(t);
  };

  // Each connection and since when it has been idle (null: a request is on
  // it), so that the drain closes only those idle for the grace. One
  // accepted before this call is closed by the deadline's cut if still open.
  const idleSince = new Map();
  const onConnection = (socket) => {
    idleSince.set(socket, Date.now());
    socket.once('close', () => idleSince.delete(socket));
  };
  server.prependListener('connection', onConnection);
  // Requests in flight; during the drain each is answered with
  // Connection: close (before the app's handler runs: prepended).
  const onRequest = (req, res) => {
    responses.add(res);
    const socket = req.socket;
    if (idleSince.has(socket)) idleSince.set(socket, null);
    res.once('close', () => {
      responses.delete(res);
      if (idleSince.has(socket)) idleSince.set(socket, Date.now());
    });
    if (begun) res.setHeader('Connection', 'close');
  };
  server.prependListener('request', onRequest);

  function begin(reason, deadline, drainToken) {
    if (begun || stopped) return;
    begun = { reason, deadline, drainToken };
    resolveDraining(begun);
    const finishBy = deadline ? deadline.getTime() - REPORT_MARGIN_MS : Date.now() + OWN_DRAIN_TIMEOUT_MS;
    for (const res of responses) if (!res.headersSent) res.setHeader('Connection', 'close');
    // Stops accepting only (http.Server's close would also end the idle
    // kept-alive connections at once; they get the grace first). The
    // callback runs once every connection has closed.
    const allClosed = new Promise((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    // A kept-alive connection is closed once it has been idle for the
    // grace (longer than a proxy's upstream keepalive_timeout: the proxy
    // has closed it first, so none of its requests meets our close, which
    // it could retry only for idempotent methods), checked until the end.
    const closeIdle = () => {
      const now = Date.now();
      for (const [socket, since] of idleSince) if (since !== null && now - since >= idleGraceMs) socket.destroy();
      later(IDLE_RECHECK_MS, closeIdle);
    };
    later(idleGraceMs, closeIdle);
    const cutOff = new Promise((resolve) => later(Math.max(0, finishBy - Date.now()), () => resolve(true)));
    Promise.race([allClosed.then(() => false), cutOff]).then(async (forced) => {
      if (forced) server.closeAllConnections();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      let reported = false;
      if (drainToken) {
        await client.reportDrained(drainToken);
        reported = true;
      }
      stop();
      resolveDrained({ reason, forced, reported });
    }).catch((err) => {
      stop();
      rejectDrained(err);
    });
  }

  // The sidecar's drain state, watched again after a break until the drain
  // begins or stop(); the stream stays open until the report.
  let watch = null;
  (async () => {
    for (let attempt = 1; !stopped && !begun; ++attempt) {
      try {
        watch = client.watchDrain();
        for await (const event of watch) {
          attempt = 0;
          resolveWatching();
          if (event.state === 'draining') {
            begin('the sidecar is draining', event.deadline, event.drainToken);
          } else if (event.state === 'drained') {
            begin('the sidecar shut down', new Date(), '');
          }
          // Watching on until the report: a watcher that goes away is one
          // the sidecar no longer waits for.
          if (stopped) break;
        }
      } catch {
        // A break: watch again.
      }
      if (!stopped && !begun) {
        await new Promise((r) => later(backoffDelay(Math.max(attempt, 1), 50, 1000, Math.random()), r));
      }
    }
  })();

  // Our SIGTERM/SIGINT: forwarded to the sidecar as a Drain; its DRAINING
  // then begins ours. A second one: onSecondSignal (exit 1).
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) {
      onSecondSignal();
      return;
    }
    if (begun) return;
    client.getInstance().then(async ({ instance }) => {
      await client.drain();
      const late = (instance.prestopDelayMs ?? UNKNOWN_PRESTOP_WAIT_MS) + DRAINING_LATE_BY_MS;
      later(late, () => begin('the sidecar did not say DRAINING', null, ''));
    }).catch(() => begin('signal, sidecar unreachable', null, ''));
  };
  if (forwardSignals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  function stop() {
    stopped = true;
    watch?.cancel();
    server.removeListener('request', onRequest);
    server.removeListener('connection', onConnection);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    if (!begun) for (const t of timers) clearTimeout(t);
  }

  return {
    // Resolves once the sidecar's drain state is watched: a drain that
    // starts after it waits for this app's report.
    watching,
    // Resolves when the drain begins: { reason, deadline, drainToken }.
    draining,
    // Resolves when it is over and reported: { reason, forced, reported }.
    drained,
    // Stops watching and listening for signals (a drain under way goes on).
    close: stop,
  };
}

module.exports = { gracefulShutdown };

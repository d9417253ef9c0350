// The monitoring pack (deploy/monitoring): the PodMonitor scrapes
// the port and pods of deploy/k8s; the PrometheusRule's groups pass
// `promtool check rules` and the unit tests of rules-test.yml; every metric a
// rule or a dashboard panel names is one that a real `stateside` exports
// (read from the /metrics pages of two sidecars started here) or one of the
// documented external metrics; and the checker rejects a made-up name.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { spawn, execFileSync, spawnSync } = require('child_process');
const YAML = require('yaml');
const { src, read, loadYamlDocs, renderKustomization, k8sOverlays, containersOf, BIN_DIR } = require('./deploy_lib.cjs');
const {
  EXTERNAL_METRICS, exportedMetricNames, promqlMetricNames, ruleExprs, dashboardExprs, unknownMetrics,
} = require('./metric_names.cjs');

const DIR = src('deploy', 'monitoring');
const podMonitor = loadYamlDocs(path.join(DIR, 'podmonitor.yaml'))[0];
const ruleObject = loadYamlDocs(path.join(DIR, 'prometheus-rules.yaml'))[0];
const dashboard = JSON.parse(fs.readFileSync(path.join(DIR, 'grafana-dashboard.json'), 'utf8'));
const operations = read('docs', 'OPERATIONS.md');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'monitoring-test-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// --- The PodMonitor against the Deployment.
for (const [variant, dir] of Object.entries(k8sOverlays())) {
  test(`PodMonitor selects the radar pods of deploy/k8s/${variant} and scrapes the sidecar's admin port`, () => {
    assert.equal(podMonitor.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(podMonitor.kind, 'PodMonitor');
    const d = renderKustomization(dir).find((o) => o.kind === 'Deployment' && o.metadata.name === 'radar');
    const podLabels = d.spec.template.metadata.labels;
    const match = podMonitor.spec.selector.matchLabels;
    assert.ok(Object.keys(match).length > 0, 'a PodMonitor with an empty selector scrapes every pod');
    assert.deepEqual(Object.keys(podMonitor.spec.selector), ['matchLabels']);
    for (const [k, v] of Object.entries(match)) assert.equal(podLabels[k], v, `pod label ${k}`);
    assert.equal(podMonitor.spec.podMetricsEndpoints.length, 1);
    const ep = podMonitor.spec.podMetricsEndpoints[0];
    const side = containersOf(d).find((c) => c.name === 'stateside');
    const port = (side.ports || []).find((p) => p.name === ep.port);
    assert.ok(port, `the sidecar container has a port named "${ep.port}"`);
    const ann = d.spec.template.metadata.annotations;
    assert.equal(port.containerPort, Number(ann['prometheus.io/port']), 'the same port as the scrape annotation');
    assert.equal(ep.path, ann['prometheus.io/path'], 'the same path as the scrape annotation');
  });
}

// --- The rules: extracted, then promtool.
const rulesFile = path.join(tmp, 'stateside.rules.yml');
fs.writeFileSync(rulesFile, YAML.stringify(ruleObject.spec));
fs.copyFileSync(path.join(DIR, 'rules-test.yml'), path.join(tmp, 'rules-test.yml'));
const alerts = ruleObject.spec.groups.flatMap((g) => g.rules.filter((r) => r.alert));

function promtool(...args) {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd: tmp });
  if (r.error) throw new Error(`promtool: ${r.error.message} (Debian package: prometheus)`);
  return r;
}

test('PrometheusRule: a monitoring.coreos.com/v1 object whose spec is only groups', () => {
  assert.equal(ruleObject.apiVersion, 'monitoring.coreos.com/v1');
  assert.equal(ruleObject.kind, 'PrometheusRule');
  assert.deepEqual(Object.keys(ruleObject.spec), ['groups']);
  for (const [k, v] of Object.entries(podMonitor.metadata.labels)) {
    assert.equal(ruleObject.metadata.labels[k], v, 'the same labels as the PodMonitor (one ruleSelector/podMonitorSelector)');
  }
});

test('promtool check rules accepts the groups', () => {
  const r = promtool('check', 'rules', rulesFile);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`SUCCESS: ${alerts.length} rules found`));
});

test('promtool test rules: rules-test.yml passes', () => {
  const r = promtool('test', 'rules', 'rules-test.yml');
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('every alert is unit-tested firing, has a severity and a runbook entry in OPERATIONS.md', () => {
  const tests = YAML.parse(fs.readFileSync(path.join(DIR, 'rules-test.yml'), 'utf8')).tests;
  const firing = new Set(tests.flatMap((t) => (t.alert_rule_test || []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
  for (const a of alerts) {
    assert.ok(firing.has(a.alert), `rules-test.yml expects ${a.alert} to fire somewhere`);
    assert.match(a.labels.severity, /^(warning|critical)$/, `${a.alert} severity`);
    assert.equal(a.annotations.runbook, `docs/OPERATIONS.md, Monitoring pack: ${a.alert}`);
    assert.ok(operations.includes(`\`${a.alert}\``), `docs/OPERATIONS.md explains ${a.alert}`);
  }
});

test('promtool test rules fails when an alert does not behave as rules-test.yml expects', () => {
  // The same tests against rules whose drain alert never fires.
  const broken = structuredClone(ruleObject.spec);
  const rule = broken.groups.flatMap((g) => g.rules).find((r) => r.alert === 'StatesideDrainOverran');
  rule.expr = rule.expr.replace(/> 0$/, '> 1000');
  assert.notEqual(rule.expr, alerts.find((a) => a.alert === 'StatesideDrainOverran').expr);
  fs.mkdirSync(path.join(tmp, 'broken'));
  fs.writeFileSync(path.join(tmp, 'broken', 'stateside.rules.yml'), YAML.stringify(broken));
  fs.copyFileSync(path.join(DIR, 'rules-test.yml'), path.join(tmp, 'broken', 'rules-test.yml'));
  const r = promtool('test', 'rules', path.join('broken', 'rules-test.yml'));
  assert.notEqual(r.status, 0);
  assert.match(r.stdout + r.stderr, /StatesideDrainOverran/);
});

// --- The metric names a real sidecar exports.

// GET http://127.0.0.1:port/metrics -> body.
function scrape(port) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}
// Polls check() until it returns a truthy value or `seconds` pass (a
// deadline, not a fixed sleep).
async function waitFor(what, seconds, check) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const sidecars = [];
test.after(() => { for (const p of sidecars) if (p.exitCode === null) p.kill('SIGKILL'); });
// Starts `stateside` on a free admin port and a socket in a temp dir;
// resolves {socket, port} once its admin listener is up.
async function startSidecar(name, env) {
  for (const b of ['stateside', 'statesidectl']) {
    assert.ok(fs.existsSync(path.join(BIN_DIR, b)), `${BIN_DIR}/${b} is not built (cmake --build build --target stateside statesidectl)`);
  }
  const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
  const socket = path.join(dir, 's.sock');
  const log = path.join(dir, 'sidecar.log');
  const fd = fs.openSync(log, 'w');
  const p = spawn(path.join(BIN_DIR, 'stateside'),
                  ['--socket', socket, '--admin-addr', '127.0.0.1:0', '--instance-id', name],
                  { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  sidecars.push(p);
  const port = await waitFor(`${name}'s admin listener`, 30, () => {
    if (p.exitCode !== null) throw new Error(`${name} exited ${p.exitCode}: ${fs.readFileSync(log, 'utf8')}`);
    const m = /admin listening on 127\.0\.0\.1:(\d+)/.exec(fs.readFileSync(log, 'utf8'));
    return m && Number(m[1]);
  });
  return { socket, port, dir };
}
// --wait: the admin listener may answer before the gRPC server does.
const ctl = (socket, ...args) =>
  execFileSync(path.join(BIN_DIR, 'statesidectl'), ['--socket', socket, '--wait', '30s', ...args], { encoding: 'utf8' });

// prometheus-cpp prints no family without a sample, so each labelled family
// the pack reads is made to have one: on the memory store, session calls
// (stateside_rpc_*, stateside_session_key_reads_total); on a Redis that is
// not there, failed connects (stateside_redis_errors_total).
let exported = null;
async function exportedNames() {
  if (exported) return exported;
  const memory = await startSidecar('memory', {});
  const created = ctl(memory.socket, 'session', 'create', '--set', 'a=b');
  const id = /^id:\s+(\S+)/m.exec(created)[1];
  ctl(memory.socket, 'session', 'get', id);
  const memoryPage = await waitFor('stateside_session_key_reads_total', 30, async () => {
    const page = await scrape(memory.port);
    return /^stateside_session_key_reads_total\{/m.test(page) && /^stateside_rpc_duration_seconds_bucket\{/m.test(page) && page;
  });
  const redis = await startSidecar('no-redis', {
    REDIS_URL: `unix://${path.join(tmp, 'no-redis.sock')}`,
    // Fresh random secrets: the sidecar refuses weak or shipped ones.
    SESSION_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex'),
    SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
  });
  const redisPage = await waitFor('stateside_redis_errors_total', 30, async () => {
    const page = await scrape(redis.port);
    return /^stateside_redis_errors_total\{/m.test(page) && page;
  });
  exported = new Set([...exportedMetricNames(memoryPage), ...exportedMetricNames(redisPage)]);
  return exported;
}

test('the sidecar exports the families the exercise is meant to show', async () => {
  const names = await exportedNames();
  for (const n of ['stateside_rpc_requests_total', 'stateside_rpc_duration_seconds_bucket',
                   'stateside_redis_errors_total', 'stateside_session_key_reads_total',
                   'stateside_drain_state', 'process_cpu_seconds_total']) {
    assert.ok(names.has(n), n);
  }
});

test('every metric of the rules and of the dashboard exists (sidecar or documented external)', async () => {
  const names = await exportedNames();
  const problems = unknownMetrics([...ruleExprs(ruleObject.spec.groups), ...dashboardExprs(dashboard)], names);
  assert.deepEqual(problems, [], 'metrics the sidecar does not export');
});

test('the checker rejects a made-up metric in a dashboard panel and in a rule', async () => {
  const names = await exportedNames();
  const copy = structuredClone(dashboard);
  const panel = copy.panels.find((p) => p.targets && p.targets.length > 0);
  panel.targets[0].expr = panel.targets[0].expr.replace(/stateside_\w+/, 'stateside_made_up_requests_total');
  const file = path.join(tmp, 'made-up-dashboard.json');
  fs.writeFileSync(file, JSON.stringify(copy));
  const problems = unknownMetrics(dashboardExprs(JSON.parse(fs.readFileSync(file, 'utf8'))), names);
  assert.deepEqual(problems, [`panel "${panel.title}" A: stateside_made_up_requests_total`]);
  // A real name with a wrong suffix, in a rule.
  const rules = structuredClone(ruleObject.spec.groups);
  rules[0].rules[0].expr = 'rate(stateside_forced_exits[5m]) > 0';
  assert.deepEqual(unknownMetrics(ruleExprs(rules), names), [`rule ${rules[0].rules[0].alert}: stateside_forced_exits`]);
});

test('the PromQL tokenizer finds metric names, not functions, keywords, labels or variables', () => {
  const cases = [
    ['sum by (method, le) (rate(a_bucket{method=~"x|y"}[$__rate_interval]))', ['a_bucket']],
    ['x / on (pod) group_left (node) y unless z offset 5m > bool 1e3', ['x', 'y', 'z']],
    ['label_values(b{namespace=~"$namespace"}, pod)', ['b']],
    ['histogram_quantile(0.99, sum(rate(c[5m])) without (instance))', ['c']],
  ];
  for (const [expr, want] of cases) assert.deepEqual([...promqlMetricNames(expr)].sort(), want, expr);
});

test('the external metrics are documented and none is a sidecar metric', () => {
  for (const [name, exporter] of EXTERNAL_METRICS) {
    assert.doesNotMatch(name, /^(stateside|process)_/, `${name} must come from the sidecar's own /metrics`);
    assert.ok(operations.includes(`\`${name}\``) && operations.includes(exporter), `docs/OPERATIONS.md names ${name} (${exporter})`);
  }
});

test('the dashboard: Grafana JSON with a uid, a Prometheus data source variable and titled panels', () => {
  assert.equal(dashboard.uid, 'stateside-sidecar');
  assert.ok(dashboard.schemaVersion >= 36);
  assert.ok(dashboard.templating.list.some((v) => v.type === 'datasource' && v.query === 'prometheus'));
  const ids = new Set();
  for (const p of dashboard.panels) {
    assert.ok(p.title, 'every panel has a title');
    assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
    ids.add(p.id);
    if (p.type !== 'row') assert.equal(p.datasource.uid, '${datasource}', `${p.title}: the data source variable`);
  }
});

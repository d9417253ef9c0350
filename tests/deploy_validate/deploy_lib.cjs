// Shared by the deploy/ checks: the repository's paths, YAML loading,
// `kubectl kustomize` renderings of deploy/k8s, durations, and what the
// programs accept (settings of `stateside --help` and radar-app, admin routes).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');
const YAML = require('yaml');

const SOURCE_DIR = process.env.STATESIDE_SOURCE_DIR || path.resolve(__dirname, '..', '..');
const BIN_DIR = process.env.STATESIDE_BIN_DIR || path.join(SOURCE_DIR, 'build', 'bin');

function src(...parts) { return path.join(SOURCE_DIR, ...parts); }
function read(...parts) { return fs.readFileSync(src(...parts), 'utf8'); }

// Every document of a YAML text, read as YAML 1.1 like kubectl (go-yaml) and
// Compose do: `0440` is octal, `yes` a boolean, merge keys `<<` work. A
// syntax error throws with `source` (a file name, a command).
function parseYamlDocs(text, source) {
  const docs = YAML.parseAllDocuments(text, { version: '1.1', merge: true });
  const docsOut = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${source}: ${d.errors[0].message}`);
    const value = d.toJS({ maxAliasCount: -1 });
    if (value !== null && value !== undefined) docsOut.push(value);
  }
  return docsOut;
}
function loadYamlDocs(file) {
  return parseYamlDocs(fs.readFileSync(file, 'utf8'), file);
}

// kubectl, for its built-in kustomize. It comes with this machine image (it
// is not a Debian package): the deploy checks need it and fail, saying so,
// when it is missing, rather than pass without having rendered anything.
function kubectl() {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir || '.', 'kubectl');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch (e) { /* next */ }
  }
  throw new Error('kubectl not found on PATH: the deploy checks render deploy/k8s with ' +
                  '`kubectl kustomize`; kubectl ships with the machine image (it is not a Debian ' +
                  'package): install kubectl from the Kubernetes release of your choice');
}

// The objects `kubectl apply -k DIR` would send: `kubectl kustomize DIR`
// (offline, no cluster), parsed as multi-document YAML. A kustomize error
// throws with kustomize's own message.
function renderKustomization(dir) {
  const r = spawnSync(kubectl(), ['kustomize', dir], { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: exit ${r.status}: ${r.stderr.trim()}`);
  return parseYamlDocs(r.stdout, `kubectl kustomize ${dir}`);
}

// The kustomizations of deploy/k8s to apply (every directory with a
// kustomization.yaml but the base): {name: dir}, e.g. "presets/cloud-lb".
function k8sOverlays() {
  const root = src('deploy', 'k8s');
  const out = {};
  for (const rel of fs.readdirSync(root, { recursive: true }).sort()) {
    if (path.basename(rel) !== 'kustomization.yaml') continue;
    const dir = path.dirname(rel);
    if (dir !== 'base') out[dir] = path.join(root, dir);
  }
  return out;
}

// The pod template spec of a workload (or null).
function podSpecOf(o) {
  return (o && o.spec && o.spec.template && o.spec.template.spec) || null;
}
// Every container of a workload, init containers included.
function containersOf(o) {
  const s = podSpecOf(o);
  return s ? [...(s.initContainers || []), ...(s.containers || [])] : [];
}

// "1.5s", "500ms", "2m", "1h" -> seconds. Throws on anything else.
function seconds(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(text).trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}

// Settings: the environment variables `stateside --help` lists (Env:NAME),
// and the defaults it prints.
function statesideHelp() {
  return execFileSync(path.join(BIN_DIR, 'stateside'), ['--help'], { encoding: 'utf8' });
}
function statesideSettings() {
  return new Set([...statesideHelp().matchAll(/\(Env:([A-Z0-9_]+)\)/g)].map((m) => m[1]));
}
function statesideDefault(env) {
  // "--admin-addr HOST:PORT=127.0.0.1:9464 (Env:STATESIDE_ADMIN_ADDR)"
  const m = new RegExp(`=(\\S+) \\(Env:${env}\\)`).exec(statesideHelp());
  return m ? m[1] : null;
}
// radar-app's settings: `radar-app --help` (Env:NAME) when it is built here,
// else its settings table in app/config.cc ({"listen", "RADAR_LISTEN", ...}).
function radarSettings() {
  const bin = path.join(BIN_DIR, 'radar-app');
  const text = fs.existsSync(bin) ? execFileSync(bin, ['--help'], { encoding: 'utf8' }) : read('app', 'config.cc');
  const pattern = fs.existsSync(bin) ? /\(Env:([A-Z0-9_]+)\)/g : /\{"[a-z-]+", "([A-Z0-9_]+)"/g;
  return new Set([...text.matchAll(pattern)].map((m) => m[1]));
}
// The admin routes of the sidecar: [{method, path}] (sidecar/server/server_admin.cc).
function adminRoutes() {
  return [...read('sidecar', 'server', 'server_admin.cc').matchAll(/routes\.push_back\(\{"([A-Z]+)", "([^"]+)"/g)]
      .map((m) => ({ method: m[1], path: m[2] }));
}
// "0.0.0.0:9464" -> 9464
function portOf(address) {
  const m = /:(\d+)$/.exec(address);
  if (!m) throw new Error(`no port in ${address}`);
  return Number(m[1]);
}

// The value of environment variable `name` of a Kubernetes container
// (a plain value, or the valueFrom object).
function envOf(container, name) {
  const e = (container.env || []).find((v) => v.name === name);
  return e === undefined ? undefined : (e.value !== undefined ? e.value : e.valueFrom);
}

module.exports = {
  SOURCE_DIR, BIN_DIR, src, read, loadYamlDocs, renderKustomization, k8sOverlays, kubectl, podSpecOf, containersOf,
  seconds, statesideSettings, statesideDefault, radarSettings, adminRoutes, portOf, envOf,
};

// Shared by the deploy/ checks: the repository's paths, YAML loading, the
// small part of kustomize that deploy/k8s uses, durations, and what the
// programs accept (settings of `stateside --help` and radar-app, admin routes).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const YAML = require('yaml');
const jsonpatch = require('fast-json-patch');

const SOURCE_DIR = process.env.STATESIDE_SOURCE_DIR || path.resolve(__dirname, '..', '..');
const BIN_DIR = process.env.STATESIDE_BIN_DIR || path.join(SOURCE_DIR, 'build', 'bin');

function src(...parts) { return path.join(SOURCE_DIR, ...parts); }
function read(...parts) { return fs.readFileSync(src(...parts), 'utf8'); }

// Every document of a YAML file, read as YAML 1.1 like kubectl (go-yaml) and
// Compose do: `0440` is octal, `yes` a boolean, merge keys `<<` work. A
// syntax error throws with the file name.
function loadYamlDocs(file) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'), { version: '1.1', merge: true });
  const docsOut = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0].message}`);
    const value = d.toJS({ maxAliasCount: -1 });
    if (value !== null && value !== undefined) docsOut.push(value);
  }
  return docsOut;
}

// The objects `kubectl apply -k DIR` would send, for the kustomization
// features deploy/k8s uses: resources (files or directories), patches (RFC
// 6902 JSON patches from a file, with a target), images (newName/newTag).
// Any other kustomization field is refused: the test must not silently
// ignore what it does not model.
const KUSTOMIZE_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'patches', 'images']);
function renderKustomization(dir) {
  const [k] = loadYamlDocs(path.join(dir, 'kustomization.yaml'));
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization') {
    throw new Error(`${dir}/kustomization.yaml: not a kustomize.config.k8s.io/v1beta1 Kustomization`);
  }
  for (const field of Object.keys(k)) {
    if (!KUSTOMIZE_FIELDS.has(field)) throw new Error(`${dir}/kustomization.yaml: field "${field}" is not modelled by tests/deploy_validate`);
  }
  let objects = [];
  for (const r of k.resources || []) {
    const p = path.join(dir, r);
    if (!fs.existsSync(p)) throw new Error(`${dir}/kustomization.yaml: resource ${r} does not exist`);
    objects = objects.concat(fs.statSync(p).isDirectory() ? renderKustomization(p) : loadYamlDocs(p));
  }
  for (const patch of k.patches || []) {
    const ops = loadYamlDocs(path.join(dir, patch.path))[0];
    const t = patch.target || {};
    const hits = objects.filter((o) =>
      (!t.kind || o.kind === t.kind) && (!t.name || o.metadata.name === t.name) &&
      (t.group === undefined || o.apiVersion === (t.group ? `${t.group}/${t.version}` : t.version)));
    if (hits.length === 0) throw new Error(`${dir}: patch ${patch.path} matches no object`);
    for (const o of hits) {
      const err = jsonpatch.validate(ops, o);
      if (err) throw new Error(`${dir}: patch ${patch.path}: ${err.message}`);
      jsonpatch.applyPatch(o, ops, true, true);
    }
  }
  for (const img of k.images || []) {
    for (const o of objects) {
      for (const c of containersOf(o)) {
        const [name, tag] = c.image.split(':');
        if (name !== img.name) continue;
        c.image = `${img.newName || name}:${img.newTag || tag}`;
      }
    }
  }
  return objects;
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
  SOURCE_DIR, BIN_DIR, src, read, loadYamlDocs, renderKustomization, podSpecOf, containersOf,
  seconds, statesideSettings, statesideDefault, radarSettings, adminRoutes, portOf, envOf,
};

// docs/HORIZONTAL_SCALING_GUIDE.md and the deployment files name only
// settings that exist (`stateside --help`, radar-app's settings), the guide
// names only paths and statesidectl commands that exist, and the drain
// values it quotes are the manifests' values.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const {
  src, read, BIN_DIR, loadYamlDocs, renderKustomization, k8sOverlays, containersOf, envOf,
  statesideSettings, radarSettings,
} = require('./deploy_lib.cjs');
const { instructions } = require('./dockerfile_lint.cjs');

const GUIDE = read('docs', 'HORIZONTAL_SCALING_GUIDE.md');
const PROGRAM_SETTINGS = new Set([...statesideSettings(), ...radarSettings()]);
// Variables of the deployments themselves, which the guide may name too:
// deploy/local's environment, deploy/compose/.env's keys, the variables
// deploy/compose's scripts read and the shell variables of the Kubernetes
// Secret example's commands.
const DEPLOYMENT_VARIABLES = new Set([
  ...[...read('deploy', 'local', 'lib.sh').matchAll(/^#\s+(STATESIDE_[A-Z_]+)\s/gm)].map((m) => m[1]),
  ...[...read('deploy', 'compose', '.env.example').matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]),
  ...['compose.sh'].flatMap((f) => [...read('deploy', 'compose', f).matchAll(/\$\{([A-Z][A-Z0-9_]+)/g)].map((m) => m[1])),
  ...[...read('deploy', 'k8s', 'examples', 'secret.example.yaml').matchAll(/^#\s+([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]),
]);
// Names the API itself defines (enum values of proto/stateside/v1/*.proto,
// such as a Gap's REASON_REDIS_DISCONNECTED): the guide may quote them; they
// are no settings.
const API_NAMES = new Set(
  fs.readdirSync(src('proto', 'stateside', 'v1'))
    .filter((f) => f.endsWith('.proto'))
    .flatMap((f) => [...read('proto', 'stateside', 'v1', f).matchAll(/^\s+([A-Z][A-Z0-9_]+) = \d+;/gm)]
      .map((m) => m[1])));
// An upper-case name not followed by ".md" (docs/REDIS_KEYS.md is a file).
const SETTING = /\b(STATESIDE_[A-Z0-9_]+|SESSION_[A-Z0-9_]+|RADAR_[A-Z0-9_]+|REDIS_[A-Z0-9_]+|USE_REDIS_SESSIONS|INSTANCE_ID|OPT_OUT_TTL)\b(?!\.md)/g;
// Files the user creates from the guide's instructions.
const CREATED_BY_THE_USER = new Set(['deploy/compose/.env', 'deploy/compose/secrets']);

// Inline code spans and fenced blocks of the guide.
function codeOf(markdown) {
  const fenced = [...markdown.matchAll(/^```[a-z]*\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  const prose = markdown.replace(/^```[a-z]*\n[\s\S]*?^```/gm, '');
  return fenced.concat([...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]));
}

test('the programs list their settings (sanity of the sources this test reads)', () => {
  for (const s of ['STATESIDE_SOCKET', 'STATESIDE_ADMIN_ADDR', 'STATESIDE_PRESTOP_DELAY', 'SESSION_SECRET_FILE']) {
    assert.ok(PROGRAM_SETTINGS.has(s), `stateside --help lists ${s}`);
  }
  for (const s of ['RADAR_LISTEN', 'RADAR_COOKIE_SECURE']) assert.ok(PROGRAM_SETTINGS.has(s), `radar-app has ${s}`);
});

function unknownSettings(text) {
  return [...new Set([...text.matchAll(SETTING)].map((m) => m[1]))]
      .filter((s) => !PROGRAM_SETTINGS.has(s) && !DEPLOYMENT_VARIABLES.has(s) && !API_NAMES.has(s));
}
function missingPaths(text) {
  const paths = [...text.matchAll(/(?<![\w/.-])((?:deploy|scripts|docs|tests|sidecar|client|app)\/[A-Za-z0-9_./-]*[A-Za-z0-9_])/g)]
      .map((m) => m[1]);
  return [...new Set(paths)].filter((p) => !fs.existsSync(src(p)) && !CREATED_BY_THE_USER.has(p));
}

test('the checks below catch a setting and a path that do not exist', () => {
  const text = 'Set `STATESIDE_PRESTOP_DELAY` and `STATESIDE_PRE_STOP_DELAY`, see docs/REDIS_KEYS.md and deploy/k8s/nope.yaml.';
  assert.deepEqual(unknownSettings(text), ['STATESIDE_PRE_STOP_DELAY']);
  // An enum value of the API is quoted freely; its name before v1 (without
  // the type's prefix) is no longer one.
  assert.deepEqual(unknownSettings('a `Gap{REASON_REDIS_DISCONNECTED}` and REDIS_DISCONNECTED'), ['REDIS_DISCONNECTED']);
  assert.deepEqual(missingPaths(text), ['deploy/k8s/nope.yaml']);
});

test('every setting the guide names exists', () => {
  assert.deepEqual(unknownSettings(GUIDE), [], 'not in `stateside --help`, radar-app, deploy/local or .env.example');
});

test('every setting the manifests, Compose and the Dockerfile give the programs exists', () => {
  const named = [];
  for (const dir of Object.values(k8sOverlays())) {
    for (const o of renderKustomization(dir)) {
      for (const c of containersOf(o).filter((x) => x.name === 'stateside' || x.name === 'radar-app')) {
        named.push(...(c.env || []).map((e) => `${c.name}: ${e.name}`));
      }
    }
  }
  const compose = loadYamlDocs(src('deploy', 'compose', 'docker-compose.yml'))[0];
  for (const [name, s] of Object.entries(compose.services)) {
    if (/^(app|sidecar)-/.test(name)) named.push(...Object.keys(s.environment).map((e) => `${name}: ${e}`));
  }
  for (const i of instructions(read('deploy', 'docker', 'Dockerfile')).filter((x) => x.keyword === 'ENV')) {
    named.push(`Dockerfile: ${i.args.split('=')[0]}`);
  }
  assert.ok(named.length > 30);
  assert.deepEqual(named.filter((n) => !PROGRAM_SETTINGS.has(n.split(': ')[1])), []);
});

test('every repository path in the guide exists', () => {
  assert.ok((GUIDE.match(/deploy\//g) || []).length > 15);
  assert.deepEqual(missingPaths(GUIDE), []);
});

test('every statesidectl command in the guide exists', () => {
  const help = execFileSync(path.join(BIN_DIR, 'statesidectl'), ['--help'], { encoding: 'utf8' });
  const subcommands = new Set([...help.split('Subcommands:')[1].matchAll(/^ {2}([a-z][a-z-]+)\s/gm)].map((m) => m[1]));
  const used = codeOf(GUIDE).flatMap((code) => [...code.matchAll(/\bstatesidectl\s+(?:--[a-z-]+(?:[ =][^\s-]\S*)?\s+)*([a-z][a-z-]*)/g)].map((m) => m[1]));
  assert.ok(used.length >= 3);
  assert.deepEqual(used.filter((c) => !subcommands.has(c)), []);
});

test('the drain values the guide quotes are those of the manifests', () => {
  const deployment = renderKustomization(k8sOverlays().native).find((o) => o.kind === 'Deployment');
  const side = containersOf(deployment).find((c) => c.name === 'stateside');
  for (const name of ['STATESIDE_PRESTOP_DELAY', 'STATESIDE_DRAIN_TIMEOUT', 'STATESIDE_SHUTDOWN_TIMEOUT']) {
    assert.ok(GUIDE.includes(`${name}=${envOf(side, name)}`), `the guide quotes ${name}=${envOf(side, name)}`);
  }
  const grace = deployment.spec.template.spec.terminationGracePeriodSeconds;
  assert.ok(GUIDE.includes(`terminationGracePeriodSeconds: ${grace}`));
  const compose = loadYamlDocs(src('deploy', 'compose', 'docker-compose.yml'))[0].services;
  assert.ok(GUIDE.includes(`stop_grace_period: ${compose['app-1'].stop_grace_period}`));
  assert.ok(GUIDE.includes(`STATESIDE_SHUTDOWN_TIMEOUT=${compose['sidecar-1'].environment.STATESIDE_SHUTDOWN_TIMEOUT}`));
});

// The guide's table of timing presets: one row per overlay of
// deploy/k8s/presets/, each value that overlay's.
test('the timing presets table of the guide is that of the overlays', () => {
  const rows = [...GUIDE.matchAll(/^\| `(deploy\/k8s\/presets\/[a-z-]+)\/?` \|(.*)\|$/gm)];
  const presets = Object.keys(k8sOverlays()).filter((o) => o.startsWith('presets/'));
  assert.deepEqual(rows.map((r) => r[1]).sort(), presets.map((p) => `deploy/k8s/${p}`).sort(), 'a row per preset');
  for (const [, dir, rest] of rows) {
    const cells = rest.split('|').map((c) => c.trim().replace(/`/g, ''));
    const d = renderKustomization(src(dir)).find((o) => o.kind === 'Deployment');
    const side = containersOf(d).find((c) => c.name === 'stateside');
    // | front end | removal | prestop | drain | shutdown | grace | minReadySeconds |
    const expected = [envOf(side, 'STATESIDE_PRESTOP_DELAY'), envOf(side, 'STATESIDE_DRAIN_TIMEOUT'),
                      envOf(side, 'STATESIDE_SHUTDOWN_TIMEOUT'), String(d.spec.template.spec.terminationGracePeriodSeconds),
                      String(d.spec.minReadySeconds)];
    assert.deepEqual(cells.slice(2, 7), expected, dir);
  }
});

// The dependency rules of docs/ARCHITECTURE.md ("The parts": which folder may
// depend on which), checked against the code: every quoted #include of a
// project header, and every sidecar library's target_link_libraries. The
// table in the document is the source of truth; a word in its "may depend on"
// column that this checker does not know fails the test, so the two cannot
// drift apart.
//
//   node --test tests/rules/include_rules_test.cjs   (from the source root)
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = process.env.STATESIDE_SOURCE_DIR || path.resolve(__dirname, '..', '..');
const SIDECAR_MODULES = ['common', 'crypto', 'session', 'analytics', 'realtime', 'redis',
                         'lifecycle', 'admin', 'rpc', 'server'];

// The parts table: [{folder, deps}] in document order.
function partsTable() {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'ARCHITECTURE.md'), 'utf8');
  const section = doc.split(/^## The parts$/m)[1].split(/^## /m)[0];
  const rows = [];
  for (const line of section.split('\n')) {
    const m = line.match(/^\| `([^`]+)` \|.*\| ([^|]+) \|$/);
    if (m) rows.push({ folder: m[1].replace(/\/$/, ''), deps: m[2].trim() });
  }
  return rows;
}

// The module a project path belongs to ("sidecar/redis/x.h" → "redis"),
// or null for anything that is not a checked module.
function moduleOf(rel) {
  let m = rel.match(/^sidecar\/([a-z]+)\//);
  if (m) return SIDECAR_MODULES.includes(m[1]) ? m[1] : null;
  if (rel.startsWith('client/tools/')) return 'client/tools';
  if (rel.startsWith('client/src/')) return 'client/src';
  if (rel.startsWith('client/include/')) return 'client/public';
  if (rel.startsWith('app/')) return 'app';
  return null;
}

// What a quoted include names: a module, "proto" (generated stubs),
// "client/public" (stateside/*.h), or null (a third-party header).
function includedModule(inc) {
  if (/^stateside\/v1\//.test(inc)) return 'proto';
  if (/^stateside\/[a-z_]+\.h$/.test(inc)) return 'client/public';
  if (/^(sidecar|client|app)\//.test(inc)) return moduleOf(inc) || inc;
  if (/^(proto|tests)\//.test(inc)) return inc.split('/')[0];
  return null;
}

// Allowed targets per checked module, from the table's words.
function allowedFromTable(rows) {
  const allowed = new Map();
  const seen = [];
  const word = (w, folder) => {
    w = w.trim();
    if (w === '—' || w === 'Abseil') return [];
    if (w === 'everything above') return seen.slice();
    if (w === 'everything') return [...SIDECAR_MODULES, 'proto'];
    if (w === 'session (events interface)') return ['session'];
    if (SIDECAR_MODULES.includes(w)) return [w];
    if (w === 'proto only' || w === 'proto') return ['proto'];
    if (w === 'never `sidecar/`') return [];
    if (w === 'the client\'s public headers only' || w === 'the client\'s public headers') {
      return ['client/public'];
    }
    assert.fail(`docs/ARCHITECTURE.md, "The parts", ${folder}: unknown dependency "${w}"; ` +
                'teach tests/rules/include_rules_test.cjs what it means');
  };
  for (const { folder, deps } of rows) {
    if (folder.startsWith('proto/')) seen.push('proto');
    let key = null;
    const m = folder.match(/^sidecar\/([a-z]+)$/);
    if (m) key = m[1];
    if (folder === 'client') key = 'client/src';
    if (folder === 'client/tools') key = 'client/tools';
    if (folder === 'app') key = 'app';
    if (key === null) continue;
    const list = deps.split(',').flatMap((w) => word(w, folder));
    // The public headers and the implementation are one library.
    if (key === 'client/src') list.push('client/public');
    // Every sidecar module may use sidecar/common; the client and the app
    // may not (they never see sidecar/).
    allowed.set(key, new Set([key, ...list, ...(m ? ['common'] : [])]));
    if (m) seen.push(key);
  }
  allowed.set('client/public', allowed.get('client/src'));
  return allowed;
}

function sourcesUnder(dir) {
  const out = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourcesUnder(rel));
    else if (/\.(cc|h)$/.test(e.name)) out.push(rel);
  }
  return out;
}

function includesOf(rel) {
  const text = fs.readFileSync(path.join(ROOT, rel), 'utf8');
  return [...text.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)].map((m) => m[1]);
}

test('docs/ARCHITECTURE.md names a rule for every checked folder', () => {
  const allowed = allowedFromTable(partsTable());
  for (const key of [...SIDECAR_MODULES, 'client/src', 'client/tools', 'app']) {
    assert.ok(allowed.has(key), `the parts table has no row for ${key}`);
  }
});

test('every project #include follows the dependency table', () => {
  const allowed = allowedFromTable(partsTable());
  const broken = [];
  let checked = 0;
  for (const dir of ['sidecar', 'client', 'app']) {
    for (const rel of sourcesUnder(dir)) {
      const from = moduleOf(rel);
      if (from === null) continue;  // sidecar/main.cc wires everything, like server
      for (const inc of includesOf(rel)) {
        const to = includedModule(inc);
        if (to === null) continue;
        checked++;
        if (!allowed.get(from).has(to)) broken.push(`${rel}: #include "${inc}" (${from} → ${to})`);
      }
    }
  }
  assert.ok(checked > 300, `only ${checked} project includes found: the patterns no longer match`);
  assert.deepEqual(broken, [], `includes the table of docs/ARCHITECTURE.md forbids:\n${broken.join('\n')}`);
});

test('each sidecar library links what it includes', () => {
  const missing = [];
  for (const mod of SIDECAR_MODULES) {
    const cmake = path.join(ROOT, 'sidecar', mod, 'CMakeLists.txt');
    if (!fs.existsSync(cmake)) continue;  // header-only (common)
    const text = fs.readFileSync(cmake, 'utf8');
    const links = new Set([...text.matchAll(/stateside_([a-z]+)/g)].map((m) => m[1]));
    const used = new Set();
    for (const rel of sourcesUnder(path.join('sidecar', mod))) {
      for (const inc of includesOf(rel)) {
        const to = includedModule(inc);
        if (SIDECAR_MODULES.includes(to) && to !== mod) used.add(to);
        if (to === 'proto') used.add('proto');
      }
    }
    for (const dep of used) {
      if (!links.has(dep)) missing.push(`sidecar/${mod} includes ${dep} but does not link stateside_${dep}`);
    }
  }
  assert.deepEqual(missing, [], missing.join('\n'));
});

// The checker itself: a planted include in the wrong direction is found.
test('a planted forbidden include is reported', () => {
  const allowed = allowedFromTable(partsTable());
  assert.ok(!allowed.get('app').has(includedModule('sidecar/redis/redis_client.h')));
  assert.ok(!allowed.get('session').has(includedModule('sidecar/redis/redis_client.h')));
  assert.ok(!allowed.get('client/src').has(includedModule('sidecar/crypto/keyring.h')));
  assert.ok(allowed.get('redis').has(includedModule('sidecar/session/store.h')));
});

// The runtime stage of deploy/docker/Dockerfile installs scripts/lib.sh's
// RUNTIME_PACKAGES: this checks, on the binaries of this build, that the list
// is complete (every library `ldd` shows comes from a listed package, one of
// their dependencies, or debian:bookworm-slim itself) and holds nothing else
// (every listed package provides a library some binary loads; ca-certificates
// is the one exception: it is data, the CAs for rediss://).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { read, BIN_DIR } = require('./deploy_lib.cjs');

// In debian:bookworm-slim already (Priority: required, or needed by apt).
const BASE_IMAGE = ['libc6', 'libgcc-s1', 'libstdc++6', 'zlib1g'];
const NOT_A_LIBRARY = ['ca-certificates'];
// The images hold release builds. A sanitizer build links other libraries
// (the sanitizer runtimes, and e.g. libboost_system, which a release link
// drops as unused), so it is not what the image runs: skipped there (the
// release pass of scripts/test checks).
const SANITIZER_RUNTIME = /\blib(asan|tsan)\.so/;
const BINARIES = ['stateside', 'statesidectl', 'radar-app'];

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return r;
}

function runtimePackages() {
  const m = /^RUNTIME_PACKAGES=\(([\s\S]*?)^\)/m.exec(read('scripts', 'lib.sh'));
  assert.ok(m, 'scripts/lib.sh defines RUNTIME_PACKAGES=( ... )');
  return m[1].split('\n').map((l) => l.replace(/#.*/, '')).join(' ').split(/\s+/).filter(Boolean);
}

// {library path: owning package} for the shared libraries a binary loads.
function loadedLibraries(binary) {
  const out = run('ldd', [binary]).stdout;
  const libs = [...out.matchAll(/=>\s+(\/\S+)/g)].map((m) => m[1]);
  const owners = {};
  for (const lib of libs) {
    // usrmerge: a library may be registered under /lib or /usr/lib, by its
    // own name or the name its symlink points to.
    const real = fs.realpathSync(lib);
    const candidates = [lib, real].flatMap((p) => [p, p.replace(/^\/usr\/lib\//, '/lib/'), p.replace(/^\/lib\//, '/usr/lib/')]);
    const r = run('dpkg', ['-S', ...new Set(candidates)]);
    const line = r.stdout.split('\n').find((l) => l.includes(': '));
    assert.ok(line, `${binary}: no Debian package owns ${lib}`);
    owners[lib] = line.split(':')[0];
  }
  return owners;
}

// The packages `names` depend on, recursively (Depends and Pre-Depends).
function dependencyClosure(names) {
  const seen = new Set();
  const todo = [...names];
  while (todo.length > 0) {
    const p = todo.pop();
    if (seen.has(p)) continue;
    seen.add(p);
    const r = run('dpkg-query', ['-W', '-f', '${Depends}, ${Pre-Depends}', p]);
    assert.equal(r.status, 0, `dpkg-query ${p}: ${r.stderr}`);
    for (const dep of r.stdout.split(/[,|]/)) {
      const name = dep.trim().split(/[\s(]/)[0].replace(/:any$/, '');
      if (name) todo.push(name);
    }
  }
  return seen;
}

const binaries = BINARIES.map((b) => path.join(BIN_DIR, b)).filter((b) => fs.existsSync(b));

test('the binaries to check are built', () => {
  assert.ok(binaries.some((b) => b.endsWith('/stateside')), `stateside in ${BIN_DIR}`);
  for (const b of BINARIES) {
    if (!binaries.some((x) => x.endsWith('/' + b))) console.log(`# note: ${b} is not built in ${BIN_DIR}; not checked`);
  }
});

test('RUNTIME_PACKAGES provide every library the binaries load, and nothing else', (t) => {
  if (binaries.some((b) => SANITIZER_RUNTIME.test(run('ldd', [b]).stdout))) {
    t.skip('sanitizer build: the images hold release builds');
    return;
  }
  const listed = runtimePackages();
  const available = dependencyClosure([...listed, ...BASE_IMAGE]);
  const used = new Set();
  for (const binary of binaries) {
    for (const [lib, pkg] of Object.entries(loadedLibraries(binary))) {
      assert.ok(available.has(pkg), `${path.basename(binary)} loads ${lib} from ${pkg}: add ${pkg} to RUNTIME_PACKAGES`);
      used.add(pkg);
    }
  }
  for (const pkg of listed) {
    if (NOT_A_LIBRARY.includes(pkg)) continue;
    assert.ok(used.has(pkg), `RUNTIME_PACKAGES lists ${pkg}, which no binary loads`);
  }
});

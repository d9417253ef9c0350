// `npm pack` ships a copy of the .proto files (prepack), leaves the checkout
// as it was (postpack), and the unpacked package loads its own copy.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const PKG = path.join(__dirname, '..');
const REPO = path.resolve(PKG, '..', '..');

test('npm pack includes the protos and the unpacked package loads them', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stateside-node-pack-'));
  try {
    // A copy of the checkout's layout (client/node beside proto/), so that
    // the source tree is not written to.
    const pkg = path.join(tmp, 'client', 'node');
    fs.cpSync(PKG, pkg, { recursive: true, filter: (f) => !f.includes(`${path.sep}node_modules`) });
    fs.cpSync(path.join(REPO, 'proto'), path.join(tmp, 'proto'), { recursive: true });
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp],
                             { cwd: pkg, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const [info] = JSON.parse(out.slice(out.indexOf('[')));
    const files = info.files.map((f) => f.path).sort();
    const protos = fs.readdirSync(path.join(REPO, 'proto', 'stateside', 'v1')).filter((f) => f.endsWith('.proto'));
    for (const p of protos) assert.ok(files.includes(`proto/stateside/v1/${p}`), `${p} packed: ${files}`);
    for (const f of ['index.js', 'index.d.ts', 'lib/client.js', 'package.json']) assert.ok(files.includes(f), f);
    assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/')), String(files));
    assert.ok(!fs.existsSync(path.join(pkg, 'proto')), 'postpack removed the copy');

    const unpacked = path.join(tmp, 'unpacked');
    fs.mkdirSync(unpacked);
    execFileSync('tar', ['xzf', path.join(tmp, info.filename), '-C', unpacked]);
    const root = path.join(unpacked, 'package');
    // The dependencies the tests run with.
    const modules = path.resolve(require.resolve('@grpc/grpc-js/package.json'), '..', '..', '..');
    fs.symlinkSync(modules, path.join(root, 'node_modules'));
    const loaded = execFileSync(process.execPath, ['-e', `
      const m = require(${JSON.stringify(root)});
      const c = new m.Client({ socketPath: '/nonexistent.sock' });
      c.close();
      console.log(m.defaultProtoDir());`], { encoding: 'utf8' }).trim();
    assert.equal(loaded, path.join(root, 'proto'));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

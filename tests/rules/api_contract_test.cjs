// The API's own rules (docs/API.md, "Evolving the API"), checked by buf
// (the npm package @bufbuild/buf, tests/rules/package-lock.json):
// - `buf lint` with the STANDARD rules and the exceptions proto/buf.yaml
//   documents;
// - `buf breaking` against proto/baseline/stateside-v1.json, the published v1:
//   changes are additive only.
// Both checks are also shown to fail on a planted violation, so that neither
// can pass by checking nothing.
//
//   node --test tests/rules/api_contract_test.cjs   (NODE_PATH: the installed packages)
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = process.env.STATESIDE_SOURCE_DIR || path.resolve(__dirname, '..', '..');
const PROTO = path.join(ROOT, 'proto');
const BASELINE = path.join(PROTO, 'baseline', 'stateside-v1.json');
const BUF = path.join(process.env.NODE_PATH || '', '.bin', 'buf');
const UPDATE_BASELINE =
    'cd proto && buf build --exclude-source-info --path stateside/v1 -o -#format=json ' +
    '| python3 -m json.tool --indent 1 > baseline/stateside-v1.json';

// Runs buf in `dir`; {status, output}.
function buf(dir, ...args) {
  const r = spawnSync(BUF, args, { cwd: dir, encoding: 'utf8', timeout: 120000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

// A copy of the module (buf.yaml and the stateside protos) in a temp
// directory, with `edit(text)` applied to one file.
function plantedCopy(file, edit) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stateside-api-'));
  fs.copyFileSync(path.join(PROTO, 'buf.yaml'), path.join(dir, 'buf.yaml'));
  fs.cpSync(path.join(PROTO, 'stateside'), path.join(dir, 'stateside'), { recursive: true });
  fs.cpSync(path.join(PROTO, 'grpc'), path.join(dir, 'grpc'), { recursive: true });
  const target = path.join(dir, 'stateside', 'v1', file);
  const before = fs.readFileSync(target, 'utf8');
  const after = edit(before);
  assert.notEqual(after, before, 'the planted change applies');
  fs.writeFileSync(target, after);
  return dir;
}

test('buf is installed', () => {
  assert.ok(fs.existsSync(BUF), `${BUF} (npm ci of tests/rules/package-lock.json)`);
  assert.equal(buf(PROTO, '--version').status, 0);
});

test('the protos pass buf lint (STANDARD minus the exceptions of proto/buf.yaml)', () => {
  const r = buf(PROTO, 'lint');
  assert.equal(r.status, 0, r.output);
});

test('every stateside proto names its packages for other languages', () => {
  const dir = path.join(PROTO, 'stateside', 'v1');
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.proto'))) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const option of ['go_package', 'java_package', 'java_multiple_files', 'csharp_namespace']) {
      assert.match(text, new RegExp(`^option ${option} = `, 'm'), `${f}: option ${option}`);
    }
  }
});

test('the protos are additive to the v1 baseline (buf breaking)', () => {
  const r = buf(PROTO, 'breaking', '--against', BASELINE);
  assert.equal(r.status, 0,
      `${r.output}\nstateside.v1 changes must be additive. After an additive change ` +
      `that is released, refresh the baseline: ${UPDATE_BASELINE}`);
});

test('the baseline holds every stateside.v1 file and nothing else of ours', () => {
  const image = JSON.parse(fs.readFileSync(BASELINE, 'utf8'));
  const ours = image.file.map((f) => f.name).filter((n) => !n.startsWith('google/')).sort();
  const sources = fs.readdirSync(path.join(PROTO, 'stateside', 'v1'))
      .filter((f) => f.endsWith('.proto')).map((f) => `stateside/v1/${f}`).sort();
  assert.deepEqual(ours, sources);
});

test('a renamed field, a removed enum value and a changed type are breaking', () => {
  const cases = [
    ['session.proto', (t) => t.replace('uint64 version = 7;', 'uint64 revision = 7;'), /FIELD_SAME_NAME|changed name/],
    ['lifecycle.proto', (t) => t.replace(/^ {2}DRAIN_STATE_DRAINED = 3;\n/m, ''), /ENUM_VALUE_NO_DELETE|deleted/],
    ['realtime.proto', (t) => t.replace('int32 page_size = 2;', 'int64 page_size = 2;'), /FIELD_SAME_TYPE|changed type/],
  ];
  for (const [file, edit, expected] of cases) {
    const dir = plantedCopy(file, edit);
    try {
      const r = buf(dir, 'breaking', '--against', BASELINE);
      assert.notEqual(r.status, 0, `${file}: the planted change passed buf breaking`);
      assert.match(r.output, expected);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('an added field is not breaking (the check is not merely failing)', () => {
  const dir = plantedCopy('session.proto', (t) => t.replace('uint64 version = 7;',
      'uint64 version = 7;\n  string planted_addition = 99;'));
  try {
    const r = buf(dir, 'breaking', '--against', BASELINE);
    assert.equal(r.status, 0, r.output);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an enum value without its type prefix fails lint', () => {
  const dir = plantedCopy('lifecycle.proto', (t) => t.replace('DRAIN_STATE_DRAINED = 3;',
      'DRAIN_STATE_DRAINED = 3;\n  STOPPED = 4;'));
  try {
    const r = buf(dir, 'lint');
    assert.notEqual(r.status, 0, 'the planted enum value passed lint');
    assert.match(r.output, /"STOPPED" should be prefixed with "DRAIN_STATE_"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

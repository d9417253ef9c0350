// deploy/docker/Dockerfile passes the lint, and the lint reports each mistake
// of testdata/bad.Dockerfile (so a clean result means something).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { lintDockerfile } = require('./dockerfile_lint.cjs');
const { read } = require('./deploy_lib.cjs');

test('deploy/docker/Dockerfile has no lint problem', () => {
  assert.deepEqual(lintDockerfile(read('deploy', 'docker', 'Dockerfile')), []);
});

test('every mistake of testdata/bad.Dockerfile is reported', () => {
  const text = fs.readFileSync(path.join(__dirname, 'testdata', 'bad.Dockerfile'), 'utf8');
  const found = lintDockerfile(text).map((p) => `${p.line} ${p.rule}`);
  for (const expected of [
    '4 DL3006', '6 DL3000', '8 DL3020', '10 DL3014', '10 DL3015', '10 DL3009',
    '12 DL3003', '12 DL3004', '12 DL3005', '14 DL4006', '16 secret', '18 DL3007',
    '18 DL3002', '18 stopsignal', '18 healthcheck', '21 syntax', '23 DL3025',
  ]) {
    assert.ok(found.includes(expected), `expected "${expected}" among: ${found.join(', ')}`);
  }
});

test('a stage that a target builds on passes its USER, STOPSIGNAL and HEALTHCHECK on', () => {
  const text = [
    'FROM debian:bookworm-slim AS base', 'STOPSIGNAL SIGTERM', 'USER 10001',
    'HEALTHCHECK CMD ["true"]', 'FROM base AS app', 'ENTRYPOINT ["/app"]', '',
  ].join('\n');
  assert.deepEqual(lintDockerfile(text), []);
  assert.deepEqual(lintDockerfile(text.replace('USER 10001', 'USER root')).map((p) => p.rule), ['DL3002']);
});

// The Kubernetes manifests of deploy/k8s (every overlay, as `kubectl
// kustomize` renders it) pass the schema check, and the
// check rejects what it must (a wrong type, a missing required field, an
// unknown field), each on its own and all three together.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { checkObject, loadTargets } = require('./k8s_schema.cjs');
const { src, renderKustomization, k8sOverlays } = require('./deploy_lib.cjs');

const summary = (problems) => problems.map((p) => `${p.kind} ${p.path}`);

function radarDeployment() {
  const d = renderKustomization(k8sOverlays().native).find((o) => o.kind === 'Deployment');
  assert.ok(d, 'deploy/k8s renders a Deployment');
  return JSON.parse(JSON.stringify(d));
}

test('every object of every overlay of deploy/k8s and the Secret example passes', () => {
  const overlays = Object.values(k8sOverlays());
  assert.ok(overlays.length >= 5, `native, classic and three presets: ${overlays}`);
  const items = loadTargets([...overlays, src('deploy', 'k8s', 'examples', 'secret.example.yaml')]);
  assert.ok(items.length >= 9 * overlays.length, `expected the whole set of objects, got ${items.length}`);
  for (const { source, doc } of items) {
    assert.deepEqual(summary(checkObject(doc)), [], `${path.basename(source)}: ${doc.kind}/${doc.metadata.name}`);
  }
});

test('a manifest with a wrong type, a missing required field and an unknown field gets three rejections', () => {
  const [{ doc }] = loadTargets([path.join(__dirname, 'testdata', 'bad-deployment.yaml')]);
  assert.deepEqual(summary(checkObject(doc)), [
    'type /spec/replicas',
    'required /spec/template/spec/containers/0',
    'unknown /spec/template/spec/containers/0/readinesProbe',
  ]);
});

test('a wrong type alone is rejected', () => {
  const d = radarDeployment();
  d.spec.template.spec.terminationGracePeriodSeconds = '30s';
  assert.deepEqual(summary(checkObject(d)), ['type /spec/template/spec/terminationGracePeriodSeconds']);
});

test('a missing required field alone is rejected', () => {
  const d = radarDeployment();
  delete d.spec.template.spec.initContainers[0].readinessProbe.httpGet.port;
  assert.deepEqual(summary(checkObject(d)),
                   ['required /spec/template/spec/initContainers/0/readinessProbe/httpGet']);
});

test('an unknown field alone is rejected, at any depth', () => {
  const d = radarDeployment();
  d.spec.template.spec.containers[0].resources.limit = { cpu: '1' };  // "limits"
  d.spec.strategy.rollingUpdate.maxSurges = 1;                        // "maxSurge"
  assert.deepEqual(summary(checkObject(d)).sort(), [
    'unknown /spec/strategy/rollingUpdate/maxSurges',
    'unknown /spec/template/spec/containers/0/resources/limit',
  ]);
});

test('a bad enum value and a missing name are rejected', () => {
  const d = radarDeployment();
  d.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes';
  delete d.metadata.name;
  assert.deepEqual(summary(checkObject(d)).sort(),
                   ['enum /spec/template/spec/containers/0/imagePullPolicy', 'required /metadata'].sort());
});

test('an object of an unknown kind is rejected', () => {
  assert.deepEqual(summary(checkObject({ apiVersion: 'apps/v1', kind: 'Deployement', metadata: { name: 'x' } })),
                   ['kind /']);
});

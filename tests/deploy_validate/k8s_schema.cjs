// Checks Kubernetes objects against the Kubernetes object schemas, offline.
//
// The schemas are those of the npm package kubernetes-models (generated from
// the Kubernetes OpenAPI spec, compiled to ajv validators): they reject wrong
// types, bad enum values and missing required fields, but they ACCEPT fields
// they do not know (the schemas have no `additionalProperties: false`), and a
// typo such as `readinesProbe` would pass. So this file adds a strict-field
// check of its own, with the same validators: a field is known to the schema
// exactly when the validator looks at it, which we observe by giving the
// field a value no schema accepts (a function) and seeing whether the
// validator reports an error at that field's path. No error there: the
// schema never looked, the field is unknown — as `kubectl apply` with
// strict field validation would say. (A field whose schema accepts any value,
// e.g. a RawExtension, would be reported too: none of deploy/k8s has one.)
//
//   node k8s_schema.cjs FILE.yaml|DIR ...   (a DIR with kustomization.yaml is
//                                            rendered, see deploy_lib.cjs)
// Exit 0 if every object passes; else each problem on a line, exit 1.
'use strict';
const path = require('path');
const fs = require('fs');
const { loadYamlDocs, renderKustomization } = require('./deploy_lib.cjs');

const GROUPS = {
  'v1': () => require('kubernetes-models/v1'),
  'apps/v1': () => require('kubernetes-models/apps/v1'),
  'policy/v1': () => require('kubernetes-models/policy/v1'),
  'autoscaling/v2': () => require('kubernetes-models/autoscaling/v2'),
  'networking.k8s.io/v1': () => require('kubernetes-models/networking.k8s.io/v1'),
  'batch/v1': () => require('kubernetes-models/batch/v1'),
};

// A value that fails every typed schema (not a string, number, boolean,
// array, object or null in ajv's eyes).
const NOT_A_JSON_VALUE = () => {};

// JSON pointer of a path (array of keys/indexes), as ajv writes instancePath.
function pointer(keys) {
  return keys.map((k) => '/' + String(k).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

function modelFor(doc) {
  const group = GROUPS[doc.apiVersion];
  const Model = group && group()[doc.kind];
  return typeof Model === 'function' ? Model : null;
}

// The ajv errors of `doc` against its schema ([] if valid).
function schemaErrors(Model, doc) {
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    return e.errors;
  }
}

function describe(err) {
  if (err.keyword === 'required') {
    return { path: err.instancePath || '/', kind: 'required',
             message: `missing required field "${err.params.missingProperty}"` };
  }
  if (err.keyword === 'type') {
    return { path: err.instancePath, kind: 'type', message: `must be ${err.params.type}` };
  }
  return { path: err.instancePath, kind: err.keyword, message: err.message || err.keyword };
}

// Every field of `doc` the schema does not know, as paths (arrays of keys).
// Fields inside an unknown field are not reported again.
function unknownFields(Model, doc) {
  const unknown = [];
  const visit = (value, keys) => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => visit(item, keys.concat(i)));
      return;
    }
    if (value === null || typeof value !== 'object') return;
    for (const key of Object.keys(value)) {
      const fieldKeys = keys.concat(key);
      const probe = JSON.parse(JSON.stringify(doc));
      let parent = probe;
      for (const k of keys) parent = parent[k];
      parent[key] = NOT_A_JSON_VALUE;
      const at = pointer(fieldKeys);
      const seen = schemaErrors(Model, probe).some(
          (e) => e.instancePath === at || e.instancePath.startsWith(at + '/'));
      if (seen) {
        visit(value[key], fieldKeys);
      } else {
        unknown.push(fieldKeys);
      }
    }
  };
  visit(doc, []);
  return unknown;
}

// Problems of one object: [{path, kind, message}]; kind is "type",
// "required", "unknown", "enum", ... or "kind" (no schema for it).
function checkObject(doc) {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return [{ path: '/', kind: 'type', message: 'a Kubernetes object must be a mapping' }];
  }
  const Model = modelFor(doc);
  if (!Model) {
    return [{ path: '/', kind: 'kind',
              message: `no schema for apiVersion "${doc.apiVersion}" kind "${doc.kind}"` }];
  }
  const problems = schemaErrors(Model, doc)
      .filter((e) => e.keyword !== 'oneOf')  // its branches are reported already
      .map(describe);
  // The API server requires a name (the schemas leave ObjectMeta optional).
  if (!doc.metadata || typeof doc.metadata.name !== 'string' || doc.metadata.name === '') {
    problems.push({ path: '/metadata', kind: 'required', message: 'missing required field "name"' });
  }
  for (const keys of unknownFields(Model, doc)) {
    problems.push({ path: pointer(keys), kind: 'unknown', message: 'unknown field' });
  }
  // One line per path and kind (a oneOf reports each branch).
  const seen = new Set();
  return problems.filter((p) => {
    const k = `${p.path} ${p.kind}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
}

// [{source, doc}] of the YAML files and kustomize directories given.
function loadTargets(targets) {
  const items = [];
  for (const t of targets) {
    if (fs.statSync(t).isDirectory()) {
      for (const doc of renderKustomization(t)) items.push({ source: t, doc });
    } else {
      for (const doc of loadYamlDocs(t)) items.push({ source: t, doc });
    }
  }
  return items;
}

function main(argv) {
  if (argv.length === 0) {
    console.error('usage: node k8s_schema.cjs FILE.yaml|KUSTOMIZE_DIR ...');
    return 2;
  }
  let bad = 0;
  let count = 0;
  for (const { source, doc } of loadTargets(argv)) {
    count++;
    const name = `${doc && doc.kind}/${doc && doc.metadata && doc.metadata.name}`;
    for (const p of checkObject(doc)) {
      bad++;
      console.log(`${path.relative(process.cwd(), source)}: ${name}: ${p.path}: ${p.message} (${p.kind})`);
    }
  }
  console.log(`${count} objects checked, ${bad} problems`);
  return bad === 0 && count > 0 ? 0 : 1;
}

module.exports = { checkObject, loadTargets };
if (require.main === module) process.exitCode = main(process.argv.slice(2));

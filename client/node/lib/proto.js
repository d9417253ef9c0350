// Loads stateside.v1 from its .proto files at run time (@grpc/proto-loader)
// and declares grpc.health.v1 (Debian ships no grpc protos; the two messages
// are declared here field for field).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// keepCase false: fields are camelCase in JS (user_id -> userId).
// longs String: 64-bit integers arrive as decimal strings, converted by
// convert.js (bigint for versions and sequences, Number for counts).
// enums String: enum values by name. oneofs: the set member's name in
// the oneof's field (e.g. event.kind === 'delivery').
const LOADER_OPTIONS = Object.freeze({
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

const PROTO_FILES = [
  'stateside/v1/session.proto',
  'stateside/v1/analytics.proto',
  'stateside/v1/lifecycle.proto',
  'stateside/v1/realtime.proto',
  'stateside/v1/error.proto',
];

// Where the .proto files are when no protoDir is given: the copy `npm pack`
// puts in the package (prepack), else the repository checkout's proto/.
function defaultProtoDir() {
  const packed = path.join(__dirname, '..', 'proto');
  if (fs.existsSync(path.join(packed, PROTO_FILES[0]))) return packed;
  return path.resolve(__dirname, '..', '..', '..', 'proto');
}

const HEALTH_JSON = {
  nested: {
    grpc: { nested: { health: { nested: { v1: { nested: {
      HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
      HealthCheckResponse: {
        fields: { status: { type: 'ServingStatus', id: 1 } },
        nested: {
          ServingStatus: {
            values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 },
          },
        },
      },
      Health: {
        methods: {
          Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' },
        },
      },
    } } } } } },
  },
};

const cache = new Map();

// { v1: the stateside.v1 namespace of grpc.loadPackageDefinition,
//   health: grpc.health.v1's }, loaded once per directory.
function loadProtos(protoDir = defaultProtoDir()) {
  const dir = path.resolve(protoDir);
  if (cache.has(dir)) return cache.get(dir);
  const missing = PROTO_FILES.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length > 0) {
    throw new Error(`stateside: no ${missing[0]} under ${dir} (set the protoDir option to the ` +
                    "repository's proto/ directory)");
  }
  const definition = protoLoader.loadSync(PROTO_FILES, { ...LOADER_OPTIONS, includeDirs: [dir] });
  const health = protoLoader.fromJSON(HEALTH_JSON, LOADER_OPTIONS);
  const loaded = {
    dir,
    v1: grpc.loadPackageDefinition(definition).stateside.v1,
    health: grpc.loadPackageDefinition(health).grpc.health.v1,
  };
  cache.set(dir, loaded);
  return loaded;
}

module.exports = { loadProtos, defaultProtoDir, PROTO_FILES };

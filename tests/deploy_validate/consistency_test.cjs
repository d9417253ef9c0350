// The deployment files agree with each other and with the programs: drain
// timing against grace periods, probes against the sidecar's admin routes,
// one socket path per pod, settings that exist, selectors that match, and
// Dockerfile build steps that are scripts/lib.sh's.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const {
  src, read, loadYamlDocs, renderKustomization, k8sOverlays, podSpecOf, containersOf, seconds,
  statesideDefault, adminRoutes, portOf, envOf, BIN_DIR,
} = require('./deploy_lib.cjs');
const { instructions, stages } = require('./dockerfile_lint.cjs');

// Time left for the sidecar's own shutdown work (deregister, gRPC grace of
// at most 2 s, flush) and for the kubelet/Docker to deliver signals.
const MARGIN_S = 5;
const SIDECAR = 'stateside';
const APP = 'radar-app';

// Every overlay of deploy/k8s, as `kubectl kustomize` renders it.
const k8s = Object.fromEntries(Object.entries(k8sOverlays()).map(([name, dir]) => [name, renderKustomization(dir)]));
// The timing presets (docs/HORIZONTAL_SCALING_GUIDE.md, "Timing presets"):
// how long the front end takes to stop sending to a deleted pod (the worst
// case), the pre-stop delay that covers it, and minReadySeconds (the time
// the front end takes to send to a new pod).
const PRESETS = {
  'native': { removal: 2, prestop: 5, minReady: 5 },
  'classic': { removal: 2, prestop: 5, minReady: 5 },
  'presets/service': { removal: 2, prestop: 5, minReady: 5 },
  'presets/ingress-nginx': { removal: 5, prestop: 10, minReady: 10 },
  'presets/cloud-lb': { removal: 60, prestop: 60, minReady: 30 },
};
const compose = loadYamlDocs(src('deploy', 'compose', 'docker-compose.yml'))[0];
// The Redis layouts' override files (compose.sh, STATESIDE_COMPOSE_REDIS).
const composeLayouts = Object.fromEntries(['cluster', 'sentinel'].map(
  (layout) => [layout, loadYamlDocs(src('deploy', 'compose', `redis-${layout}.yml`))[0]]));
// A Compose command or healthcheck test as one line: the Redis ones are
// strings (an override replaces a string; podman-compose 1.0.3 appends lists).
const line = (x) => (Array.isArray(x) ? x.join(' ') : x);
const dockerStages = stages(instructions(read('deploy', 'docker', 'Dockerfile')));
const getRoutes = adminRoutes().filter((r) => r.method === 'GET').map((r) => r.path);

const find = (objs, kind, name) => objs.find((o) => o.kind === kind && (!name || o.metadata.name === name));
const container = (d, name) => containersOf(d).find((c) => c.name === name);
const services = (prefix) => Object.keys(compose.services).filter((s) => s.startsWith(prefix));
// The Compose sidecar that shares app's socket volume.
function composeSidecarOf(app) {
  const vol = compose.services[app].volumes[0].split(':')[0];
  return services('sidecar-').find((s) => compose.services[s].volumes.some((v) => v.split(':')[0] === vol));
}

test('Kubernetes: the overlays are native, classic and the three presets', () => {
  assert.deepEqual(Object.keys(k8s).sort(), Object.keys(PRESETS).sort());
});

for (const [variant, objs] of Object.entries(k8s)) {
  test(`Kubernetes (${variant}): terminationGracePeriodSeconds covers pre-stop delay + drain + shutdown`, () => {
    const spec = podSpecOf(find(objs, 'Deployment', 'radar'));
    const side = container(find(objs, 'Deployment', 'radar'), SIDECAR);
    const prestop = seconds(envOf(side, 'STATESIDE_PRESTOP_DELAY'));
    const drain = seconds(envOf(side, 'STATESIDE_DRAIN_TIMEOUT'));
    const shutdown = seconds(envOf(side, 'STATESIDE_SHUTDOWN_TIMEOUT'));
    const grace = spec.terminationGracePeriodSeconds;
    const preset = PRESETS[variant];
    assert.equal(prestop, preset.prestop, `${variant}: STATESIDE_PRESTOP_DELAY`);
    assert.ok(prestop >= preset.removal, `pre-stop delay ${prestop}s covers the endpoint removal (${preset.removal}s)`);
    assert.ok(shutdown >= prestop + drain, `shutdown ${shutdown}s >= prestop ${prestop}s + drain ${drain}s (the sidecar refuses less)`);
    assert.ok(grace >= prestop + drain + MARGIN_S, `grace ${grace}s >= ${prestop}s + ${drain}s + ${MARGIN_S}s`);
    assert.ok(grace >= shutdown + MARGIN_S, `grace ${grace}s >= shutdown ${shutdown}s + ${MARGIN_S}s`);
    const live = container(find(objs, 'Deployment', 'radar'), APP).livenessProbe;
    assert.ok(live.periodSeconds * live.failureThreshold > grace,
              'radar-app liveness (/healthz is 503 while draining) cannot fire within a drain');
  });

  test(`Kubernetes (${variant}): rollouts and readiness hold on a load balancer`, () => {
    const d = find(objs, 'Deployment', 'radar');
    const hpa = find(objs, 'HorizontalPodAutoscaler', 'radar');
    assert.ok(hpa, 'an HPA scales radar');
    assert.equal(d.spec.replicas, undefined, 'no replicas next to the HPA: an apply would reset its count');
    assert.equal(d.spec.minReadySeconds, PRESETS[variant].minReady, 'minReadySeconds: time for the front end to add the pod');
    for (const c of [container(d, SIDECAR), container(d, APP)]) {
      assert.equal(c.readinessProbe.failureThreshold, 2, `${c.name}: one failed probe does not empty the Service`);
    }
    assert.ok(envOf(container(d, SIDECAR), 'STATESIDE_REDIS_READINESS_DEBOUNCE'), 'a Redis blip is debounced');
    const spread = podSpecOf(d).topologySpreadConstraints;
    for (const key of ['topology.kubernetes.io/zone', 'kubernetes.io/hostname']) {
      const c = spread.find((t) => t.topologyKey === key);
      assert.ok(c, `spread over ${key}`);
      assert.deepEqual(c.matchLabelKeys, ['pod-template-hash'], `${key}: each rollout's pods spread on their own`);
      assert.deepEqual(c.labelSelector.matchLabels, d.spec.selector.matchLabels);
    }
  });

  test(`Kubernetes (${variant}): Redis: memory limit >= 1.5 x maxmemory, AOF without RDB, an ACL user, headless`, () => {
    const redis = find(objs, 'StatefulSet', 'redis');
    const spec = podSpecOf(redis);
    const configVolume = spec.volumes.find((v) => v.configMap);
    const cm = find(objs, 'ConfigMap', configVolume.configMap.name);
    assert.ok(cm, `the StatefulSet mounts the generated ConfigMap ${configVolume.configMap.name}`);
    const conf = cm.data['redis.conf'];
    const directive = (name) => {
      const m = new RegExp(`^${name}\\s+(.*)$`, 'm').exec(conf);
      return m && m[1].trim();
    };
    assert.equal(directive('appendonly'), 'yes');
    assert.equal(directive('save'), '""', 'no RDB snapshots beside the AOF');
    assert.equal(directive('maxmemory-policy'), 'noeviction');
    assert.equal(directive('user default'), 'off', 'no password-only access as the default user');
    const mb = /^(\d+)mb$/.exec(directive('maxmemory'));
    assert.ok(mb, 'maxmemory in mb (MiB)');
    const limit = /^(\d+)Mi$/.exec(spec.containers[0].resources.limits.memory);
    assert.ok(Number(limit[1]) >= 1.5 * Number(mb[1]), `limit ${limit[1]}Mi >= 1.5 x maxmemory ${mb[1]}mb`);
    const command = spec.containers[0].command.join(' ');
    const mount = spec.containers[0].volumeMounts.find((m) => m.name === configVolume.name).mountPath;
    assert.ok(command.includes(`${mount}/redis.conf`) && command.includes(`${mount}/stateside.acl`),
              'the start script reads both files of the ConfigMap');
    assert.match(command, /user stateside reset on >%s/);
    assert.match(cm.data['stateside.acl'], /^-@all$/m, 'the ACL starts from no command');
    const example = loadYamlDocs(src('deploy', 'k8s', 'examples', 'secret.example.yaml'))[0];
    assert.match(example.stringData['redis-url'], /^redis:\/\/stateside:[^@]+@redis:6379\/0$/, 'the sidecars log in as stateside');
    const svc = find(objs, 'Service', 'redis');
    assert.equal(svc.spec.clusterIP, 'None', 'headless');
    assert.equal(redis.spec.serviceName, svc.metadata.name);
  });

  test(`Kubernetes (${variant}): probes and the scrape annotation use admin routes on the admin port`, () => {
    const d = find(objs, 'Deployment', 'radar');
    const side = container(d, SIDECAR);
    const admin = envOf(side, 'STATESIDE_ADMIN_ADDR');
    assert.match(admin, /^(0\.0\.0\.0|\[::\]):/, 'the kubelet probes the pod IP: the admin listener must not be loopback');
    assert.equal(portOf(admin), portOf(statesideDefault('STATESIDE_ADMIN_ADDR')), 'the default admin port');
    const portNumber = (c, port) => (typeof port === 'number' ? port : c.ports.find((p) => p.name === port).containerPort);
    const expected = { startupProbe: '/health/live', readinessProbe: '/health/ready', livenessProbe: '/health/live' };
    for (const [probe, p] of Object.entries(expected)) {
      assert.equal(side[probe].httpGet.path, p, `${SIDECAR} ${probe}`);
      assert.ok(getRoutes.includes(p), `${p} is an admin route`);
      assert.equal(portNumber(side, side[probe].httpGet.port), portOf(admin), `${SIDECAR} ${probe} port`);
    }
    const ann = d.spec.template.metadata.annotations;
    assert.equal(ann['prometheus.io/scrape'], 'true');
    assert.equal(Number(ann['prometheus.io/port']), portOf(admin));
    assert.ok(getRoutes.includes(ann['prometheus.io/path']));
    const app = container(d, APP);
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      assert.equal(app[probe].httpGet.path, '/healthz', `${APP} ${probe}`);
      assert.equal(portNumber(app, app[probe].httpGet.port), portOf(envOf(app, 'RADAR_LISTEN')));
    }
    assert.match(read('app', 'routes.cc'), /"\/healthz"/, 'radar-app serves /healthz');
  });

  test(`Kubernetes (${variant}): one socket path in both containers, in a shared emptyDir`, () => {
    const d = find(objs, 'Deployment', 'radar');
    const side = container(d, SIDECAR);
    const app = container(d, APP);
    const socket = envOf(side, 'STATESIDE_SOCKET');
    assert.equal(envOf(app, 'STATESIDE_SOCKET'), socket);
    assert.ok(Buffer.byteLength(socket) <= 107, 'a Unix socket path has at most 107 bytes');
    // An emptyDir is world-writable, which the sidecar refuses as the socket's
    // directory: the socket sits in a directory the sidecar creates inside it.
    const dir = path.posix.dirname(path.posix.dirname(socket));
    const mountOf = (c) => c.volumeMounts.find((m) => m.mountPath === dir);
    assert.ok(mountOf(side) && mountOf(app), `both mount ${dir}`);
    assert.equal(mountOf(side).name, mountOf(app).name);
    assert.ok(podSpecOf(d).volumes.find((v) => v.name === mountOf(app).name).emptyDir, 'an emptyDir');
  });

  test(`Kubernetes (${variant}): INSTANCE_ID from the pod name, secrets from the Secret`, () => {
    const d = find(objs, 'Deployment', 'radar');
    const side = container(d, SIDECAR);
    assert.equal(envOf(side, 'INSTANCE_ID').fieldRef.fieldPath, 'metadata.name');
    for (const name of ['SESSION_ENCRYPTION_KEY', 'SESSION_ENCRYPTION_KEYS', 'SESSION_SECRET']) {
      assert.equal(envOf(side, name), undefined, `${name} is read from a file (${name}_FILE)`);
    }
    const example = loadYamlDocs(src('deploy', 'k8s', 'examples', 'secret.example.yaml'))[0];
    const keys = Object.keys(example.stringData);
    assert.equal(envOf(side, 'REDIS_URL'), undefined, 'REDIS_URL (with its password) is read from a file (REDIS_URL_FILE)');
    for (const name of ['SESSION_ENCRYPTION_KEY_FILE', 'SESSION_SECRET_FILE', 'REDIS_URL_FILE']) {
      const file = envOf(side, name);
      const mount = side.volumeMounts.find((m) => path.posix.dirname(file) === m.mountPath);
      assert.ok(mount && mount.readOnly, `${name}: ${file} is in a read-only mount`);
      const secret = podSpecOf(d).volumes.find((v) => v.name === mount.name).secret;
      assert.equal(secret.secretName, example.metadata.name);
      const item = secret.items.find((i) => i.path === path.posix.basename(file));
      assert.ok(item && keys.includes(item.key), `${name}: a key of the Secret`);
    }
  });
}

test('Kubernetes (presets/ingress-nginx): the Ingress reaches the radar Service, keeps WebSockets an hour, serves the public origin', () => {
  const objs = k8s['presets/ingress-nginx'];
  const ing = find(objs, 'Ingress', 'radar');
  const ann = ing.metadata.annotations;
  const wsTimeout = /location = \/ws \{[^}]*proxy_read_timeout (\d+)h;/.exec(read('deploy', 'nginx', 'radar.conf'));
  assert.ok(wsTimeout, 'deploy/nginx/radar.conf sets the /ws read timeout in hours');
  for (const a of ['proxy-read-timeout', 'proxy-send-timeout']) {
    assert.equal(Number(ann[`nginx.ingress.kubernetes.io/${a}`]), Number(wsTimeout[1]) * 3600, `${a}: as deploy/nginx's /ws`);
  }
  const svc = find(objs, 'Service', 'radar');
  for (const rule of ing.spec.rules) {
    for (const p of rule.http.paths) {
      assert.equal(p.backend.service.name, svc.metadata.name);
      assert.ok(svc.spec.ports.some((sp) => sp.name === p.backend.service.port.name), 'a port of the Service');
    }
  }
  const origins = envOf(container(find(objs, 'Deployment', 'radar'), APP), 'RADAR_PUBLIC_ORIGINS').split(',');
  assert.ok(ing.spec.rules.every((r) => origins.includes(`https://${r.host}`)), 'each host is a RADAR_PUBLIC_ORIGINS origin');
  assert.deepEqual(ing.spec.tls.flatMap((t) => t.hosts).sort(), ing.spec.rules.map((r) => r.host).sort(), 'TLS for every host');
});

test('Kubernetes (presets/cloud-lb): the load balancer\'s addresses reach the app port, not the admin port', () => {
  const base = find(k8s.native, 'NetworkPolicy', 'radar');
  const np = find(k8s['presets/cloud-lb'], 'NetworkPolicy', 'radar');
  const blocks = (rule) => rule.from.filter((p) => p.ipBlock).map((p) => p.ipBlock.cidr);
  assert.deepEqual(np.spec.ingress[0].ports, base.spec.ingress[0].ports);
  assert.deepEqual(np.spec.ingress[0].ports.map((p) => p.port), ['http']);
  assert.ok(blocks(np.spec.ingress[0]).length > 0, 'the app port admits the load balancer\'s ranges');
  assert.deepEqual(np.spec.ingress[1], base.spec.ingress[1], 'the admin port is unchanged');
});

test('Kubernetes: `kubectl apply -f deploy/k8s/base/` and the overlays never reach the example Secret', () => {
  const top = fs.readdirSync(src('deploy', 'k8s', 'base')).filter((f) => /\.ya?ml$/.test(f));
  for (const f of top) {
    for (const doc of loadYamlDocs(src('deploy', 'k8s', 'base', f))) {
      assert.notEqual(doc && doc.kind, 'Secret', `deploy/k8s/base/${f} holds a Secret: apply -f would overwrite the real one`);
    }
  }
  for (const objs of Object.values(k8s)) assert.ok(!objs.some((o) => o.kind === 'Secret'), 'no Secret in the kustomization');
});

test('Kubernetes: native sidecar in native/, classic sidecar in classic/, otherwise identical', () => {
  const base = podSpecOf(find(k8s.native, 'Deployment', 'radar'));
  const classic = podSpecOf(find(k8s.classic, 'Deployment', 'radar'));
  const native = base.initContainers.find((c) => c.name === SIDECAR);
  assert.equal(native.restartPolicy, 'Always');
  assert.ok(!base.containers.some((c) => c.name === SIDECAR));
  assert.equal(classic.initContainers, undefined);
  assert.ok(classic.containers.every((c) => c.restartPolicy === undefined), 'no container-level restartPolicy before 1.29');
  const { restartPolicy, ...rest } = native;
  assert.deepEqual(classic.containers.find((c) => c.name === SIDECAR), rest);
});

test('Kubernetes: the drain starts with pod termination (sidecar preStop), the app forwards SIGTERM only in classic/', () => {
  const PRESTOP = ['statesidectl', 'drain', '--no-follow'];
  for (const [variant, objs] of Object.entries(k8s)) {
    const d = find(objs, 'Deployment', 'radar');
    const side = container(d, SIDECAR);
    assert.deepEqual(side.lifecycle.preStop.exec.command, PRESTOP, `${variant}: the sidecar's preStop hook`);
    // The hook finds the socket the way statesidectl does without --socket.
    assert.ok(envOf(side, 'STATESIDE_SOCKET'), `${variant}: STATESIDE_SOCKET set for the hook`);
    assert.equal(container(d, APP).lifecycle, undefined, `${variant}: no hook on the app: it drains on DRAINING`);
  }
  assert.equal(envOf(container(find(k8s.native, 'Deployment', 'radar'), APP), 'RADAR_FORWARD_SIGTERM'), 'false',
               'native: the preStop hook drains; an app container restart must not');
  assert.equal(envOf(container(find(k8s.classic, 'Deployment', 'radar'), APP), 'RADAR_FORWARD_SIGTERM'), 'true',
               'classic: the app forwards its SIGTERM');
  // The hook's program is in the sidecar image, on PATH, and takes the flag.
  const image = dockerStages.find((st) => st.name === SIDECAR);
  assert.ok(image.insts.some((i) => i.keyword === 'COPY' && /\/statesidectl\b/.test(i.args) && /\/usr\/local\/bin\/?$/.test(i.args)),
            'the stateside image copies statesidectl to /usr/local/bin');
  const help = execFileSync(path.join(BIN_DIR, 'statesidectl'), ['drain', '--help'], { encoding: 'utf8' });
  assert.match(help, /--no-follow/);
});

test('Kubernetes: selectors, references, resources', () => {
  const objs = k8s.native;
  const d = find(objs, 'Deployment', 'radar');
  const labels = d.spec.template.metadata.labels;
  const matches = (sel, l) => Object.entries(sel).every(([k, v]) => l[k] === v);
  assert.ok(matches(d.spec.selector.matchLabels, labels));
  const svc = find(objs, 'Service', 'radar');
  assert.ok(matches(svc.spec.selector, labels));
  assert.ok(container(d, APP).ports.some((p) => p.name === svc.spec.ports[0].targetPort));
  assert.ok(matches(find(objs, 'PodDisruptionBudget', 'radar').spec.selector.matchLabels, labels));
  const hpa = find(objs, 'HorizontalPodAutoscaler', 'radar');
  assert.deepEqual([hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name], ['Deployment', 'radar']);
  assert.ok(hpa.spec.minReplicas >= 2, 'the PodDisruptionBudget leaves at least one pod');
  const redis = find(objs, 'StatefulSet', 'redis');
  const np = find(objs, 'NetworkPolicy', 'redis');
  assert.ok(matches(np.spec.podSelector.matchLabels, redis.spec.template.metadata.labels));
  assert.ok(matches(np.spec.ingress[0].from[0].podSelector.matchLabels, labels));
  // The radar pods: the app port from the ingress only, the admin port from
  // monitoring only, both by named ports of the containers.
  const rnp = find(objs, 'NetworkPolicy', 'radar');
  assert.ok(matches(rnp.spec.podSelector.matchLabels, labels));
  assert.deepEqual(rnp.spec.policyTypes, ['Ingress']);
  const portsOf = (rule) => rule.ports.map((p) => p.port);
  assert.deepEqual(rnp.spec.ingress.map(portsOf), [['http'], ['admin']]);
  assert.ok(container(d, APP).ports.some((p) => p.name === 'http'));
  assert.ok(container(d, SIDECAR).ports.some((p) => p.name === 'admin'));
  for (const rule of rnp.spec.ingress) {
    for (const peer of rule.from) {
      assert.ok(peer.namespaceSelector && peer.podSelector, 'each peer names a namespace and its pods');
    }
  }
  const qty = (q) => {
    const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(String(q));
    return Number(m[1]) * ({ m: 0.001, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2]] || 1);
  };
  for (const o of objs) {
    for (const c of containersOf(o)) {
      const r = c.resources || {};
      assert.ok(r.requests && r.requests.cpu && r.requests.memory && r.limits && r.limits.memory,
                `${c.name}: cpu and memory requests, a memory limit`);
      for (const res of ['cpu', 'memory']) {
        if (r.limits[res]) assert.ok(qty(r.requests[res]) <= qty(r.limits[res]), `${c.name}: ${res} request <= limit`);
      }
    }
  }
});

test('Compose: stop_grace_period covers the drain; healthchecks, dependencies, secret settings', () => {
  const sidecars = services('sidecar-');
  const apps = services('app-');
  assert.equal(apps.length, 3, 'three pods');
  const ids = new Set();
  for (const app of apps) {
    const sideName = composeSidecarOf(app);
    assert.ok(sideName, `${app} shares a socket volume with a sidecar`);
    const side = compose.services[sideName];
    const env = side.environment;
    const prestop = seconds(env.STATESIDE_PRESTOP_DELAY);
    const drain = seconds(env.STATESIDE_DRAIN_TIMEOUT);
    const shutdown = seconds(env.STATESIDE_SHUTDOWN_TIMEOUT);
    assert.ok(shutdown >= prestop + drain);
    for (const s of [sideName, app]) {
      const grace = seconds(compose.services[s].stop_grace_period);
      assert.ok(grace >= prestop + drain + MARGIN_S && grace >= shutdown + MARGIN_S, `${s}: stop_grace_period ${grace}s`);
      assert.equal(compose.services[s].stop_signal, 'SIGTERM');
    }
    // Same socket, inside the shared volume.
    const socket = env.STATESIDE_SOCKET;
    assert.equal(compose.services[app].environment.STATESIDE_SOCKET, socket);
    for (const s of [sideName, app]) {
      assert.equal(compose.services[s].volumes[0].split(':')[1], path.posix.dirname(socket), `${s} mounts the socket dir`);
    }
    // Healthchecks probe routes that exist, on the configured ports.
    const [, , , sidePath, sideAddr] = side.healthcheck.test;
    assert.equal(sidePath, '/health/ready');
    assert.ok(getRoutes.includes(sidePath));
    assert.equal(portOf(sideAddr), portOf(env.STATESIDE_ADMIN_ADDR));
    const [, , , appPath, appAddr] = compose.services[app].healthcheck.test;
    assert.equal(appPath, '/healthz');
    assert.equal(portOf(appAddr), portOf(compose.services[app].environment.RADAR_LISTEN));
    // Start order.
    assert.equal(side.depends_on.redis.condition, 'service_healthy');
    assert.equal(compose.services.nginx.depends_on[app].condition, 'service_healthy');
    // A restart of the sidecar restarts its app.
    assert.deepEqual(compose.services[app].depends_on[sideName], { condition: 'service_healthy', restart: true },
                     `${app} waits for ${sideName} and restarts with it`);
    // Secrets through files (checked for every service below), identity per pod.
    for (const name of ['SESSION_ENCRYPTION_KEY_FILE', 'SESSION_SECRET_FILE', 'REDIS_URL_FILE']) {
      assert.ok(env[name], `${sideName} sets ${name}`);
    }
    ids.add(env.INSTANCE_ID);
  }
  assert.equal(ids.size, sidecars.length, 'one INSTANCE_ID per pod');
  for (const [name, s] of Object.entries(compose.services)) assert.ok(s.healthcheck, `${name} has a healthcheck`);
  const redisCommand = line(compose.services.redis.command);
  assert.match(redisCommand, /--appendonly yes/);
  assert.match(redisCommand, /--save ""/, 'no RDB snapshots beside the AOF');
  assert.match(redisCommand, /requirepass/);
});

// A drained container exits 0: on-failure keeps it down, as a Kubernetes pod
// whose containers have finished; Redis and nginx have no drain.
test('Compose: restart policies, logs rotated and resources limited on every service', () => {
  for (const [name, s] of Object.entries(compose.services)) {
    const expected = /^(app|sidecar)-/.test(name) ? 'on-failure' : 'unless-stopped';
    assert.equal(s.restart, expected, `${name}: restart`);
    assert.equal(s.logging && s.logging.driver, 'json-file', `${name}: json-file logging`);
    assert.match(String(s.logging.options['max-size']), /^\d+[km]$/, `${name}: logs rotate at max-size`);
    assert.ok(Number(s.logging.options['max-file']) >= 2, `${name}: max-file keeps older logs`);
    // mem_limit and cpus: docker-compose 1.29 ignores deploy.resources
    // without --compatibility; every Compose applies these two.
    assert.match(String(s.mem_limit), /^\d+m$/, `${name}: mem_limit`);
    assert.ok(Number(s.cpus) > 0, `${name}: cpus`);
    assert.equal(s.deploy, undefined, `${name}: no deploy: (docker-compose 1.29 ignores it)`);
  }
  const maxmemory = /--maxmemory (\d+)mb/.exec(line(compose.services.redis.command));
  assert.ok(maxmemory, 'Redis has a maxmemory');
  assert.match(line(compose.services.redis.command), /--maxmemory-policy noeviction/);
  assert.ok(parseInt(compose.services.redis.mem_limit, 10) >= 1.5 * Number(maxmemory[1]),
            'Redis: mem_limit >= 1.5 x maxmemory (the AOF rewrite forks)');
});

// Names of settings and variables that hold a secret themselves.
const SECRET_VARIABLE = /^(REDIS_URL|REDIS_PASSWORD|REDISCLI_AUTH|SESSION_ENCRYPTION_KEYS?|SESSION_SECRET|STATESIDE_ADMIN_TOKEN)$|PASSWORD|SECRET$|_TOKEN$/;

test('Compose: secrets are Compose secrets, read from /run/secrets, never environment values', () => {
  const declared = compose.secrets;
  assert.ok(declared && Object.keys(declared).length >= 4, 'top-level secrets');
  for (const [name, secret] of Object.entries(declared)) {
    assert.equal(secret.file, `./secrets/${name}`, `secret ${name}: a file of deploy/compose/secrets/`);
  }
  assert.match(read('.gitignore'), /^\/deploy\/compose\/secrets\/$/m, 'deploy/compose/secrets/ is never committed');
  // make-secrets.sh writes exactly the declared files.
  const generator = /^names=\(([^)]*)\)$/m.exec(read('deploy', 'compose', 'make-secrets.sh'));
  assert.ok(generator, 'make-secrets.sh lists the names it writes');
  assert.deepEqual(generator[1].trim().split(/\s+/).sort(), Object.keys(declared).sort());
  const used = new Set();
  for (const [name, s] of Object.entries(compose.services)) {
    const mounted = (s.secrets || []).map((x) => (typeof x === 'string' ? x : x.source));
    for (const x of s.secrets || []) {
      assert.ok(typeof x === 'string' || x.target === undefined, `${name}: secrets at /run/secrets/NAME (podman-compose ignores target)`);
    }
    for (const m of mounted) {
      assert.ok(declared[m], `${name}: secret ${m} is declared`);
      used.add(m);
    }
    for (const [key, value] of Object.entries(s.environment || {})) {
      assert.doesNotMatch(key, SECRET_VARIABLE, `${name}: ${key} would put a secret in the environment (docker inspect shows it)`);
      assert.doesNotMatch(String(value), /:\/\/[^/\s]*:[^@\s]*@/, `${name}: ${key} holds a URL with a password`);
      if (key.endsWith('_FILE')) {
        const m = /^\/run\/secrets\/([\w-]+)$/.exec(value);
        assert.ok(m, `${name}: ${key}=${value} is a file of /run/secrets`);
        assert.ok(mounted.includes(m[1]), `${name}: ${key} names secret ${m[1]}, mounted into ${name}`);
      }
    }
    // The settings a sidecar must have read from a file.
    if (name.startsWith('sidecar-')) {
      const files = Object.keys(s.environment).filter((k) => k.endsWith('_FILE')).map((k) => s.environment[k].split('/').pop());
      assert.deepEqual([...files].sort(), [...mounted].sort(), `${name}: every mounted secret is read through a _FILE setting`);
    }
  }
  assert.deepEqual([...used].sort(), Object.keys(declared).sort(), 'every declared secret is mounted somewhere');
  // Redis: the password from its secret file into its config and the
  // healthcheck's REDISCLI_AUTH; nothing in its environment.
  const redis = compose.services.redis;
  assert.equal(redis.environment, undefined, 'Redis has no environment');
  const passwordFile = `/run/secrets/${redis.secrets[0]}`;
  assert.match(line(redis.command), new RegExp(`requirepass %s.*\\$\\$\\(cat ${passwordFile}\\)`), 'requirepass from the secret');
  assert.ok(line(redis.healthcheck.test).includes(`REDISCLI_AUTH="$$(cat ${passwordFile})"`), 'the healthcheck logs in with it');
  // The URL's password and Redis' are one value: make-secrets.sh writes both.
  assert.match(read('deploy', 'compose', 'make-secrets.sh'),
               /put redis_password "\$redis_password"\nput redis_url "redis:\/\/:\$redis_password@redis:6379\/0"/);
  // .env holds only non-secret options.
  const example = read('deploy', 'compose', '.env.example');
  const keys = [...example.matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
  assert.ok(keys.length > 3);
  for (const k of keys) assert.doesNotMatch(k, SECRET_VARIABLE, `.env.example: ${k} is a secret`);
});

for (const [layout, override] of Object.entries(composeLayouts)) {
  test(`Compose on Redis ${layout} (redis-${layout}.yml): the sidecars' settings, its secret, every node as Redis`, () => {
    // The sidecars: the topology, replicas that acknowledge each write, and
    // nothing secret in the environment; each _FILE a mounted secret.
    for (const side of services('sidecar-')) {
      const o = override.services[side];
      assert.ok(o, `${side} is set for ${layout}`);
      assert.equal(o.environment.STATESIDE_REDIS_TOPOLOGY, layout);
      assert.equal(o.environment.STATESIDE_REDIS_WAIT_REPLICAS, '1');
      if (layout === 'sentinel') assert.ok(o.environment.REDIS_SENTINEL_MASTER, `${side}: REDIS_SENTINEL_MASTER`);
      const mounted = [...compose.services[side].secrets, ...(o.secrets || [])];
      for (const [key, value] of Object.entries(o.environment)) {
        if (key.endsWith('_FILE')) {
          assert.ok(mounted.includes(value.replace('/run/secrets/', '')), `${side}: ${key}=${value} is mounted`);
        } else {
          assert.doesNotMatch(key, SECRET_VARIABLE, `${side}: ${key} would put a secret in the environment`);
        }
      }
    }
    // Its REDIS_URL is a file that make-secrets.sh writes.
    assert.deepEqual(Object.keys(override.secrets), ['redis_url']);
    assert.equal(override.secrets.redis_url.file, `./secrets/redis_url_${layout}`);
    const urls = /^layout_urls=\(([^)]*)\)$/m.exec(read('deploy', 'compose', 'make-secrets.sh'));
    assert.ok(urls && urls[1].split(/\s+/).includes(`redis_url_${layout}`), `make-secrets.sh writes redis_url_${layout}`);
    // Every Redis service: the password from its secret file (no
    // environment), logs rotated, limits, the start script mounted.
    for (const [name, s] of Object.entries(override.services)) {
      if (name.startsWith('sidecar-')) continue;
      const merged = { ...(compose.services[name] || {}), ...s };
      assert.equal(merged.environment, undefined, `${name}: no environment`);
      assert.deepEqual(merged.secrets, ['redis_password'], `${name}: the password's secret`);
      assert.equal(merged.logging.driver, 'json-file', `${name}: json-file logging`);
      assert.match(String(merged.logging.options['max-size']), /^\d+[km]$/, `${name}: logs rotate`);
      assert.match(String(merged.mem_limit), /^\d+m$/, `${name}: mem_limit`);
      assert.ok(Number(merged.cpus) > 0, `${name}: cpus`);
      assert.equal(typeof merged.command, 'string', `${name}: the command is a string (replaced by an override)`);
      const script = /^sh (\S+)/.exec(merged.command)[1];
      assert.ok((s.volumes || []).some((v) => v.endsWith(`:${script}:ro`)), `${name}: ${script} is mounted read-only`);
      if (name === 'redis-cluster-init') {
        assert.equal(merged.restart, 'on-failure', `${name}: done once it exits 0`);
      } else {
        assert.equal(merged.restart, 'unless-stopped', `${name}: restart`);
        assert.equal(typeof merged.healthcheck.test, 'string', `${name}: a healthcheck, a string`);
        assert.ok(merged.healthcheck.test.includes('REDISCLI_AUTH="$$(cat /run/secrets/redis_password)"'),
                  `${name}: the healthcheck logs in with the password`);
        // A Cluster node is healthy once its replication link is up: the
        // sidecars' WAIT for one replica needs it.
        if (layout === 'cluster') {
          for (const part of ['info replication', 'master_link_status:up', 'state=online']) {
            assert.ok(merged.healthcheck.test.includes(part), `${name}: the healthcheck checks ${part}`);
          }
        }
      }
    }
  });
}

test('Compose: nginx has one upstream server per app, on its port, re-resolved by DNS', () => {
  const conf = read('deploy', 'compose', 'nginx.conf');
  const servers = [...conf.matchAll(/^\s*server\s+([\w-]+):(\d+)\b([^;]*);/gm)];
  assert.deepEqual(servers.map((m) => m[1]).sort(), services('app-').sort());
  for (const [, app, port, params] of servers) {
    assert.equal(Number(port), portOf(compose.services[app].environment.RADAR_LISTEN));
    assert.match(params, /\bresolve\b/, `${app}: follows a recreated container's new address`);
    // The same failure accounting as deploy/local's generated upstream.
    const local = /server 127\.0\.0\.1:.*? (max_fails=\d+ fail_timeout=\w+);/.exec(read('deploy', 'local', 'up.sh'));
    assert.ok(local && params.includes(local[1]), `${app}: ${local && local[1]} as deploy/local`);
    assert.ok(Number(/max_fails=(\d+)/.exec(params)[1]) > 1, `${app}: one slow request does not take a pod out`);
  }
  assert.match(conf, /^\s*resolver 127\.0\.0\.11\b/m, "Docker's DNS");
  assert.match(read('deploy', 'nginx', 'radar-upstream.conf'), /^\s*zone\s/m, '`resolve` needs a shared zone');
  const mount = compose.services.nginx.volumes.find((v) => v.startsWith('../nginx:')).split(':')[1];
  for (const [, inc] of conf.matchAll(/include\s+(\S+);/g)) {
    assert.ok(inc.startsWith(mount + '/'), `${inc} is in the deploy/nginx mount`);
    read('deploy', 'nginx', inc.slice(mount.length + 1));  // exists
  }
});

test('Dockerfile: socket directory, admin and app ports, healthchecks agree with the programs', () => {
  // A stage's instructions with those of the stages it builds on, first ones first.
  const chainInsts = (stage) => {
    const chain = [];
    for (let s = dockerStages.find((st) => st.name === stage); s; s = dockerStages.find((st) => st.name === s.base)) chain.unshift(s);
    return chain.flatMap((s) => s.insts);
  };
  const env = (stage, name) => {
    const envs = chainInsts(stage).filter((i) => i.keyword === 'ENV' && i.args.startsWith(name + '='));
    return envs.length ? envs.pop().args.slice(name.length + 1) : undefined;
  };
  const inst = (stage, kw) => chainInsts(stage).filter((i) => i.keyword === kw);
  const socket = env('stateside', 'STATESIDE_SOCKET');
  assert.equal(env('radar-app', 'STATESIDE_SOCKET'), socket);
  assert.match(read('deploy', 'docker', 'Dockerfile'), new RegExp(`install -d .*${path.posix.dirname(socket)}`));
  const admin = env('stateside', 'STATESIDE_ADMIN_ADDR');
  assert.equal(Number(inst('stateside', 'EXPOSE')[0].args), portOf(admin));
  assert.equal(Number(inst('radar-app', 'EXPOSE')[0].args), portOf(env('radar-app', 'RADAR_LISTEN')));
  const imageCheck = /"(\/health[^"]*)"/.exec(inst('stateside', 'HEALTHCHECK')[0].args)[1];
  assert.equal(imageCheck, '/health/live', 'the image is healthy while it runs: not ready (Redis, a drain) is not broken');
  assert.ok(getRoutes.includes(imageCheck));
  assert.match(inst('radar-app', 'HEALTHCHECK')[0].args, /\/healthz "\$RADAR_LISTEN"/);
});

test('Dockerfile: the build runs scripts/lib.sh, like scripts/run and scripts/test', () => {
  const lib = read('scripts', 'lib.sh');
  for (const name of ['BUILD_PACKAGES', 'RUNTIME_PACKAGES']) assert.match(lib, new RegExp(`^${name}=\\(`, 'm'), `lib.sh defines ${name}`);
  for (const fn of ['install_packages', 'configure_and_build', 'build_main']) assert.match(lib, new RegExp(`^${fn}\\(\\)`, 'm'));
  assert.match(lib, /apt-get install -y .*--no-install-recommends/, 'install_packages: -y, --no-install-recommends');
  const runs = (stage) => dockerStages.find((s) => s.name === stage).insts.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
  assert.match(runs('build'), /source scripts\/lib\.sh && install_packages "\$\{BUILD_PACKAGES\[@\]\}"/);
  assert.match(runs('build'), /source scripts\/lib\.sh && configure_and_build /);
  assert.match(runs('runtime'), /source \/tmp\/lib\.sh && install_packages "\$\{RUNTIME_PACKAGES\[@\]\}"/);
  for (const script of ['test', 'run']) {
    const text = read('scripts', script);
    assert.match(text, /source "\$\(dirname "\$0"\)\/lib\.sh"/);
    assert.match(text, /install_packages "\$\{BUILD_PACKAGES\[@\]\}"/);
    assert.match(text, /^\s*build_main\b/m, `scripts/${script} builds through lib.sh's build_main`);
  }
  assert.match(lib, /^build_main\(\) \{[\s\S]*?configure_and_build "\$MAIN_BUILD_DIR"/m, 'build_main calls configure_and_build');
  // The targets built are the binaries copied out, and they exist in CMake.
  const built = /-- (.*)$/m.exec(runs('build'))[1].trim().split(/\s+/);
  const copied = dockerStages.flatMap((s) => s.insts)
      .filter((i) => i.keyword === 'COPY' && i.args.includes('--from=build'))
      .flatMap((i) => [...i.args.matchAll(/\/build\/bin\/([\w-]+)/g)].map((m) => m[1]));
  assert.deepEqual([...new Set(copied)].sort(), [...built].sort());
  const cmake = ['sidecar', 'client', 'app']
      .flatMap((d) => fs.readdirSync(src(d), { recursive: true })
          .filter((f) => f.endsWith('CMakeLists.txt')).map((f) => read(d, f)))
      .join('\n');
  for (const t of built) assert.match(cmake, new RegExp(`add_executable\\(${t}\\s`), `CMake target ${t}`);
});

test('.dockerignore lets in exactly what the build reads', () => {
  const lines = read('.dockerignore').split('\n').filter((l) => l && !l.startsWith('#'));
  assert.equal(lines[0], '*', 'an allowlist: everything else stays out');
  const allowed = lines.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''));
  const top = read('CMakeLists.txt');
  const needed = ['CMakeLists.txt', 'cmake',
    ...[...top.matchAll(/add_subdirectory\((\w+)\)/g)].map((m) => m[1]).filter((d) => d !== 'tests')];
  for (const inst of dockerStages.flatMap((s) => s.insts)) {
    if (inst.keyword !== 'COPY' || inst.args.includes('--from=')) continue;
    const from = inst.args.split(/\s+/).slice(0, -1);
    if (from[0] !== '.') needed.push(...from);
  }
  assert.deepEqual([...new Set(needed)].sort(), [...allowed].sort());
});

// Every Markdown document a project file names exists (as a path from the
// repository root or from the naming file's directory; a bare name, as some
// document's name): no pointer at a document that is not in the repository.
test('every named .md document exists', () => {
  const skip = new Set(['.git', 'node_modules']);
  const files = [];
  (function walk(dir) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (skip.has(e.name) || e.name.startsWith('build')) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(md|h|cc|cjs|js|ts|sh|txt|ya?ml|proto|cmake|conf)$|^(Dockerfile|run|test|bench[\w-]*|fuzz|lib\.sh)$/.test(e.name)) files.push(p);
    }
  })(src());
  const mdNames = new Set(files.filter((f) => f.endsWith('.md')).map((f) => path.basename(f)));
  const missing = [];
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?<![\w/.-])((?:[\w.-]+\/)*[\w-]+\.md)\b/g)) {
      const name = m[1];
      if ([src(name), path.join(path.dirname(file), name)].some((p) => fs.existsSync(p))) continue;
      if (!name.includes('/') && mdNames.has(name)) continue;
      missing.push(`${path.relative(src(), file)}: ${name}`);
    }
  }
  assert.deepEqual(missing, [], 'documents named but not in the repository');
});

// The Redis ACL user of deploy/k8s allows every command the sidecar sends,
// directly (RedisCommand({"CMD", ...})) or from its Lua scripts
// (redis.call('CMD', ...)): a command added to sidecar/redis without the ACL
// would fail with NOPERM only where the shipped ACL is used.
test('Redis: the ACL user allows every command the sidecar sends', () => {
  const acl = read('deploy', 'k8s', 'base', 'redis', 'stateside.acl');
  const allowed = new Set([...acl.matchAll(/\+([a-z|]+)/g)].map((m) => m[1].split('|')[0]));
  const used = new Set();
  const dir = src('sidecar', 'redis');
  for (const file of fs.readdirSync(dir).filter((f) => /\.(cc|h)$/.test(f))) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    for (const m of text.matchAll(/redis\.p?call\('([A-Za-z]+)'/g)) used.add(m[1].toLowerCase());
    for (const m of text.matchAll(/RedisCommand\(\{"([A-Z]+)"/g)) used.add(m[1].toLowerCase());
  }
  assert.ok(used.size > 20, `found only ${used.size} commands: the patterns no longer match the code`);
  const missing = [...used].filter((c) => !allowed.has(c)).sort();
  assert.deepEqual(missing, [], `commands the ACL of deploy/k8s/base/redis/stateside.acl does not allow: ${missing.join(' ')}`);
});

// nginx drops an idle upstream connection before a draining radar-app closes
// it (RADAR_DRAIN_IDLE_GRACE_MS): else a POST written onto a connection the
// app is closing fails, and nginx may not retry it.
test('nginx: the upstream keepalive_timeout is below radar-app\'s drain idle grace', () => {
  const upstream = read('deploy', 'nginx', 'radar-upstream.conf');
  const m = upstream.match(/^keepalive_timeout\s+(\d+)(ms|s);/m);
  assert.ok(m, 'radar-upstream.conf sets keepalive_timeout');
  const nginxMs = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  const help = execFileSync(path.join(BIN_DIR, 'radar-app'), ['--help'], { encoding: 'utf8' });
  const grace = help.match(/--drain-idle-grace-ms[\s\S]*?\[default: (\d+)\]/);
  assert.ok(grace, 'radar-app --help states the default of --drain-idle-grace-ms');
  assert.ok(nginxMs < Number(grace[1]),
            `nginx keepalive_timeout ${nginxMs} ms must be below radar-app's drain idle grace ${grace[1]} ms`);
  // Nowhere is the grace set lower than nginx's timeout.
  for (const [name, dir] of Object.entries(k8sOverlays())) {
    for (const doc of renderKustomization(dir)) {
      for (const c of containersOf(doc)) {
        const v = envOf(c, 'RADAR_DRAIN_IDLE_GRACE_MS');
        if (v !== undefined) assert.ok(Number(v) > nginxMs, `${name}: RADAR_DRAIN_IDLE_GRACE_MS ${v}`);
      }
    }
  }
});

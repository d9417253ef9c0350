#!/bin/bash
# The Compose deployment of deploy/compose/ on a Redis Cluster and on Redis
# Sentinel (the overrides redis-cluster.yml and redis-sentinel.yml, picked by
# STATESIDE_COMPOSE_REDIS), for real with Podman and podman-compose, each in
# turn: a copy of deploy/ with fresh secrets, up on a free loopback port;
# through nginx a login and a cart item, the cart read back by another pod
# (X-Instance-Id); then, in Redis, the keys where they belong: on each of the
# Cluster's three masters (DBSIZE > 0), or on the sentinels' master (and its
# replica has them too), and a Sentinel failover the pods follow with the
# session whole. Everything is torn down after each layout.
#
# It reuses the images that container_test.sh builds (container_compose):
# without them (or without root) it skips. Podman is set up as there
# (tests/container/lib.sh: runc, the host's hard limits).
#
#   compose_topologies_test.sh SOURCE_DIR [LAYOUT...]
# LAYOUT: cluster, sentinel (both by default) or standalone (docker-compose.yml
# alone, which container_test.sh runs in full).
# Exit 0 pass, 1 fail, 77 skip.
set -euo pipefail
src="$(cd "${1:?usage: compose_topologies_test.sh SOURCE_DIR [LAYOUT...]}" && pwd)"
# shellcheck source=tests/container/lib.sh
source "$src/tests/container/lib.sh"
shift
layouts=("$@")
((${#layouts[@]} > 0)) || layouts=(cluster sentinel)

step() { echo "== [${SECONDS}s] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

if [[ "$(id -u)" -ne 0 ]]; then
  echo "SKIP: rootful Podman needs root; this user is $(id -un)"
  exit 77
fi
for c in podman podman-compose runc curl python3; do
  command -v "$c" >/dev/null || { echo "SKIP: $c is not installed"; exit 77; }
done
side_image="localhost/stateside:container-test"
app_image="localhost/radar-app:container-test"
for image in "$side_image" "$app_image" redis:7.2 nginx:1.28; do
  podman image exists "$image" ||
    { echo "SKIP: no image $image: container_compose (container_test.sh) builds it"; exit 77; }
done

tmp="$(mktemp -d /tmp/stateside-topologies.XXXXXX)"
project=""
services=()
# teardown: the current layout's project removed by its Compose labels
# (remove_project), not by `compose.sh down -v`: that drains each pod in turn
# and asks Podman once a container and a volume, half a minute here, and
# nothing of the project is kept.
teardown() {
  [[ -n "$project" ]] || return 0
  remove_project "$project"
  project=""
}
cleanup() {
  local rc=$?
  if ((rc != 0)) && [[ -n "$project" ]]; then
    echo "--- container states"
    podman ps -a --filter "label=com.docker.compose.project=$project" \
      --format '{{.Names}} {{.Status}}' || true
    for s in "${services[@]}"; do
      echo "--- logs of $s (last 15 lines)"
      podman logs --tail 15 "${project}_${s}_1" 2>&1 || true
    done
  fi
  teardown
  rm -rf "$tmp"
  echo "== [${SECONDS}s] exit $rc"
}
trap cleanup EXIT
# A signal (ctest's timeout, ^C) ends the run through the EXIT trap too.
trap 'exit 143' TERM INT HUP

podman_setup
export STATESIDE_COMPOSE=podman-compose STATESIDE_ENGINE=podman
export STATESIDE_IMAGE="$side_image" RADAR_APP_IMAGE="$app_image"
export REDIS_IMAGE=redis:7.2 NGINX_IMAGE=nginx:1.28 RADAR_BIND=127.0.0.1

# rcli SERVICE ARGS...: redis-cli in SERVICE's container, authenticated.
rcli() {
  local service="$1"
  shift
  podman exec "${project}_${service}_1" sh -c \
    'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" exec redis-cli "$@"' rcli "$@" | tr -d '\r'
}

for layout in "${layouts[@]}"; do
  case "$layout" in
    cluster) redis_services=(redis redis-2 redis-3 redis-4 redis-5 redis-6) ;;
    sentinel) redis_services=(redis redis-replica sentinel-1 sentinel-2 sentinel-3) ;;
    standalone) redis_services=(redis) ;;
    *) fail "unknown layout $layout (cluster, sentinel or standalone)" ;;
  esac
  services=("${redis_services[@]}" sidecar-1 app-1 sidecar-2 app-2 sidecar-3 app-3 nginx)
  start=$SECONDS
  compose_copy "$src"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  project="statesidetopo$$$layout"
  export COMPOSE_PROJECT_NAME="$project" STATESIDE_COMPOSE_REDIS="$layout" RADAR_PORT="$port"
  url="http://127.0.0.1:$port"

  step "$layout: compose up (project $project, nginx on 127.0.0.1:$port)"
  "$tmp/deploy/compose/compose.sh" up -d --no-build >"$tmp/up.log" 2>&1 ||
    { tail -n 40 "$tmp/up.log"; fail "$layout: compose up failed"; }
  wait_healthy "$project" 150 "${services[@]}"
  step "$layout: all ${#services[@]} containers are healthy"

  : >"$tmp/cookies"
  call POST /login '{"user":"topology-test"}'
  [[ "$code" == 200 ]] || fail "$layout: POST /login: $code $body"
  login_instance="$instance"
  call POST /cart '{"item":"apple"}'
  [[ "$code" == 200 ]] || fail "$layout: POST /cart: $code $body"
  other=""
  for _ in $(seq 60); do
    call GET /me
    [[ "$code" == 200 ]] || fail "$layout: GET /me: $code $body"
    [[ " $(cart_of "$body") " == *" apple "* ]] || fail "$layout: GET /me on $instance lost the cart: $body"
    [[ "$instance" != "$login_instance" ]] && { other="$instance"; break; }
  done
  [[ -n "$other" ]] || fail "$layout: every GET /me was served by $login_instance: no cross-pod read"
  step "$layout: login and cart [apple] on $login_instance, read back by $other"

  case "$layout" in
    cluster)
      state="$(rcli redis cluster info | sed -n 's/^cluster_state://p')"
      [[ "$state" == ok ]] || fail "cluster: cluster_state $state"
      masters=()
      for s in "${redis_services[@]}"; do
        [[ "$(rcli "$s" role | head -n 1)" != master ]] || masters+=("$s")
      done
      ((${#masters[@]} == 3)) || fail "cluster: ${#masters[@]} masters (${masters[*]}), not 3"
      # A few keys may all hash to one or two masters' slots: more sessions
      # (a login and a cart item each) until every master holds keys.
      sessions=1
      while :; do
        sizes="" empty=""
        for s in "${masters[@]}"; do
          size="$(rcli "$s" dbsize)"
          [[ "$size" =~ ^[0-9]+$ ]] || fail "cluster: DBSIZE of $s: '$size'"
          sizes+="$s $size, "
          ((size > 0)) || empty+=" $s"
        done
        [[ -n "$empty" ]] || break
        ((sessions < 30)) || fail "cluster: after $sessions sessions, no key on$empty (${sizes%, })"
        sessions=$((sessions + 1))
        : >"$tmp/cookies"
        call POST /login "{\"user\":\"topology-$sessions\"}"
        [[ "$code" == 200 ]] || fail "cluster: POST /login: $code $body"
        call POST /cart '{"item":"pear"}'
        [[ "$code" == 200 ]] || fail "cluster: POST /cart: $code $body"
      done
      step "cluster: cluster_state ok; after $sessions session(s), keys on each of the 3 masters (${sizes%, })" ;;
    sentinel)
      master="$(rcli sentinel-1 -p 26379 sentinel get-master-addr-by-name stateside | head -n 1)"
      [[ "$master" == redis ]] || fail "sentinel: the sentinels' master is '$master', not redis"
      [[ "$(rcli redis role | head -n 1)" == master ]] || fail "sentinel: redis is not a master"
      size="$(rcli redis dbsize)"
      [[ "$size" =~ ^[0-9]+$ && "$size" -gt 0 ]] || fail "sentinel: the master holds no key (DBSIZE '$size')"
      replica_size="$(rcli redis-replica dbsize)"
      [[ "$replica_size" =~ ^[0-9]+$ && "$replica_size" -gt 0 ]] ||
        fail "sentinel: the replica holds no key (DBSIZE '$replica_size')"
      step "sentinel: the sentinels name 'redis' the master; $size keys on it, $replica_size on its replica"
      # A failover: the sentinels name redis-replica, which the sidecars
      # reach by that name. Writes answer 503 until the old master is its
      # replica (STATESIDE_REDIS_WAIT_REPLICAS=1), then the session is whole.
      [[ "$(rcli sentinel-1 -p 26379 sentinel failover stateside)" == OK ]] || fail "sentinel: SENTINEL FAILOVER refused"
      deadline=$((SECONDS + 30))
      until [[ "$(rcli sentinel-2 -p 26379 sentinel get-master-addr-by-name stateside | head -n 1)" == redis-replica ]]; do
        ((SECONDS < deadline)) || fail "sentinel: no failover to redis-replica within 30s"
        sleep 0.5
      done
      failover=$SECONDS refused=0
      while :; do
        call POST /cart '{"item":"after-failover"}'
        [[ "$code" == 200 ]] && break
        [[ "$code" == 503 ]] || fail "sentinel: POST /cart after the failover: $code $body"
        refused=$((refused + 1))
        ((SECONDS < failover + 60)) || fail "sentinel: writes still answer 503 60s after the failover"
        sleep 0.5
      done
      call GET /me
      cart=" $(cart_of "$body") "
      [[ "$code" == 200 && "$cart" == *" apple "* && "$cart" == *" after-failover "* ]] ||
        fail "sentinel: GET /me after the failover: $code $body"
      [[ "$(rcli redis role | head -n 1)" == slave ]] || fail "sentinel: the old master is not a replica"
      step "sentinel: failover to redis-replica; writes back after $((SECONDS - failover))s ($refused answered 503), the cart whole" ;;
    standalone)
      size="$(rcli redis dbsize)"
      [[ "$size" =~ ^[0-9]+$ && "$size" -gt 0 ]] || fail "standalone: redis holds no key (DBSIZE '$size')"
      step "standalone: $size keys in redis" ;;
  esac
  name="$project"
  teardown
  left="$(podman ps -a -q --filter "label=com.docker.compose.project=$name")$(
          podman volume ls -q --filter "label=com.docker.compose.project=$name")"
  [[ -z "$left" ]] || fail "$layout: containers or volumes of $name are left: $left"
  ! podman network exists "${name}_default" || fail "$layout: the network ${name}_default is left"
  step "$layout: done in $((SECONDS - start))s, torn down"
done
echo "ok"

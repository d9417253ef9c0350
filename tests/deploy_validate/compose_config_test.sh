#!/bin/bash
# `config -q` on deploy/compose/docker-compose.yml through
# deploy/compose/compose.sh: Compose's own schema and interpolation check,
# offline (no Docker engine is needed), with Debian's docker-compose 1.29 (or
# `docker compose` v2 where it is installed). With 1.x, also proves that
# compose.sh's filtered copy is needed (1.29 rejects the file itself) and
# removes nothing but the `depends_on` `restart: true` lines. Uses an empty
# env file, never deploy/compose/.env, and runs from another directory: the
# secret files and build contexts resolve inside deploy/compose all the same.
# The same for the Redis Cluster and Sentinel overrides on top of the file.
#   compose_config_test.sh SOURCE_DIR
set -euo pipefail
src="$(cd "${1:?usage: compose_config_test.sh SOURCE_DIR}" && pwd)"
dir="$src/deploy/compose"
file="$dir/docker-compose.yml"

if command -v docker-compose >/dev/null; then
  export STATESIDE_COMPOSE=docker-compose
elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  export STATESIDE_COMPOSE="docker compose"
else
  echo "FAIL: docker-compose is not installed (Debian: docker-compose, scripts/lib.sh TEST_PACKAGES)"
  exit 1
fi
read -r -a compose <<<"$STATESIDE_COMPOSE"
version="$("${compose[@]}" version --short)"
echo "compose: $STATESIDE_COMPOSE $version"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/empty.env"
cd "$tmp"
c() { "$dir/compose.sh" --env-file "$tmp/empty.env" "$@"; }

echo "--- config -q"
c config -q

echo "--- the three pods and their parts"
services="$(c config --services | sort | tr '\n' ' ')"
echo "$services"
[ "$services" = "app-1 app-2 app-3 nginx redis sidecar-1 sidecar-2 sidecar-3 " ] ||
  { echo "FAIL: unexpected services"; exit 1; }

echo "--- secret files and build contexts resolve inside the repository"
c config >"$tmp/config.yml"
for s in redis_password redis_url session_encryption_key session_secret; do
  grep -qx "    file: $dir/secrets/$s" "$tmp/config.yml" ||
    { echo "FAIL: secret $s is not $dir/secrets/$s"; grep -n 'file:' "$tmp/config.yml"; exit 1; }
done
grep -q "context: $src\$" "$tmp/config.yml" || { echo "FAIL: the build context is not $src"; exit 1; }
if grep -nE 'SESSION_SECRET:|SESSION_ENCRYPTION_KEY:|REDIS_URL:|REDIS_PASSWORD|REDISCLI_AUTH:' "$tmp/config.yml"; then
  echo "FAIL: a secret in the environment"
  exit 1
fi

# The Redis layouts: docker-compose.yml with redis-cluster.yml or
# redis-sentinel.yml on top (STATESIDE_COMPOSE_REDIS), each with its nodes,
# the sidecars' topology settings and its redis_url secret file.
for layout in cluster sentinel; do
  echo "--- STATESIDE_COMPOSE_REDIS=$layout"
  STATESIDE_COMPOSE_REDIS="$layout" c config -q 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
  case "$layout" in
    cluster) want="redis redis-2 redis-3 redis-4 redis-5 redis-6 redis-cluster-init" ;;
    sentinel) want="redis redis-replica sentinel-1 sentinel-2 sentinel-3" ;;
  esac
  services="$(STATESIDE_COMPOSE_REDIS="$layout" c config --services 2>/dev/null | sort | tr '\n' ' ')"
  echo "$services"
  expected="$(tr ' ' '\n' <<<"app-1 app-2 app-3 nginx sidecar-1 sidecar-2 sidecar-3 $want" | sort | tr '\n' ' ')"
  [ "$services" = "$expected" ] || { echo "FAIL: $layout: services are not $expected"; exit 1; }
  STATESIDE_COMPOSE_REDIS="$layout" c config 2>/dev/null >"$tmp/config.yml"
  grep -qx "    file: $dir/secrets/redis_url_$layout" "$tmp/config.yml" ||
    { echo "FAIL: $layout: redis_url is not $dir/secrets/redis_url_$layout"; exit 1; }
  [ "$(grep -c "STATESIDE_REDIS_TOPOLOGY: $layout" "$tmp/config.yml")" = 3 ] ||
    { echo "FAIL: $layout: not every sidecar has STATESIDE_REDIS_TOPOLOGY=$layout"; exit 1; }
  if grep -nE 'SESSION_SECRET:|SESSION_ENCRYPTION_KEY:|REDIS_URL:|REDIS_PASSWORD|REDISCLI_AUTH:' "$tmp/config.yml"; then
    echo "FAIL: $layout: a secret in the environment"
    exit 1
  fi
done
if STATESIDE_COMPOSE_REDIS=bogus c config -q 2>"$tmp/err"; then
  echo "FAIL: STATESIDE_COMPOSE_REDIS=bogus accepted"
  exit 1
fi
grep -q 'must be standalone, cluster or sentinel' "$tmp/err" || { cat "$tmp/err"; echo "FAIL: no clear error"; exit 1; }

if [[ "$version" == 1.* ]]; then
  echo "--- 1.x: the file itself is rejected (depends_on restart), the filtered copy differs only there"
  if "${compose[@]}" --env-file "$tmp/empty.env" -f "$file" config -q 2>"$tmp/err"; then
    echo "FAIL: $version accepts depends_on: restart: compose.sh's filter is no longer needed"
    exit 1
  fi
  cat "$tmp/err"
  grep -q "unsupported option: 'restart'" "$tmp/err" || { echo "FAIL: rejected for another reason"; exit 1; }
  diff "$file" "$dir/.docker-compose.v1.yml" >"$tmp/diff" || true
  removed="$(grep '^<' "$tmp/diff" || true)"
  echo "$removed"
  if [ "$(grep -c '^<[[:space:]]*restart: true$' <<<"$removed")" != 3 ] || [ "$(wc -l <<<"$removed")" != 3 ] ||
     grep -q '^>' "$tmp/diff"; then
    echo "FAIL: the filtered copy removes more or less than the three depends_on restart lines"
    exit 1
  fi
fi
echo "ok"

#!/bin/bash
# `docker-compose config -q` on deploy/compose/docker-compose.yml: Compose's own
# schema and interpolation check, offline (no Docker engine is needed). Uses
# a throwaway env file with dummy values, never deploy/compose/.env. Also
# proves the check can fail: without the secrets, Compose must refuse
# (every secret is `${VAR:?...}`).
#   compose_config_test.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: compose_config_test.sh SOURCE_DIR}"
file="$src/deploy/compose/docker-compose.yml"

if command -v docker-compose >/dev/null; then
  compose=(docker-compose)
elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  echo "FAIL: docker-compose is not installed (Debian: docker-compose, scripts/lib.sh TEST_PACKAGES)"
  exit 1
fi
echo "compose: $("${compose[@]}" version --short)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/dummy.env" <<'ENV'
REDIS_PASSWORD=0123456789abcdef0123456789abcdef0123456789abcdef
SESSION_ENCRYPTION_KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
SESSION_SECRET=test-only-secret-of-at-least-32-bytes-0000
ENV
: >"$tmp/empty.env"

echo "--- config -q with the secrets set"
"${compose[@]}" --env-file "$tmp/dummy.env" -f "$file" config -q

echo "--- the three pods and their parts"
services="$("${compose[@]}" --env-file "$tmp/dummy.env" -f "$file" config --services | sort | tr '\n' ' ')"
echo "$services"
[ "$services" = "app-1 app-2 app-3 nginx redis sidecar-1 sidecar-2 sidecar-3 " ] ||
  { echo "FAIL: unexpected services"; exit 1; }

echo "--- config -q without the secrets must fail"
if "${compose[@]}" --env-file "$tmp/empty.env" -f "$file" config -q 2>"$tmp/err"; then
  echo "FAIL: Compose accepted the file with no secrets set"
  exit 1
fi
cat "$tmp/err"
grep -q 'deploy/compose/.env' "$tmp/err" || { echo "FAIL: the refusal does not point at deploy/compose/.env"; exit 1; }
echo "ok"

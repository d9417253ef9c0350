#!/bin/bash
# deploy/docker/healthcheck.sh (the images' HEALTHCHECK) against a real
# sidecar: 200 on /health/ready and /health/live; not healthy for an unknown
# path, a closed port, and /health/ready once a drain has started (while
# /health/live stays healthy). The sidecar runs on its memory store with its
# admin listener on a free port (port 0, read from its log) and its socket in
# a temp dir.
#   healthcheck_test.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src="${1:?usage: healthcheck_test.sh SOURCE_DIR BIN_DIR}"
bin="${2:?usage: healthcheck_test.sh SOURCE_DIR BIN_DIR}"
check="$src/deploy/docker/healthcheck.sh"

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds (a deadline, no fixed sleep).
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}
expect() {  # expect STATUS ARGS...: the check exits with STATUS
  local want="$1" got=0
  shift
  bash "$check" "$@" || got=$?
  [ "$got" -eq "$want" ] || { echo "FAIL: healthcheck $* exited $got, expected $want"; exit 1; }
}

# A long pre-stop delay keeps the drained sidecar alive (not ready, still
# serving) for the checks below.
STATESIDE_PRESTOP_DELAY=30s STATESIDE_SHUTDOWN_TIMEOUT=60s \
  "$bin/stateside" --socket "$tmp/stateside.sock" --admin-addr 127.0.0.1:0 \
  --instance-id healthcheck-test >"$tmp/sidecar.log" 2>&1 &
pid=$!
wait_for 30 grep -q 'admin listening on' "$tmp/sidecar.log" ||
  { cat "$tmp/sidecar.log"; echo "FAIL: the sidecar did not start"; exit 1; }
port="$(sed -n 's/.*admin listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/sidecar.log" | head -n1)"
echo "sidecar admin on port $port"

wait_for 30 bash "$check" /health/ready "127.0.0.1:$port" >/dev/null ||
  { cat "$tmp/sidecar.log"; echo "FAIL: never ready"; exit 1; }
expect 0 /health/ready "127.0.0.1:$port"
expect 0 /health/live "0.0.0.0:$port"                # a wildcard address is probed on loopback
STATESIDE_ADMIN_ADDR="0.0.0.0:$port" expect 0 /health/ready   # the image's default: $STATESIDE_ADMIN_ADDR
expect 1 /no-such-route "127.0.0.1:$port"            # 404
expect 2 health "127.0.0.1:$port"                    # not a path: usage error

# Start the drain: ready turns 503 at once, live stays 200.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' >&3
IFS= read -r answer <&3 || true
exec 3<&-
echo "POST /drain: ${answer%$'\r'}"
case "$answer" in *" 202 "*) ;; *) echo "FAIL: POST /drain was not accepted"; exit 1 ;; esac
expect 1 /health/ready "127.0.0.1:$port"
expect 0 /health/live "127.0.0.1:$port"

# Nothing listening.
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
pid=""
expect 1 /health/live "127.0.0.1:$port"
echo ok

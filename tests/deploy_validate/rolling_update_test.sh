#!/bin/bash
# deploy/compose/rolling-update.sh against a fake Compose and a fake engine
# (no containers here): per pod it stops the app only, waits until the app
# and the sidecar (drained by the app's forwarded SIGTERM) have exited 0,
# starts both, waits until both are healthy, then goes on to the next pod;
# a sidecar that does not exit, exits non-zero or a pod that never gets
# healthy stops the update with an error before the next pod. After each pod
# nginx is reloaded (SIGHUP), if it runs.
#   rolling_update_test.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: rolling_update_test.sh SOURCE_DIR}"
script="$src/deploy/compose/rolling-update.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# The fake Compose: records its commands in $FAKE/log and keeps each
# container's "STATUS EXIT_CODE HEALTH" in $FAKE/state/SERVICE.
#   FAKE_SIDECAR_EXIT  what a sidecar does when its app stops: "0" (drains,
#                      the default), "3" (exits 3) or "stay" (keeps running)
#   FAKE_HEALTH_AFTER  inspections before a started container is healthy
#                      (default 2; "never")
cat >"$tmp/fake-compose" <<'FAKE'
#!/bin/bash
set -euo pipefail
[[ "$1" == -f ]] || { echo "fake-compose: expected -f FILE first" >&2; exit 2; }
shift 2
echo "$*" >>"$FAKE/log"
case "$1" in
  config) printf '%s\n' redis sidecar-1 app-1 sidecar-2 app-2 sidecar-3 app-3 nginx ;;
  stop)
    for s in "${@:2}"; do
      echo "exited 0 unhealthy" >"$FAKE/state/$s"
      side="${s/app-/sidecar-}"
      case "${FAKE_SIDECAR_EXIT:-0}" in
        stay) ;;
        *) echo "exited ${FAKE_SIDECAR_EXIT:-0} unhealthy" >"$FAKE/state/$side" ;;
      esac
    done ;;
  up)
    for s in "${@:2}"; do
      [[ "$s" == -* ]] && continue
      echo "running 0 starting" >"$FAKE/state/$s"
      echo 0 >"$FAKE/inspections-$s"
    done ;;
  *) echo "fake-compose: unexpected $*" >&2; exit 2 ;;
esac
FAKE
# The fake engine: `ps -a -q --filter label=... --filter label=...service=S`
# prints S as the container id; `inspect -f FORMAT S` prints its state;
# `kill ...` (nginx's reload) is logged with Compose's commands.
cat >"$tmp/fake-engine" <<'FAKE'
#!/bin/bash
set -euo pipefail
case "$1" in
  ps)
    args="$*"
    [[ "$args" == *"label=com.docker.compose.project=compose "* ]] || exit 0
    echo "${args##*label=com.docker.compose.service=}" ;;
  inspect)
    id="${*: -1}"
    read -r status code health <"$FAKE/state/$id"
    if [[ "$health" == starting ]]; then
      n=$(($(cat "$FAKE/inspections-$id") + 1))
      echo "$n" >"$FAKE/inspections-$id"
      if [[ "${FAKE_HEALTH_AFTER:-2}" != never ]] && ((n >= ${FAKE_HEALTH_AFTER:-2})); then
        health=healthy
        echo "$status $code $health" >"$FAKE/state/$id"
      fi
    fi
    echo "$status $code $health" ;;
  kill) echo "$*" >>"$FAKE/log" ;;
  *) echo "fake-engine: unexpected $*" >&2; exit 2 ;;
esac
FAKE
chmod +x "$tmp/fake-compose" "$tmp/fake-engine"

# run NAME ARGS...: the script on a fresh fake deployment of three healthy
# pods; its status in $status, its output in $out, Compose's log in $log.
run() {
  local name="$1"; shift
  export FAKE="$tmp/$name"
  mkdir -p "$FAKE/state"
  : >"$FAKE/log"
  for s in redis sidecar-1 app-1 sidecar-2 app-2 sidecar-3 app-3 nginx; do
    echo "running 0 healthy" >"$FAKE/state/$s"
  done
  echo "${FAKE_NGINX:-running 0 healthy}" >"$FAKE/state/nginx"
  status=0
  out="$(STATESIDE_COMPOSE="$tmp/fake-compose" STATESIDE_ENGINE="$tmp/fake-engine" \
         COMPOSE_PROJECT_NAME=compose ROLLING_UPDATE_TIMEOUT="${TIMEOUT:-30}" \
         "$script" "$@" 2>&1)" || status=$?
  log="$(grep -v '^config' "$FAKE/log" || true)"
  echo "--- $name: exit $status"
  echo "$out"
}
expect_log() {
  local name="$1" want="$2"
  [[ "$log" == "$want" ]] || fail "$name: Compose commands were:
$log
expected:
$want"
}

run all
[[ $status == 0 ]] || fail "all: exit $status"
expect_log all "stop app-1
up -d --no-deps sidecar-1 app-1
kill --signal HUP nginx
stop app-2
up -d --no-deps sidecar-2 app-2
kill --signal HUP nginx
stop app-3
up -d --no-deps sidecar-3 app-3
kill --signal HUP nginx"
for s in sidecar-1 app-1 sidecar-3 app-3; do
  [[ "$(cat "$FAKE/state/$s")" == "running 0 healthy" ]] || fail "all: $s is not healthy at the end"
done

run some pod-3 2
[[ $status == 0 ]] || fail "some: exit $status"
expect_log some "stop app-3
up -d --no-deps sidecar-3 app-3
kill --signal HUP nginx
stop app-2
up -d --no-deps sidecar-2 app-2
kill --signal HUP nginx"

# No nginx running: nothing to reload.
FAKE_NGINX="exited 0 none" run no-nginx 1
[[ $status == 0 ]] || fail "no-nginx: exit $status"
expect_log no-nginx "stop app-1
up -d --no-deps sidecar-1 app-1"

TIMEOUT=2 FAKE_SIDECAR_EXIT=stay run no-drain
[[ $status == 1 ]] || fail "no-drain: exit $status, expected 1"
grep -q 'FAILED: sidecar-1 has not exited within 2s' <<<"$out" || fail "no-drain: no timeout message for sidecar-1"
expect_log no-drain "stop app-1"

FAKE_SIDECAR_EXIT=3 run bad-exit
[[ $status == 1 ]] || fail "bad-exit: exit $status, expected 1"
grep -q 'FAILED: sidecar-1 exited with status 3' <<<"$out" || fail "bad-exit: no message for the status"
expect_log bad-exit "stop app-1"

TIMEOUT=2 FAKE_HEALTH_AFTER=never run unhealthy
[[ $status == 1 ]] || fail "unhealthy: exit $status, expected 1"
grep -q 'FAILED: sidecar-1 is not healthy within 2s' <<<"$out" || fail "unhealthy: no timeout message"
expect_log unhealthy "stop app-1
up -d --no-deps sidecar-1 app-1"

run unknown-pod 7
[[ $status == 1 ]] || fail "unknown-pod: exit $status, expected 1"
grep -q 'no service app-7' <<<"$out" || fail "unknown-pod: no message"
expect_log unknown-pod ""

run bad-arg sidecar-1
[[ $status == 2 ]] || fail "bad-arg: exit $status, expected 2 (usage)"

if ((failures > 0)); then echo "$failures failure(s)"; exit 1; fi
echo "ok"

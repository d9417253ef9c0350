#!/usr/bin/env bash
# newcomer_path_test: a clean clone of the committed tree, then the README's
# commands in a newcomer's order. Fails when scripts/test runs no test, when
# scripts/run does not serve, or when a command rebuilds what the other built.
set -euo pipefail
src="${STATESIDE_SOURCE_DIR:?set by ctest}"
work="$(mktemp -d)"
run_pid=""
cleanup() {
  [ -n "$run_pid" ] && kill -KILL "$run_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "newcomer_path_test: $*" >&2; exit 1; }

# The clone must not see the outer test's environment (which points at the
# outer build's binaries).
unset STATESIDE_BIN_DIR STATESIDE_SOURCE_DIR
git clone -q "$src" "$work/clone"
cd "$work/clone"
sock="$work/run/stateside.sock"

# start_run LOG: scripts/run in the background; returns once the sidecar
# answers `statesidectl info` on its socket.
start_run() {
  STATESIDE_SOCKET="$sock" STATESIDE_ADMIN_ADDR=127.0.0.1:0 scripts/run >"$1" 2>&1 &
  run_pid=$!
  local deadline=$((SECONDS + 1500))
  until [ -x build/bin/statesidectl ] && build/bin/statesidectl --socket "$sock" info >/dev/null 2>&1; do
    kill -0 "$run_pid" 2>/dev/null || { cat "$1" >&2; fail "scripts/run exited before it served"; }
    [ $SECONDS -lt $deadline ] || fail "scripts/run did not serve within 25 minutes"
    sleep 1  # polling a process that is building; no event to wait on
  done
}
stop_run() {
  kill -TERM "$run_pid"
  local rc=0
  wait "$run_pid" || rc=$?
  run_pid=""
  [ "$rc" -eq 0 ] || { cat "$1" >&2; fail "the sidecar of scripts/run exited $rc on SIGTERM"; }
}

start_run "$work/run1.log"
stop_run "$work/run1.log"
echo "scripts/run built and served"

# scripts/test after scripts/run: the whole build, then tests that must run.
# (A filter keeps this check short; the outer run is the whole suite.)
scripts/test --fast -R '^crypto_' >"$work/test.log" 2>&1 || { cat "$work/test.log" >&2; fail "scripts/test failed"; }
ran="$(sed -n 's/.*tests passed, [0-9]* tests\? failed out of \([0-9]*\).*/\1/p' "$work/test.log" | tail -n 1)"
[ -n "$ran" ] && [ "$ran" -gt 0 ] || { cat "$work/test.log" >&2; fail "scripts/test ran no test"; }
listed="$(ctest --test-dir build -N | sed -n 's/^Total Tests: \([0-9]*\)$/\1/p')"
[ "${listed:-0}" -gt 1 ] || fail "the build scripts/test left behind lists ${listed:-no} tests"
echo "scripts/test ran $ran tests; its build lists $listed"

# scripts/run again: the tree is built, so nothing is compiled or linked.
start_run "$work/run2.log"
stop_run "$work/run2.log"
if grep -E 'Building (CXX|C) object|Linking' "$work/run2.log" >&2; then
  fail "scripts/run after scripts/test rebuilt the lines above"
fi
echo "scripts/run after scripts/test rebuilt nothing"

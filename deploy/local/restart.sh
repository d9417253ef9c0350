#!/usr/bin/env bash
# Rolling restart of one pod of the local cluster, as Kubernetes does it with
# a native sidecar: SIGTERM to the pod's radar-app only. The app forwards the
# drain to its sidecar (LifecycleService.Drain); the sidecar turns not-ready,
# waits STATESIDE_PRESTOP_DELAY, tells the app to drain; the app stops
# accepting (nginx sends new requests to the other pods), finishes its
# requests, closes its WebSockets with 1012 and reports drained; both exit 0.
# Then the pod is started again and this waits until it is ready.
#
#   deploy/local/restart.sh POD     POD: 2 or pod-2
#
# Exit 0 when the pod is back and both processes had exited with status 0;
# 1 if the pod did not come back, or came back after an unclean stop (a
# process that had to be killed or exited non-zero: see its log).
set -euo pipefail
PROG="restart.sh"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") die "which pod? (e.g. restart.sh 2)" ;;
esac
[ $# -eq 1 ] || die "one pod at a time (see --help)"
check_env
load_cluster_env
pod="${1#pod-}"
if ! [[ "$pod" =~ ^[0-9]+$ ]] || [ "$pod" -lt 1 ] || [ "$pod" -gt "$(pod_count)" ]; then
  die "no pod '$1' in $LOCAL_DIR (pods 1 to $(pod_count))"
fi
app="$(app_base "$pod")" sidecar="$(sidecar_base "$pod")"
is_running "$(redis_base)" || die "redis-server is not running in $LOCAL_DIR (deploy/local/up.sh)"

# --- stop ----------------------------------------------------------------------------
clean=1
if is_running "$app"; then
  say "pod-$pod: SIGTERM to $(app_name) (pid $(pid_of "$app"))"
  kill -TERM "$(cat "$app.pid")" 2>/dev/null || true
elif is_running "$sidecar"; then
  # The app is gone already (crashed or killed): stop the sidecar directly.
  say "pod-$pod: $(app_name) is not running; SIGTERM to the sidecar (pid $(pid_of "$sidecar"))"
  kill -TERM "$(cat "$sidecar.pid")" 2>/dev/null || true
  clean=0
else
  say "pod-$pod was not running"
  clean=0
fi
grace="$(pod_stop_grace)"
if ! wait_gone "$grace" "$app" "$sidecar"; then
  say "pod-$pod did not stop within ${grace}s: SIGKILL"
  clean=0
fi
kill_sessions "$app" "$sidecar"
for base in "$app" "$sidecar"; do
  rc="$(cat "$base.rc" 2>/dev/null || echo unknown)"
  if [ $clean -eq 1 ] && [ "$rc" != 0 ]; then
    say "pod-$pod $(basename "$base") exited with status $rc"
    clean=0
  fi
done

# --- start -----------------------------------------------------------------------------
for base in "$app" "$sidecar"; do
  echo "=== [$(date -u +%FT%TZ)] restart.sh: starting again" >>"$base.log"
done
deadline=$((SECONDS + READY_TIMEOUT))
start_pod "$pod" || exit 1
wait_pod "$deadline" "$pod" || die "pod-$pod did not come back (logs: $(pod_dir "$pod")/{sidecar,app}.log)"
say "pod-$pod is back: sidecar pid $(pid_of "$sidecar"), $(app_name) pid $(pid_of "$app")"
[ $clean -eq 1 ] || die "pod-$pod is back, but its previous run did not stop cleanly (see $(pod_dir "$pod")/{sidecar,app}.log)"

#!/usr/bin/env bash
# One line per process of the local cluster in STATESIDE_LOCAL_DIR: what it
# is, its pid, whether it runs, whether it is ready, and the pods' instance
# ids (as the sidecar and the app report them).
#
#   deploy/local/status.sh
#
# Exit 0 if every process runs and is ready, 1 otherwise.
set -euo pipefail
PROG="status.sh"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "no arguments expected (see --help)" ;;
esac
check_env
load_cluster_env
[ -f "$LOCAL_DIR/pods" ] || { say "no cluster in $LOCAL_DIR (start one with deploy/local/up.sh)"; exit 1; }

all_up=1
# line NAME BASE READY_CHECK ADDRESS [INSTANCE]
line() {
  local name="$1" base="$2" check="$3" address="$4" instance="${5:-}" alive=no ready=no
  if is_running "$base"; then
    alive=yes
    if $check; then ready=yes; fi
  fi
  [ "$alive" = yes ] && [ "$ready" = yes ] || all_up=0
  printf '%-14s pid %-8s alive %-3s  ready %-3s  %-22s %s\n' \
    "$name" "$(pid_of "$base")" "$alive" "$ready" "$address" "${instance:+instance $instance}"
}

for k in $(redis_nodes); do
  name=redis
  [ "$LOCAL_REDIS" = standalone ] || name="redis node-$k"
  line "$name" "$(redis_base "$k")" "redis_ready $k" "127.0.0.1:$(redis_port "$k")"
done
for k in $(sentinels); do
  line "sentinel-$k" "$(sentinel_base "$k")" "sentinel_ready $k" "127.0.0.1:$(sentinel_port "$k")"
done
for i in $(seq 1 "$(pod_count)"); do
  # The instance as each process reports it; empty when it does not answer.
  sidecar_instance="$(json_field "$(curl -s --max-time 2 "http://127.0.0.1:$(admin_port "$i")/health" 2>/dev/null || true)" instance)"
  app_instance="$(json_field "$(curl -s --max-time 2 "http://127.0.0.1:$(app_port "$i")/healthz" 2>/dev/null || true)" instance)"
  line "pod-$i sidecar" "$(sidecar_base "$i")" "sidecar_ready $i" "admin 127.0.0.1:$(admin_port "$i")" "$sidecar_instance"
  line "pod-$i app" "$(app_base "$i")" "app_ready $i" "http 127.0.0.1:$(app_port "$i")" "$app_instance"
done
line nginx "$(nginx_base)" nginx_ready "http://127.0.0.1:$LOCAL_PORT/"

exit $((1 - all_up))

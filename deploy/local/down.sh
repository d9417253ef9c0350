#!/usr/bin/env bash
# Stops the local cluster of STATESIDE_LOCAL_DIR: nginx first (no new
# requests), then every pod (SIGTERM to radar-app and sidecar, which drain
# and exit), then redis-server. Each step waits a bounded time, then SIGKILLs.
# Finally kills any straggler: a process left in one of the sessions up.sh
# started, or whose command line names a path in STATESIDE_LOCAL_DIR.
#
#   deploy/local/down.sh
#
# Safe to run twice, or when nothing runs. Logs and secrets stay in the
# directory (up.sh reuses the secrets). Exit 0 once nothing is left.
set -euo pipefail
PROG="down.sh"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "no arguments expected (see --help)" ;;
esac
check_env
load_cluster_env
[ -d "$LOCAL_DIR" ] || { say "nothing to stop: $LOCAL_DIR does not exist"; exit 0; }

# Every pod directory, whatever the count recorded at the last up.sh.
pods=()
for d in "$LOCAL_DIR"/pod-*; do
  [ -d "$d" ] && [[ "${d##*/pod-}" =~ ^[0-9]+$ ]] && pods+=("${d##*/pod-}")
done

stop 10 "$(nginx_base)"
stop_pods "${pods[@]}"
# Last: the sidecars flush their writes and deregister in Redis on the way out.
mapfile -t redis < <(redis_bases)
stop 10 "${redis[@]}"

# Stragglers: whatever is left in the recorded sessions (e.g. nginx workers
# whose master was killed) or names this directory on its command line.
bases=()
# Only the Redis processes of the layout this cluster was started with
# (cluster.env): a stale .sid of another layout may name a session id the
# system has since given to something else.
for base in "${redis[@]}" "$LOCAL_DIR/nginx/master"; do
  [ -e "$base.sid" ] && bases+=("$base")
done
for f in "$LOCAL_DIR"/pod-*/*.sid; do
  [ -e "$f" ] && bases+=("${f%.sid}")
done
kill_sessions "${bases[@]}"
for attempt in $(seq 1 20); do
  mapfile -t left < <(stragglers)
  [ ${#left[@]} -gt 0 ] || break
  [ "$attempt" -lt 20 ] || die "could not stop: pids ${left[*]}"
  for pid in "${left[@]}"; do
    say "straggler pid $pid ($(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-100)): SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  done
  sleep 0.1
done

rm -f "$LOCAL_DIR"/redis/*.{pid,sid} "$LOCAL_DIR"/nginx/master.{pid,sid} \
      "$LOCAL_DIR"/pod-*/*.pid "$LOCAL_DIR"/pod-*/*.sid
say "stopped (logs in $LOCAL_DIR)"

#!/bin/bash
# A rolling update of the Compose deployment, one pod at a time, in the
# order the kubelet stops a pod: the app first. Its SIGTERM is forwarded to
# the pod's sidecar as a drain (RADAR_FORWARD_SIGTERM=true); the sidecar
# drains, exits 0 and stays down (`restart: on-failure`). Then both start
# again, recreated from new images or settings if there are any, nginx is
# reloaded (it resolves the pod's new address), and the next pod waits until
# both are healthy: nginx always has the other pods.
#
#   deploy/compose/compose.sh build        # or pull: the new images
#   deploy/compose/rolling-update.sh       # every pod (app-1, app-2, ...)
#   deploy/compose/rolling-update.sh 2 3   # pods 2 and 3 (or pod-2, app-2)
#
# Any wait longer than ROLLING_UPDATE_TIMEOUT seconds (default 120) stops the
# update with an error and leaves the remaining pods as they are. Compose is
# picked as by compose.sh ($STATESIDE_COMPOSE), and so is the Redis layout
# ($STATESIDE_COMPOSE_REDIS: set it as for `up`); the containers are found by
# their Compose labels with $STATESIDE_ENGINE (docker, or podman for
# podman-compose) in project $COMPOSE_PROJECT_NAME (default: this
# directory's name, as Compose names it).
set -euo pipefail

# shellcheck source=deploy/compose/compose.sh
source "$(dirname "$0")/compose.sh"

timeout_s="${ROLLING_UPDATE_TIMEOUT:-120}"
[[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] ||
  { echo "rolling-update.sh: ROLLING_UPDATE_TIMEOUT must be a positive number of seconds" >&2; exit 2; }
project="${COMPOSE_PROJECT_NAME:-$(basename "$COMPOSE_DIR")}"

log() { echo "rolling-update: $*"; }
fail() { echo "rolling-update: FAILED: $*" >&2; exit 1; }

# The one container of SERVICE (its id), or nothing.
container_of() {
  "${COMPOSE_ENGINE[@]}" ps -a -q \
      --filter "label=com.docker.compose.project=$project" \
      --filter "label=com.docker.compose.service=$1" | head -n 1
}

# "STATUS EXIT_CODE HEALTH" of SERVICE's container (HEALTH "none" without a
# healthcheck), or "missing".
state_of() {
  local id
  id="$(container_of "$1")"
  if [[ -z "$id" ]]; then echo missing; return; fi
  "${COMPOSE_ENGINE[@]}" inspect -f \
      '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id"
}

# wait_exited SERVICE: until its container has exited with status 0.
wait_exited() {
  local service="$1" deadline=$((SECONDS + timeout_s)) state
  while :; do
    state="$(state_of "$service")"
    case "$state" in
      "exited 0 "* | missing) return 0 ;;
      exited\ *) fail "$service exited with status $(cut -d' ' -f2 <<<"$state"), not 0: it did not drain cleanly (\`compose.sh logs $service\`)" ;;
    esac
    ((SECONDS < deadline)) ||
      fail "$service has not exited within ${timeout_s}s (state: $state). Is RADAR_FORWARD_SIGTERM true for its app? Stop it with \`compose.sh stop $service\` to go on"
    sleep 1
  done
}

# wait_healthy SERVICE: until its container runs and its healthcheck passes.
# Podman runs healthchecks from systemd timers: where no systemd runs them (a
# container, a CI machine), the status stays "starting" unless someone runs
# the check, so with Podman this runs it (it records the result either way).
wait_healthy() {
  local service="$1" deadline=$((SECONDS + timeout_s)) state id
  while :; do
    if [[ "${COMPOSE_ENGINE[0]##*/}" == podman ]]; then
      id="$(container_of "$service")"
      [[ -z "$id" ]] || "${COMPOSE_ENGINE[@]}" healthcheck run "$id" >/dev/null 2>&1 || true
    fi
    state="$(state_of "$service")"
    [[ "$state" == "running 0 healthy" || "$state" == "running 0 none" ]] && return 0
    ((SECONDS < deadline)) ||
      fail "$service is not healthy within ${timeout_s}s (state: $state): \`compose.sh logs $service\`; the pods after it are not updated"
    sleep 1
  done
}

# reload_nginx: SIGHUP to the nginx container, which loads its configuration
# again and so resolves the pods' names again: a restarted pod has a new
# address, which an nginx without upstream `resolve` (before 1.27.3; see
# nginx-start.sh) learns only then. A graceful reload: requests in flight
# finish on the old workers. No nginx service (or none running): nothing.
reload_nginx() {
  local id
  id="$(container_of nginx)"
  [[ -n "$id" && "$(state_of nginx)" == running\ * ]] || return 0
  "${COMPOSE_ENGINE[@]}" kill --signal HUP "$id" >/dev/null ||
    fail "could not reload nginx (\`compose.sh logs nginx\`)"
}

compose_pick

# The pods: the arguments (1, pod-1 or app-1), or every app-N of the file.
pods=()
if (($# > 0)); then
  for arg in "$@"; do
    [[ "$arg" =~ ^(pod-|app-)?([1-9][0-9]*)$ ]] ||
      { echo "usage: rolling-update.sh [POD...]  (POD: 1, pod-1 or app-1)" >&2; exit 2; }
    pods+=("${BASH_REMATCH[2]}")
  done
else
  while read -r service; do
    if [[ "$service" =~ ^app-([0-9]+)$ ]]; then pods+=("${BASH_REMATCH[1]}"); fi
  done < <(compose_services | sort -t- -k2 -n)
fi
((${#pods[@]} > 0)) || fail "no app-N service in $COMPOSE_FILE_PATH"
services="$(compose_services)"
for n in "${pods[@]}"; do
  for s in "app-$n" "sidecar-$n"; do
    grep -qx "$s" <<<"$services" || fail "pod $n: no service $s in $COMPOSE_FILE_PATH"
  done
done

for n in "${pods[@]}"; do
  app="app-$n" sidecar="sidecar-$n"
  log "pod $n: stopping $app (its SIGTERM drains $sidecar)"
  compose stop "$app"
  wait_exited "$app"
  wait_exited "$sidecar"
  log "pod $n: $app and $sidecar have exited; starting them"
  if [[ "$COMPOSE_PODMAN" == true ]]; then
    # podman-compose's `up` starts an existing container as it was created:
    # the exited pair is removed, so that `up` creates it again from the
    # current images and settings, as Compose's recreate does.
    for s in "$app" "$sidecar"; do
      id="$(container_of "$s")"
      [[ -z "$id" ]] || "${COMPOSE_ENGINE[@]}" rm "$id" >/dev/null
    done
  fi
  compose up -d --no-deps "$sidecar" "$app"
  wait_healthy "$sidecar"
  wait_healthy "$app"
  reload_nginx
  log "pod $n: $sidecar and $app are healthy"
done
log "done: pod(s) ${pods[*]}"

#!/bin/bash
# Shared by the container tests (container_test.sh,
# compose_topologies_test.sh), sourced: Podman's settings for this kind of
# machine, a copy of the Compose deployment, a project's removal and the
# HTTP calls through nginx. The functions use the caller's $tmp (its
# scratch directory) and $url (nginx as published), and set variables for it.
# shellcheck disable=SC2034,SC2154  # $tmp and $url are the caller's; what is set is for it

# podman_setup: a containers.conf of this run in $tmp (CONTAINERS_CONF, exported):
# runc (crun does not work here) and, as every container's nofile and nproc
# limits, the host's hard ones (nproc at most 32768, Podman's own: a
# container may not raise a limit above the host's, no CAP_SYS_RESOURCE).
# Sets `ulimits` (the two, as --ulimit takes them).
podman_setup() {
  local nofile nproc
  nofile="$(ulimit -Hn)"
  nproc="$(ulimit -Hu)"
  [[ "$nofile" == unlimited ]] && nofile=1048576
  [[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
  ulimits=("nofile=$nofile:$nofile" "nproc=$nproc:$nproc")
  cat >"$tmp/containers.conf" <<CONF
[containers]
default_ulimits = ["${ulimits[0]}", "${ulimits[1]}"]
[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF="$tmp/containers.conf"
}

# compose_copy SOURCE_DIR: $tmp/deploy, a copy of deploy/ as the Compose file
# sees it (../nginx, ../docker), with secrets of its own: nothing is written
# into the source tree.
compose_copy() {
  local src="$1"
  rm -rf "$tmp/deploy"
  mkdir -p "$tmp/deploy/docker"
  cp -a "$src/deploy/compose" "$src/deploy/nginx" "$tmp/deploy/"
  cp -a "$src/deploy/docker/healthcheck.sh" "$tmp/deploy/docker/"
  rm -rf "$tmp/deploy/compose/secrets" "$tmp/deploy/compose/.env" "$tmp/deploy/compose/".docker-compose.*
  "$tmp/deploy/compose/make-secrets.sh" >/dev/null
}

# remove_project PROJECT: whatever is left of Compose project PROJECT, found
# by its labels: its containers (at once, not drained), volumes and network.
remove_project() {
  local project="$1" ids
  mapfile -t ids < <(podman ps -a -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)
  ((${#ids[@]} == 0)) || podman rm -f -t 0 "${ids[@]}" >/dev/null 2>&1 || true
  mapfile -t ids < <(podman volume ls -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)
  ((${#ids[@]} == 0)) || podman volume rm -f "${ids[@]}" >/dev/null 2>&1 || true
  podman network rm -f "${project}_default" >/dev/null 2>&1 || true
}

# wait_healthy PROJECT SECONDS SERVICE...: until every SERVICE's container
# of PROJECT passes its healthcheck, run here (no systemd runs Podman's
# healthcheck timers on this kind of machine); fail()s (the caller's) after
# SECONDS, naming those that do not.
wait_healthy() {
  local project="$1" timeout="$2" deadline=$((SECONDS + $2)) s unhealthy
  shift 2
  while :; do
    unhealthy=()
    for s in "$@"; do
      podman healthcheck run "${project}_${s}_1" >/dev/null 2>&1 || unhealthy+=("$s")
    done
    ((${#unhealthy[@]} == 0)) && return 0
    ((SECONDS < deadline)) || fail "not healthy within ${timeout}s: ${unhealthy[*]}"
    sleep 1
  done
}

# call METHOD PATH [JSON]: a request to $url with the cookie jar
# $tmp/cookies; sets $code, $instance (X-Instance-Id) and $body.
call() {
  local method="$1" path="$2" data="${3:-}" args=()
  [[ -z "$data" ]] || args=(-H 'Content-Type: application/json' --data "$data")
  code="$(curl -s --max-time 10 -X "$method" -b "$tmp/cookies" -c "$tmp/cookies" \
          -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' "${args[@]}" "$url$path" || true)"
  instance="$(sed -n 's/^X-Instance-Id: *\([^[:space:]]*\).*/\1/Ip' "$tmp/headers" | tail -n 1)"
  body="$(cat "$tmp/body")"
}
# cart_of JSON: the items of GET /me's cart, space-separated.
cart_of() { python3 -c 'import json, sys; print(" ".join(json.loads(sys.argv[1])["cart"]))' "$1"; }

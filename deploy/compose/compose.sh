#!/bin/bash
# Compose on deploy/compose/docker-compose.yml with whichever Compose this
# host has: $STATESIDE_COMPOSE if set ("docker compose", "docker-compose",
# "podman-compose"), else the first installed of `docker compose` (v2),
# docker-compose and podman-compose.
#
#   deploy/compose/compose.sh up -d --build
#   deploy/compose/compose.sh ps
#
# docker-compose 1.x (Debian 12 ships 1.29) rejects `depends_on: {restart:
# true}` (Compose 2.17): it gets a copy of the file without those lines,
# written next to it (.docker-compose.v1.yml, never committed) so that
# relative paths, .env and the project name are the same.
#
# podman-compose (Debian 12 ships 1.0.3) differs in ways this script and
# rolling-update.sh make up for: it ignores $COMPOSE_PROJECT_NAME (passed
# here as -p) and `stop_grace_period` (podman's default is 10 s: every
# container gets --stop-timeout 20, the file's longest grace period), and it
# has no `config` (compose_services reads the file). What it does not do at
# all: `depends_on` conditions and `restart: true` (it starts the services
# in dependency order without waiting for healthchecks; each program waits
# for what it needs: the app for its sidecar's socket, the sidecar for
# Redis), and healthchecks run by themselves only where systemd runs
# Podman's timers (rolling-update.sh runs them itself). Sourced (by
# rolling-update.sh), this file only defines the functions.
#
# Redis: $STATESIDE_COMPOSE_REDIS picks the layout the pods use, the same for
# every command of a deployment (up, down, rolling-update.sh):
#   standalone  (default) the file's one `redis`
#   cluster     a Redis Cluster of six nodes: the override redis-cluster.yml
#   sentinel    a master, a replica, three sentinels: redis-sentinel.yml
# An override is a second -f file on top of docker-compose.yml (which
# podman-compose 1.0.3 merges too, unlike `profiles:`, which it ignores).
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPOSE_FILE_PATH="$COMPOSE_DIR/docker-compose.yml"

# Sets COMPOSE_OVERRIDES (the -f files after the main one) from
# $STATESIDE_COMPOSE_REDIS.
compose_redis() {
  COMPOSE_REDIS="${STATESIDE_COMPOSE_REDIS:-standalone}"
  COMPOSE_OVERRIDES=()
  case "$COMPOSE_REDIS" in
    standalone) ;;
    cluster | sentinel)
      COMPOSE_OVERRIDES=("$COMPOSE_DIR/redis-$COMPOSE_REDIS.yml")
      [[ -e "$COMPOSE_DIR/secrets/redis_url_$COMPOSE_REDIS" ]] ||
        echo "compose.sh: $COMPOSE_DIR/secrets/redis_url_$COMPOSE_REDIS is missing:" \
             "run deploy/compose/make-secrets.sh (it adds it to existing secrets)" >&2 ;;
    *)
      echo "compose.sh: STATESIDE_COMPOSE_REDIS must be standalone, cluster or sentinel" \
           "(got '$COMPOSE_REDIS')" >&2
      return 2 ;;
  esac
}

# Sets COMPOSE_CMD (an array) and COMPOSE_ENGINE (docker or podman: the
# engine whose `ps`/`inspect` see the containers).
compose_pick() {
  if [[ -n "${STATESIDE_COMPOSE:-}" ]]; then
    read -r -a COMPOSE_CMD <<<"$STATESIDE_COMPOSE"
  elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
  elif command -v docker-compose >/dev/null; then
    COMPOSE_CMD=(docker-compose)
  elif command -v podman-compose >/dev/null; then
    COMPOSE_CMD=(podman-compose)
  else
    echo "compose.sh: no Compose found: install docker compose (v2), docker-compose or" \
         "podman-compose, or set STATESIDE_COMPOSE" >&2
    return 1
  fi
  if [[ -z "${STATESIDE_ENGINE:-}" ]]; then
    case "${COMPOSE_CMD[0]##*/}" in
      podman*) STATESIDE_ENGINE=podman ;;
      *) STATESIDE_ENGINE=docker ;;
    esac
  fi
  # shellcheck disable=SC2034  # used by rolling-update.sh
  read -r -a COMPOSE_ENGINE <<<"$STATESIDE_ENGINE"
  COMPOSE_PODMAN=false
  [[ "${COMPOSE_CMD[0]##*/}" == podman-compose ]] && COMPOSE_PODMAN=true
  # docker-compose 1.x (the Python one) needs the filtered file.
  COMPOSE_V1=false
  if [[ "${COMPOSE_CMD[0]##*/}" == docker-compose ]] &&
     "${COMPOSE_CMD[@]}" version --short 2>/dev/null | grep -q '^1\.'; then
    COMPOSE_V1=true
  fi
  compose_redis
}

# Writes the Compose file without its `depends_on` `restart: true` lines,
# for 1.x, and prints its path.
compose_file_v1() {
  local out="$COMPOSE_DIR/.docker-compose.v1.yml" tmp
  tmp="$(mktemp "$COMPOSE_DIR/.docker-compose.v1.XXXXXX")"
  sed -E '/^[[:space:]]+restart: true[[:space:]]*$/d' "$COMPOSE_FILE_PATH" >"$tmp"
  mv -f "$tmp" "$out"
  echo "$out"
}

# compose ARGS...: Compose on this directory's file (and the Redis
# layout's override) with ARGS.
compose() {
  local files=(-f "$COMPOSE_FILE_PATH") override
  [[ "$COMPOSE_V1" == false ]] || files=(-f "$(compose_file_v1)")
  for override in "${COMPOSE_OVERRIDES[@]}"; do files+=(-f "$override"); done
  if [[ "$COMPOSE_PODMAN" == true ]]; then
    local options=(--podman-run-args=--stop-timeout=20)
    [[ -n "${COMPOSE_PROJECT_NAME:-}" ]] && options+=(-p "$COMPOSE_PROJECT_NAME")
    # Docker's image format: the OCI one (Podman's default) drops the
    # Dockerfile's SHELL (its RUNs are bash) and HEALTHCHECK.
    BUILDAH_FORMAT="${BUILDAH_FORMAT:-docker}" \
      "${COMPOSE_CMD[@]}" "${files[@]}" "${options[@]}" "$@"
  else
    "${COMPOSE_CMD[@]}" "${files[@]}" "$@"
  fi
}

# The services of the files, one a line (`compose config --services`;
# podman-compose has no `config`: its own YAML module reads the files).
compose_services() {
  if [[ "$COMPOSE_PODMAN" == true ]]; then
    python3 -c 'import sys, yaml
names = {}
for path in sys.argv[1:]:
    names.update(dict.fromkeys(yaml.safe_load(open(path))["services"]))
print("\n".join(names))' "$COMPOSE_FILE_PATH" "${COMPOSE_OVERRIDES[@]}"
  else
    compose config --services
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  compose_pick
  compose "$@"
fi

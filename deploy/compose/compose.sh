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
# relative paths, .env and the project name are the same. Sourced (by
# rolling-update.sh), this file only defines the functions.
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPOSE_FILE_PATH="$COMPOSE_DIR/docker-compose.yml"

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
  # docker-compose 1.x (the Python one) needs the filtered file.
  COMPOSE_V1=false
  if [[ "${COMPOSE_CMD[0]##*/}" == docker-compose ]] &&
     "${COMPOSE_CMD[@]}" version --short 2>/dev/null | grep -q '^1\.'; then
    COMPOSE_V1=true
  fi
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

# compose ARGS...: Compose on this directory's file with ARGS.
compose() {
  if [[ "$COMPOSE_V1" == true ]]; then
    local file
    file="$(compose_file_v1)"
    "${COMPOSE_CMD[@]}" -f "$file" "$@"
  else
    "${COMPOSE_CMD[@]}" -f "$COMPOSE_FILE_PATH" "$@"
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  compose_pick
  compose "$@"
fi

#!/bin/bash
# The container test (label `container`): the images of deploy/docker/Dockerfile
# and the Compose deployment of deploy/compose/, for real, with Debian 12's
# Podman (rootful, runc) and podman-compose, and no image registry:
#
#  1. debian:12, made once with debootstrap from this machine's own apt mirror
#     (its apt configuration copied in) and imported; later runs find it. It is
#     also tagged debian:bookworm-slim (the Dockerfile's base) unless that
#     image exists. redis:7.2 and nginx:1.28 (the Compose file's images) are
#     built from it with Debian's packages (redis.Containerfile,
#     nginx.Containerfile) unless real ones are there.
#  2. The `stateside-prebuilt` and `radar-app-prebuilt` targets with the
#     binaries of BIN_DIR (the suite's own build: nothing is compiled here);
#     each runs as uid 10001, not root, holds exactly the packages of
#     scripts/lib.sh's RUNTIME_PACKAGES and what they depend on, and its
#     program starts (`--help`: every library it loads is there).
#  3. deploy/compose/ (a copy, with fresh secrets) up on a free loopback
#     port: Redis, three pods, nginx. Through nginx: a login, a cart item, the
#     cart read back by another pod (X-Instance-Id).
#  4. deploy/compose/rolling-update.sh on pod 1 while a load of GET /me and
#     POST /cart goes through nginx: every request answers 200, every item
#     added is in the cart, and pod 1 serves again afterwards.
#
# Images are built in Docker's format (--format docker): Podman's default,
# OCI, drops SHELL (the Dockerfile's RUNs are bash) and HEALTHCHECK.
# Podman on this kind of machine: crun does not work (runc is set), and a
# container may not raise a limit above the host's hard one (no
# CAP_SYS_RESOURCE), so the containers' nofile and nproc limits are set to the
# host's hard limits (nproc at most 32768, Podman's own). Both go into a
# containers.conf of this run (CONTAINERS_CONF). Everything the test starts is
# removed on exit, failed or not; the images stay (the next run reuses them).
#
#   container_test.sh SOURCE_DIR BIN_DIR
# Exit 0 pass, 1 fail, 77 skip (not root: rootful Podman is what runs here).
set -euo pipefail
src="$(cd "${1:?usage: container_test.sh SOURCE_DIR BIN_DIR}" && pwd)"
bin="$(cd "${2:?usage: container_test.sh SOURCE_DIR BIN_DIR}" && pwd)"
here="$src/tests/container"
# shellcheck source=tests/container/lib.sh
source "$here/lib.sh"

step() { echo "== [${SECONDS}s] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

for c in podman podman-compose runc debootstrap curl python3; do
  command -v "$c" >/dev/null ||
    fail "$c is not installed (scripts/lib.sh CONTAINER_PACKAGES; scripts/test installs them)"
done
for b in stateside statesidectl radar-app; do
  [[ -x "$bin/$b" ]] || fail "$bin/$b is not built"
done
if [[ "$(id -u)" -ne 0 ]]; then
  echo "SKIP: rootful Podman needs root (debootstrap, CNI bridge networks); this user is $(id -un)"
  exit 77
fi

tmp="$(mktemp -d /tmp/stateside-container.XXXXXX)"
project="statesidect$$"
load_pid=""
cleanup() {
  local rc=$?
  [[ -z "$load_pid" ]] || kill "$load_pid" 2>/dev/null || true
  if [[ -f "$tmp/deploy/compose/docker-compose.yml" ]]; then
    if ((rc != 0)); then
      echo "--- container states"
      podman ps -a --filter "label=com.docker.compose.project=$project" \
        --format '{{.Names}} {{.Status}}' || true
      for s in sidecar-1 sidecar-2 sidecar-3 app-1 app-2 app-3; do
        echo "--- logs of $s (last 30 lines)"
        podman logs --tail 30 "${project}_${s}_1" 2>&1 || true
      done
      echo "--- nginx: the answers other than 200 (last 30)"
      podman logs "${project}_nginx_1" 2>&1 | grep -v '" 200 ' | tail -n 30 || true
    fi
    "$tmp/deploy/compose/compose.sh" down -v >/dev/null 2>&1 || true
  fi
  # Whatever `down` left: the project's containers, volumes and network.
  remove_project "$project"
  rm -rf "$tmp"
  echo "== [${SECONDS}s] exit $rc"
}
trap cleanup EXIT

# --- Podman's settings for this machine --------------------------------------
podman_setup
build_args=(--format docker --pull=never --ulimit "${ulimits[0]}" --ulimit "${ulimits[1]}")
podman info >"$tmp/podman-info" 2>&1 || { cat "$tmp/podman-info"; fail "podman info failed"; }

# --- 1. base images -------------------------------------------------------------
if podman image exists debian:12; then
  step "debian:12 is there: not made again"
else
  # shellcheck disable=SC2016  # apt's own $(FIELD) placeholders
  mirror="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
            awk '$2 == "bookworm" { print $1; exit }')"
  [[ -n "$mirror" ]] ||
    fail "no bookworm repository in this machine's apt configuration (apt-get update first?)"
  step "debian:12: debootstrap from this machine's bookworm mirror"
  rootfs="$tmp/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
    { tail -n 30 "$tmp/debootstrap.log"; fail "debootstrap failed"; }
  # The machine's apt configuration, so that apt-get in an image reaches the
  # same mirror with the same options; no package cache or lists.
  rm -rf "$rootfs/etc/apt/sources.list" "$rootfs/etc/apt/sources.list.d"
  [[ ! -e /etc/apt/sources.list ]] || cp -a /etc/apt/sources.list "$rootfs/etc/apt/"
  for d in sources.list.d apt.conf.d trusted.gpg.d keyrings preferences.d; do
    [[ ! -d "/etc/apt/$d" ]] || { mkdir -p "$rootfs/etc/apt/$d"; cp -a "/etc/apt/$d/." "$rootfs/etc/apt/$d/"; }
  done
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" --numeric-owner -c . |
    podman import --change 'CMD ["bash"]' - debian:12 >"$tmp/import.log" 2>&1 ||
    { cat "$tmp/import.log"; fail "podman import of debian:12 failed"; }
  rm -rf "$rootfs"
fi
podman image exists debian:bookworm-slim || podman tag debian:12 debian:bookworm-slim

# build_image TAG PODMAN_BUILD_ARGS...: podman build -t TAG; the image TAG
# named before, if another, is removed (no dangling image per run).
build_image() {
  local tag="$1" old new
  shift
  old="$(podman image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
  podman build "${build_args[@]}" -q -t "$tag" "$@" >"$tmp/build.log" 2>&1 ||
    { tail -n 30 "$tmp/build.log"; fail "podman build of $tag failed"; }
  new="$(podman image inspect -f '{{.Id}}' "$tag")"
  [[ -z "$old" || "$old" == "$new" ]] || podman rmi "$old" >/dev/null 2>&1 || true
}

# ensure_image NAME CONTAINERFILE: a real NAME is left as it is; else (none, or
# one this test built) it is built, from the layer cache when unchanged.
ensure_image() {
  local name="$1" file="$2" label
  if podman image exists "$name"; then
    label="$(podman image inspect -f '{{index .Labels "org.stateside.test-image"}}' "$name")"
    if [[ -z "$label" || "$label" == "<no value>" ]]; then
      step "$name: an image of its own is there, used as it is"
      return 0
    fi
  fi
  step "$name: built from debian:12 ($(basename "$file"))"
  build_image "$name" -f "$file" "$here"
}
ensure_image redis:7.2 "$here/redis.Containerfile"
ensure_image nginx:1.28 "$here/nginx.Containerfile"

# --- 2. the project's images ------------------------------------------------------
side_image="localhost/stateside:container-test"
app_image="localhost/radar-app:container-test"
step "images: stateside-prebuilt, radar-app-prebuilt (binaries of $bin)"
for t in "stateside-prebuilt $side_image" "radar-app-prebuilt $app_image"; do
  read -r target tag <<<"$t"
  build_image "$tag" -f "$src/deploy/docker/Dockerfile" --target "$target" \
    --build-context prebuilt="$bin" "$src"
done

# shellcheck source=scripts/lib.sh
source "$src/scripts/lib.sh"
# Every package RUNTIME_PACKAGES brings (themselves and their dependencies,
# recursively, as apt-get install --no-install-recommends takes them).
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${RUNTIME_PACKAGES[@]}" 2>/dev/null |
  sed -n 's/^\([a-z0-9][a-z0-9.+-]*\)\(:[a-z0-9]*\)\?$/\1/p' | sort -u >"$tmp/runtime-closure"
grep -qx libssl3 "$tmp/runtime-closure" || fail "apt-cache depends found no dependencies of RUNTIME_PACKAGES"
packages_of() {
  podman run --rm --entrypoint dpkg-query "$1" -W -f '${Package}\n' | sort -u
}
packages_of debian:bookworm-slim >"$tmp/base-packages"
for t in "$side_image stateside" "$app_image radar-app"; do
  read -r image program <<<"$t"
  uid="$(podman run --rm --entrypoint id "$image" -u)"
  [[ "$uid" =~ ^[0-9]+$ && "$uid" -ne 0 ]] || fail "$image runs as uid '$uid', not a non-root user"
  [[ "$(podman image inspect -f '{{.Config.User}}' "$image")" == 10001:10001 ]] ||
    fail "$image: USER is not 10001:10001"
  packages_of "$image" >"$tmp/image-packages"
  added="$(comm -13 "$tmp/base-packages" "$tmp/image-packages")"
  extra="$(comm -23 <(echo "$added") "$tmp/runtime-closure" | grep . || true)"
  [[ -z "$extra" ]] || fail "$image holds packages that RUNTIME_PACKAGES do not bring: ${extra//$'\n'/ }"
  for p in "${RUNTIME_PACKAGES[@]}"; do
    grep -qx "$p" "$tmp/image-packages" || fail "$image lacks the runtime package $p"
  done
  podman run --rm "$image" --help >/dev/null 2>"$tmp/help.err" ||
    { cat "$tmp/help.err"; fail "$program --help does not run in $image"; }
  echo "$image: uid $uid, $(echo "$added" | grep -c .) packages over the base, all from RUNTIME_PACKAGES; $program starts"
done
podman run --rm --entrypoint statesidectl "$side_image" --help >/dev/null ||
  fail "statesidectl --help does not run in $side_image"

# --- 3. Compose up, and a session through nginx -----------------------------------
compose_copy "$src"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export COMPOSE_PROJECT_NAME="$project" STATESIDE_COMPOSE=podman-compose STATESIDE_ENGINE=podman
export STATESIDE_IMAGE="$side_image" RADAR_APP_IMAGE="$app_image"
export REDIS_IMAGE=redis:7.2 NGINX_IMAGE=nginx:1.28 RADAR_BIND=127.0.0.1 RADAR_PORT="$port"
compose() { "$tmp/deploy/compose/compose.sh" "$@"; }

step "compose up (project $project, nginx on 127.0.0.1:$port)"
compose up -d --no-build >"$tmp/up.log" 2>&1 || { tail -n 40 "$tmp/up.log"; fail "compose up failed"; }
services=(redis sidecar-1 app-1 sidecar-2 app-2 sidecar-3 app-3 nginx)
wait_healthy "$project" 180 "${services[@]}"
step "all ${#services[@]} containers are healthy"

url="http://127.0.0.1:$port"

: >"$tmp/cookies"
call POST /login '{"user":"container-test"}'
[[ "$code" == 200 ]] || fail "POST /login: $code $body"
login_instance="$instance"
grep -q 'radar_sid' "$tmp/cookies" || fail "POST /login set no session cookie"
call POST /cart '{"item":"apple"}'
[[ "$code" == 200 ]] || fail "POST /cart: $code $body"
call GET /me
[[ "$code" == 200 && " $(cart_of "$body") " == *" apple "* ]] || fail "GET /me: $code $body"
step "login on $login_instance, cart [apple]"
declare -A seen=()
other=""
for _ in $(seq 60); do
  call GET /me
  [[ "$code" == 200 ]] || fail "GET /me: $code $body"
  [[ " $(cart_of "$body") " == *" apple "* ]] || fail "GET /me on $instance lost the cart: $body"
  seen[$instance]=1
  [[ "$instance" != "$login_instance" && -z "$other" ]] && other="$instance"
  ((${#seen[@]} == 3)) && break
done
[[ -n "$other" ]] || fail "every GET /me was served by $login_instance: no cross-pod read"
step "the cart read back by $other (pods seen: ${!seen[*]})"

# --- 4. a rolling restart of pod 1 under load ----------------------------------------
# The load: GET /me and POST /cart in turn, one connection each, until
# $tmp/stop exists (or 300 s). One line a request: "CODE INSTANCE METHOD ITEM
# JAR". Every item name is new, so a lost add cannot hide behind a later
# one; the sidecar holds at most 64 attributes a session, so every 40 adds
# go to a new session (cookie jar), each logged in through nginx first.
# At most 40 requests a second: nginx allows one client address 50 a second
# beyond a burst of 100 (deploy/nginx/radar-http.conf) and answers 429 above
# that, and this load comes from one address (the Podman bridge's), as fast
# as curl goes on an idle machine.
load() {
  local i=0 code instance jar="" item now pause
  # EPOCHREALTIME (bash 5) with "." as its decimal mark: microseconds.
  local LC_ALL=C
  local end=$((SECONDS + 300)) next_us="${EPOCHREALTIME/./}"
  while [[ ! -e "$tmp/stop" ]] && ((SECONDS < end)); do
    # 25 ms from the previous request's start; a slow one is not caught up.
    now="${EPOCHREALTIME/./}"
    if ((now < next_us)); then
      printf -v pause '%d.%06d' $(((next_us - now) / 1000000)) $(((next_us - now) % 1000000))
      sleep "$pause"
      now="$next_us"
    fi
    next_us=$((now + 25000))
    i=$((i + 1))
    if ((i % 80 == 1)); then
      jar="$tmp/load-cookies-$i"
      code="$(curl -s --max-time 15 -c "$jar" -o /dev/null -H 'Content-Type: application/json' \
              --data "{\"user\":\"load-$i\"}" -w '%{http_code}' "$url/login" || true)"
      echo "$code - LOGIN - $jar"
    fi
    if ((i % 2)); then
      code="$(curl -s --max-time 15 -b "$jar" -D "$tmp/load-headers" -o /dev/null \
              -w '%{http_code}' "$url/me" || true)"
      instance="$(sed -n 's/^X-Instance-Id: *\([^[:space:]]*\).*/\1/Ip' "$tmp/load-headers")"
      echo "$code ${instance:--} GET - $jar"
    else
      item="load-$i"
      code="$(curl -s --max-time 15 -b "$jar" -D "$tmp/load-headers" -o /dev/null \
              -H 'Content-Type: application/json' --data "{\"item\":\"$item\"}" \
              -w '%{http_code}' "$url/cart" || true)"
      instance="$(sed -n 's/^X-Instance-Id: *\([^[:space:]]*\).*/\1/Ip' "$tmp/load-headers")"
      echo "$code ${instance:--} POST $item $jar"
    fi
  done >"$tmp/load.log"
}
load &
load_pid=$!
# wait_requests N: until the load has made N more requests than now.
wait_requests() {
  local want=$(($(wc -l <"$tmp/load.log") + $1)) deadline=$((SECONDS + 60))
  while (($(wc -l <"$tmp/load.log") < want)); do
    ((SECONDS < deadline)) || fail "the load made no progress"
    sleep 0.2
  done
}
wait_requests 20
step "rolling-update.sh 1, under load"
ROLLING_UPDATE_TIMEOUT=120 "$tmp/deploy/compose/rolling-update.sh" 1 ||
  fail "rolling-update.sh 1 failed"
mark="$(wc -l <"$tmp/load.log")"
# Pod 1 serves again: nginx sends it requests within a few seconds.
deadline=$((SECONDS + 60))
until tail -n +"$((mark + 1))" "$tmp/load.log" | grep -q '^200 pod-1 '; do
  ((SECONDS < deadline)) || fail "pod-1 served no request within 60s of its restart"
  sleep 0.5
done
wait_requests 20
touch "$tmp/stop"
wait "$load_pid" || true
load_pid=""

total="$(wc -l <"$tmp/load.log")"
failed="$(grep -vc '^200 ' "$tmp/load.log" || true)"
if ((failed > 0)); then
  grep -v '^200 ' "$tmp/load.log" | sort | uniq -c | head -n 20
  fail "$failed of $total requests through nginx failed during the rolling restart"
fi
# Every item added with 200 is in its session's cart.
lost=0
declare -A cart_of_jar=()
while read -r _ _ _ item jar; do
  if [[ -z "${cart_of_jar[$jar]+x}" ]]; then
    code="$(curl -s --max-time 10 -b "$jar" -o "$tmp/body" -w '%{http_code}' "$url/me" || true)"
    [[ "$code" == 200 ]] || fail "GET /me of $jar after the restart: $code $(cat "$tmp/body")"
    cart_of_jar[$jar]=" $(cart_of "$(cat "$tmp/body")") "
  fi
  [[ "${cart_of_jar[$jar]}" == *" $item "* ]] || { echo "lost: $item"; lost=$((lost + 1)); }
done < <(grep '^200 [^ ]* POST ' "$tmp/load.log")
((lost == 0)) || fail "$lost items added with 200 are not in the cart"
by_pod="$(grep -v ' LOGIN ' "$tmp/load.log" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}')"
step "rolling restart of pod 1: $total requests, 0 failed (${by_pod%, }); every item is in the cart"
echo "ok"

# shellcheck shell=bash
# Shared by scripts/run and scripts/test: dependency installation and the build.
# Sourced, not executed. The Dockerfiles use the same functions (one source of
# truth for how Stateside is built).

STATESIDE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Debian 12 packages needed to build the project. (The arrays are used by the
# scripts that source this file.)
# shellcheck disable=SC2034
BUILD_PACKAGES=(
  build-essential cmake pkg-config ca-certificates ccache mold
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libssl-dev libhiredis-dev libspdlog-dev libfmt-dev libcli11-dev
  nlohmann-json3-dev libboost-dev libboost-system-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
# Debian 12 shared libraries the built binaries load at run time: the final
# stage of deploy/docker/Dockerfile installs exactly these (checked against
# `ldd` by tests/deploy_validate). ca-certificates: CAs for rediss://.
# libgrpc++1.51 holds libgrpc++_reflection too (server reflection; its
# headers and CMake target come with libgrpc++-dev).
# shellcheck disable=SC2034
RUNTIME_PACKAGES=(
  ca-certificates
  libgrpc++1.51 libprotobuf32 libabsl20220623 libssl3 libhiredis0.14
  libspdlog1.10 libfmt9 libprometheus-cpp-core1.0
)
# What the test suite starts or calls: real redis-server, nginx, promtool,
# curl; wrk (load through the local cluster, scripts/bench --web), headless
# Chromium and its WebDriver (the browser check), shellcheck (the scripts'
# lint in deploy_config_test), docker-compose (`config -q` on the Compose file;
# no Docker engine is needed or started).
# shellcheck disable=SC2034
TEST_PACKAGES=(
  redis-server redis-tools nginx-light prometheus curl openssl
  wrk chromium chromium-driver shellcheck docker-compose
  clang-14
)

# What the container test (tests/container, label `container`) runs: rootful
# Podman with runc (crun does not work on every machine), podman-compose, the
# CNI plugins with dnsname (the Compose network's DNS), debootstrap (the
# debian:12 base image, made from the machine's own apt mirror: no image
# registry is needed).
# shellcheck disable=SC2034
CONTAINER_PACKAGES=(
  podman buildah podman-compose runc conmon containernetworking-plugins
  golang-github-containernetworking-plugin-dnsname debootstrap uidmap
)

log() { printf '==> %s\n' "$*" >&2; }
# Floating-point arithmetic (the benchmark scripts): calc EXPR [DECIMALS].
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
# "met" if the awk condition holds, else "**missed**".
verdict() { if [ "$(awk "BEGIN { print ($1) ? 1 : 0 }")" = 1 ]; then echo met; else echo "**missed**"; fi; }

# install_packages PKG...: installs the packages not installed yet. A second
# run finds nothing missing and touches nothing (no network needed).
install_packages() {
  local missing=()
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to apt-get install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # Package scripts must not start system services (redis, nginx) here: the
  # tests start their own instances on free ports.
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The build tree of scripts/run, scripts/test and scripts/bench: one directory,
# one type, tests on. Whichever script runs first, the next one reconfigures
# nothing and rebuilds only what changed (scripts/run just builds fewer
# targets of the same tree).
MAIN_BUILD_DIR=build
MAIN_BUILD_TYPE=Release
MAIN_BUILD_OPTIONS=(-DSTATESIDE_BUILD_TESTS=ON)

# build_main [targets...]: builds those targets (default: all) in the main tree.
build_main() {
  if [ $# -gt 0 ]; then
    configure_and_build "$MAIN_BUILD_DIR" "$MAIN_BUILD_TYPE" "${MAIN_BUILD_OPTIONS[@]}" -- "$@"
  else
    configure_and_build "$MAIN_BUILD_DIR" "$MAIN_BUILD_TYPE" "${MAIN_BUILD_OPTIONS[@]}"
  fi
}

# configure_and_build BUILD_DIR BUILD_TYPE [extra cmake args...] [-- targets...]
configure_and_build() {
  local dir="$1" type="$2"
  shift 2
  local cmake_args=() targets=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  targets=("$@")
  cmake -S "$STATESIDE_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "${cmake_args[@]}" >/dev/null
  if [ ${#targets[@]} -gt 0 ]; then
    cmake --build "$dir" -j"$JOBS" --target "${targets[@]}"
  else
    cmake --build "$dir" -j"$JOBS"
  fi
}

# free_port: a TCP port on 127.0.0.1 that nothing answers on (bash's
# /dev/tcp probe), below the ephemeral range (32768 and up), where another
# process's outgoing connection could take it before it is bound.
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 12000))
    if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "$(basename "$0"): no free port found" >&2
  return 1
}

#!/usr/bin/env bash
# Installs the build into a temporary prefix, then configures, builds and runs
# the consumer project (find_package(stateside) + stateside::client) against
# it, as another project would.
#   install_consumer_test.sh CMAKE BUILD_DIR CONSUMER_SOURCE_DIR [SANITIZE]
set -euo pipefail
cmake_bin="$1" build_dir="$2" consumer_src="$3" sanitize="${4:-}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step() {  # step NAME COMMAND...: run quietly, print the output only on failure
  local name="$1"
  shift
  if ! "$@" >"$tmp/$name.log" 2>&1; then
    echo "FAILED: $name: $*" >&2
    cat "$tmp/$name.log" >&2
    exit 1
  fi
}

step install "$cmake_bin" --install "$build_dir" --prefix "$tmp/prefix"
test -f "$tmp/prefix/include/stateside/client.h" || { echo "client.h not installed" >&2; exit 1; }

flags=()
if [ "$sanitize" = "address" ]; then
  # The installed static library was built with ASan+UBSan: link the runtime.
  flags=(-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined
         -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined)
elif [ "$sanitize" = "thread" ]; then
  flags=(-DCMAKE_CXX_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread)
fi
step configure "$cmake_bin" -S "$consumer_src" -B "$tmp/build" \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Debug "${flags[@]}"
step build "$cmake_bin" --build "$tmp/build" -j2
# The consumer expects UNAVAILABLE from an absent sidecar; exit 0 means the
# library linked and worked.
"$tmp/build/consumer" "$tmp/absent.sock"

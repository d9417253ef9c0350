#!/usr/bin/env bash
# Runs one process of a local cluster and records it: deploy/local/lib.sh
# starts this under `setsid` (its own session, away from the caller's
# terminal and process group), with the output going to BASE.log.
#
#   run-one.sh BASE PROGRAM [ARGS...]
#
# Writes BASE.pid (PROGRAM's pid) as soon as it runs and BASE.rc (its exit
# status, 128+N for signal N) when it ends, so restart.sh can say whether a
# drain ended in a clean exit 0.
set -uo pipefail  # no -e: the program's failure is recorded, not fatal here

base="$1"
shift
# The child writes its own pid and then becomes the program (exec keeps the
# pid). It runs in the foreground: a background job of a non-interactive
# shell would start with SIGINT and SIGQUIT ignored.
bash -c 'echo "$$" >"$0.pid.tmp" && mv -f "$0.pid.tmp" "$0.pid" && exec "$@"' "$base" "$@"
rc=$?
echo "$rc" >"$base.rc.tmp" && mv -f "$base.rc.tmp" "$base.rc"
echo "[$(date -u +%FT%TZ)] run-one: $1 exited with status $rc"

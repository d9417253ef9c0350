#!/bin/bash
# Runs shellcheck (every severity) on the healthcheck of the images, the
# scripts of deploy/compose and those of this folder. Exit 77 (ctest:
# skipped) if shellcheck is not installed (scripts/test installs it).
#   usage: shellcheck_test.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: shellcheck_test.sh SOURCE_DIR}"
command -v shellcheck >/dev/null || { echo "shellcheck is not installed"; exit 77; }
cd "$src"
shellcheck -x deploy/docker/healthcheck.sh deploy/compose/*.sh tests/deploy_validate/*.sh \
  tests/container/*.sh
echo "shellcheck: clean"

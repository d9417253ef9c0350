#!/bin/bash
# Installs the node packages of a folder (tests/deploy_validate, tests/rules,
# client/node: package-lock.json,
# `npm ci`, npm registry only) into NODE_DIR in the build tree, never into the
# source tree. Skipped when NODE_DIR already holds this exact lock file, so a
# second run needs no network.
#   npm_setup.sh SOURCE_DIR NODE_DIR
set -euo pipefail
src="${1:?usage: npm_setup.sh SOURCE_DIR NODE_DIR}"
dest="${2:?usage: npm_setup.sh SOURCE_DIR NODE_DIR}"
command -v node >/dev/null || { echo "node is not installed (Debian: nodejs)"; exit 1; }
command -v npm >/dev/null || { echo "npm is not installed (Debian: npm)"; exit 1; }

mkdir -p "$dest"
if [ -d "$dest/node_modules" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json" &&
   cmp -s "$src/package.json" "$dest/package.json"; then
  echo "node packages up to date in $dest"
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
cd "$dest"
# --ignore-scripts: no package gets to run code at install time.
npm ci --no-audit --no-fund --ignore-scripts --prefer-offline --loglevel=error
echo "node packages installed in $dest"

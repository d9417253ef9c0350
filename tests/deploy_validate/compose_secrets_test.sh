#!/bin/bash
# deploy/compose/make-secrets.sh: strong values of the forms the sidecar
# takes (a 64-hex-char AES-256 key, a signing secret of >= 32 bytes, a
# REDIS_URL whose password is Redis' own), a 0700 directory of 0644
# files, nothing secret printed, and no overwrite of an existing secret.
#   compose_secrets_test.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: compose_secrets_test.sh SOURCE_DIR}"
gen="$src/deploy/compose/make-secrets.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

dir="$tmp/secrets"
"$gen" "$dir" >"$tmp/out" 2>&1 || fail "exit $?"
cat "$tmp/out"
[[ "$(stat -c %a "$dir")" == 700 ]] || fail "directory mode $(stat -c %a "$dir"), expected 700"
for f in redis_password redis_url session_encryption_key session_secret; do
  [[ "$(stat -c %a "$dir/$f")" == 644 ]] || fail "$f: mode $(stat -c %a "$dir/$f"), expected 644"
done
[[ "$(find "$dir" -mindepth 1 | wc -l)" == 4 ]] || fail "other files than the four secrets: $(ls -A "$dir")"
password="$(cat "$dir/redis_password")"
[[ "$password" =~ ^[0-9a-f]{48}$ ]] || fail "redis_password is not 48 hex chars"
[[ "$(cat "$dir/redis_url")" == "redis://:$password@redis:6379/0" ]] || fail "redis_url does not hold redis_password"
[[ "$(cat "$dir/session_encryption_key")" =~ ^[0-9a-f]{64}$ ]] || fail "session_encryption_key is not 64 hex chars"
[[ "$(cat "$dir/session_secret")" =~ ^[0-9a-f]{64}$ ]] || fail "session_secret is not 64 hex chars (32 bytes)"
[[ "$(cat "$dir/session_encryption_key")" != "$(cat "$dir/session_secret")" ]] || fail "two secrets are equal"
for f in redis_password session_encryption_key session_secret; do
  if grep -qF "$(cat "$dir/$f")" "$tmp/out"; then fail "the output shows $f"; fi
done

echo "--- a second run refuses and changes nothing"
sum="$(cat "$dir"/* | sha256sum)"
if "$gen" "$dir" >"$tmp/out2" 2>&1; then fail "a second run succeeded"; fi
cat "$tmp/out2"
grep -q 'refusing to overwrite' "$tmp/out2" || fail "no refusal message"
[[ "$(cat "$dir"/* | sha256sum)" == "$sum" ]] || fail "a second run changed the secrets"

echo "--- one existing secret: nothing is written"
mkdir -m 0700 "$tmp/partial"
echo keep >"$tmp/partial/session_secret"
if "$gen" "$tmp/partial" >/dev/null 2>&1; then fail "ran over an existing session_secret"; fi
[[ "$(ls -A "$tmp/partial")" == session_secret && "$(cat "$tmp/partial/session_secret")" == keep ]] ||
  fail "the partial directory changed: $(ls -A "$tmp/partial")"

if ((failures > 0)); then echo "$failures failure(s)"; exit 1; fi
echo "ok"

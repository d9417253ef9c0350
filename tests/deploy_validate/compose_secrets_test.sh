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
for f in redis_password redis_url redis_url_cluster redis_url_sentinel session_encryption_key session_secret; do
  [[ "$(stat -c %a "$dir/$f")" == 644 ]] || fail "$f: mode $(stat -c %a "$dir/$f"), expected 644"
done
[[ "$(find "$dir" -mindepth 1 | wc -l)" == 6 ]] || fail "other files than the six secrets: $(ls -A "$dir")"
password="$(cat "$dir/redis_password")"
[[ "$password" =~ ^[0-9a-f]{48}$ ]] || fail "redis_password is not 48 hex chars"
[[ "$(cat "$dir/redis_url")" == "redis://:$password@redis:6379/0" ]] || fail "redis_url does not hold redis_password"
# The Redis layouts of redis-cluster.yml and redis-sentinel.yml: their nodes
# (by service name) and the same password.
[[ "$(cat "$dir/redis_url_cluster")" == \
   "redis://:$password@redis:6379,redis-2:6379,redis-3:6379,redis-4:6379,redis-5:6379,redis-6:6379" ]] ||
  fail "redis_url_cluster is not the six nodes with redis_password"
[[ "$(cat "$dir/redis_url_sentinel")" == \
   "redis://:$password@sentinel-1:26379,sentinel-2:26379,sentinel-3:26379" ]] ||
  fail "redis_url_sentinel is not the three sentinels with redis_password"
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

echo "--- a set of the first four files only gets the two layout URLs, nothing else changes"
mkdir -m 0700 "$tmp/old"
for f in redis_password redis_url session_encryption_key session_secret; do
  cp -p "$dir/$f" "$tmp/old/$f"
done
sum="$(cat "$tmp/old"/* | sha256sum)"
"$gen" "$tmp/old" >"$tmp/out3" 2>&1 || fail "adding the layout URLs: exit $?"
cat "$tmp/out3"
[[ "$(cat "$tmp/old"/redis_password "$tmp/old"/redis_url "$tmp/old"/session_encryption_key \
      "$tmp/old"/session_secret | sha256sum)" == "$sum" ]] || fail "adding the layout URLs changed a secret"
for f in redis_url_cluster redis_url_sentinel; do
  cmp -s "$dir/$f" "$tmp/old/$f" || fail "the added $f does not hold the set's redis_password"
  [[ "$(stat -c %a "$tmp/old/$f")" == 644 ]] || fail "the added $f: mode $(stat -c %a "$tmp/old/$f")"
done
if grep -qF "$password" "$tmp/out3"; then fail "the output shows redis_password"; fi

if ((failures > 0)); then echo "$failures failure(s)"; exit 1; fi
echo "ok"

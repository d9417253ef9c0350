#!/bin/bash
# Writes the secrets of the Compose deployment, once: strong random values
# from /dev/urandom into deploy/compose/secrets/ (or DIR), the files that
# docker-compose.yml's `secrets:` mount at /run/secrets/NAME.
#
#   deploy/compose/make-secrets.sh [DIR]
#
#   redis_password          48 hex chars (Redis `requirepass`)
#   redis_url               redis://:PASSWORD@redis:6379/0 (REDIS_URL_FILE)
#   redis_url_cluster       the same password, the nodes of redis-cluster.yml
#   redis_url_sentinel      the same password, the sentinels of redis-sentinel.yml
#   session_encryption_key  64 hex chars, AES-256 (SESSION_ENCRYPTION_KEY_FILE)
#   session_secret          64 hex chars, cookie signing (SESSION_SECRET_FILE)
#
# Modes: the directory 0700 (the host's other users cannot reach the files),
# the files 0644. Outside a swarm, Compose bind-mounts a secret file with its
# host owner and mode, and the containers run as their own non-root users
# (stateside uid 10001, the redis image's redis): they read the file as
# "other". Refuses to overwrite any existing secret (every pod and every
# stored session depend on them: rotation is docs/OPERATIONS.md's procedure),
# and prints no secret. A set written before the Cluster and Sentinel
# overrides existed (the first four files only) gets the two URLs it lacks,
# from its own redis_password; nothing else of it changes.
set -euo pipefail

dir="${1:-$(cd "$(dirname "$0")" && pwd)/secrets}"
names=(redis_password redis_url session_encryption_key session_secret)
layout_urls=(redis_url_cluster redis_url_sentinel)

existing=() existing_names=""
for n in "${names[@]}" "${layout_urls[@]}"; do
  if [[ -e "$dir/$n" || -L "$dir/$n" ]]; then existing+=("$dir/$n") existing_names+="$n "; fi
done
add_layout_urls=false
if [[ "$existing_names" == "${names[*]} " ]]; then
  add_layout_urls=true
elif ((${#existing[@]} > 0)); then
  echo "make-secrets.sh: refusing to overwrite existing secrets: ${existing[*]}" >&2
  echo "make-secrets.sh: remove them first to start over (every pod and stored session uses them)" >&2
  exit 1
fi

# N random bytes as 2N lower-case hex characters.
hex() {
  od -An -v -tx1 -N "$1" /dev/urandom | tr -d ' \n'
}

mkdir -p "$dir"
chmod 0700 "$dir"
umask 077
# Each value is written to a temporary file of mode 0600, then made 0644 and
# renamed into place: a file never holds half a secret, and nothing is
# readable before the 0700 directory is in place.
put() {
  local name="$1" value="$2" tmp
  tmp="$(mktemp "$dir/.$name.XXXXXX")"
  printf '%s\n' "$value" >"$tmp"
  chmod 0644 "$tmp"
  if ! mv -n "$tmp" "$dir/$name" || [[ -e "$tmp" ]]; then
    rm -f "$tmp"
    echo "make-secrets.sh: $dir/$name appeared meanwhile: left as it is" >&2
    exit 1
  fi
}
# The URLs of the Redis layouts (compose.sh, STATESIDE_COMPOSE_REDIS): the
# Cluster's six nodes as seeds, the sentinels (the password is the data
# nodes'; the sentinels' own is the same, from redis_password).
put_layout_urls() {
  local password="$1"
  put redis_url_cluster "redis://:$password@redis:6379,redis-2:6379,redis-3:6379,redis-4:6379,redis-5:6379,redis-6:6379"
  put redis_url_sentinel "redis://:$password@sentinel-1:26379,sentinel-2:26379,sentinel-3:26379"
}
if [[ "$add_layout_urls" == true ]]; then
  put_layout_urls "$(cat "$dir/redis_password")"
  echo "make-secrets.sh: added ${layout_urls[*]} to the existing secrets in $dir"
  exit 0
fi
redis_password="$(hex 24)"
put redis_password "$redis_password"
put redis_url "redis://:$redis_password@redis:6379/0"
put_layout_urls "$redis_password"
put session_encryption_key "$(hex 32)"
put session_secret "$(hex 32)"

echo "make-secrets.sh: wrote ${names[*]} ${layout_urls[*]} in $dir (directory 0700, files 0644)"

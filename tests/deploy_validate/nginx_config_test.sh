#!/bin/bash
# `nginx -t` on deploy/compose/nginx.conf with the shared deploy/nginx/ parts.
# The Compose file names pods (app-1:8080, ...) that only Docker's DNS knows,
# so the test checks a rendered copy: each pod becomes a loopback port, the
# /etc/nginx/radar includes point into the repository, and the pid, temp and
# log paths into a temp dir. Everything else is nginx's own check of the
# real files. Debian 12's nginx (1.22) predates the upstream `resolve`
# parameter (1.27.3, the Compose image has it): the copy drops it there, and
# the consistency test checks that every pod line has it. Then the copy
# runs, with no pod up: every request gets nginx's JSON 503.
#   nginx_config_test.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: nginx_config_test.sh SOURCE_DIR}"
conf="$src/deploy/compose/nginx.conf"
command -v nginx >/dev/null || { echo "nginx is not installed (scripts/lib.sh TEST_PACKAGES: nginx-light)"; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/temp"

version="$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')"
has_resolve=0
if [ "$(printf '%s\n' 1.27.3 "$version" | sort -V | head -n1)" = 1.27.3 ]; then has_resolve=1; fi

# Free loopback ports (bound by nobody when chosen): the pods' (where nothing
# will listen), the site's and nginx's health server's.
free_ports() {
  python3 -c 'import socket,sys
s=[socket.socket() for _ in range(int(sys.argv[1]))]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}
read -r pod1 pod2 pod3 site health <<<"$(free_ports 5)"

# app-N:8080 -> a free loopback port; only the pod lines of the upstream.
sed_args=(
  -e "s|/etc/nginx/radar/|$src/deploy/nginx/|g"
  -e "s|^\([[:space:]]*server[[:space:]]\+\)app-1:8080|\1127.0.0.1:$pod1|"
  -e "s|^\([[:space:]]*server[[:space:]]\+\)app-2:8080|\1127.0.0.1:$pod2|"
  -e "s|^\([[:space:]]*server[[:space:]]\+\)app-3:8080|\1127.0.0.1:$pod3|"
  -e "s|^\([[:space:]]*\)listen 8080;|\1listen 127.0.0.1:$site;|"
  -e "s|^\([[:space:]]*\)listen 127.0.0.1:8081;|\1listen 127.0.0.1:$health;|"
  -e "s|/dev/stdout|$tmp/access.log|"
  -e "s|^pid .*|pid $tmp/nginx.pid;|"
  -e "s|^http {|http {\n  client_body_temp_path $tmp/temp/body;\n  proxy_temp_path $tmp/temp/proxy;\n  fastcgi_temp_path $tmp/temp/fastcgi;\n  uwsgi_temp_path $tmp/temp/uwsgi;\n  scgi_temp_path $tmp/temp/scgi;|"
)
[ $has_resolve -eq 1 ] || sed_args+=(-e "s|[[:space:]]resolve;|;|")
# The image's `nginx` user may not exist here.
getent passwd nginx >/dev/null || sed_args+=(-e "s|^user nginx;|# (user nginx: not on this machine)|")
sed "${sed_args[@]}" "$conf" >"$tmp/nginx.conf"

echo "--- rendered differences (nginx $version) ---"
diff -u "$conf" "$tmp/nginx.conf" || true
echo "--- nginx -t ---"
grep -q "server 127.0.0.1:$pod1 " "$tmp/nginx.conf" || { echo "FAIL: the pod lines were not rendered"; exit 1; }
grep -q "listen 127.0.0.1:$site;" "$tmp/nginx.conf" || { echo "FAIL: the site's listener was not rendered"; exit 1; }
nginx -t -p "$tmp" -e "$tmp/error.log" -c "$tmp/nginx.conf"

echo "--- nginx -t must refuse a broken copy (the check can fail)"
sed 's|^http {|http {\n  stateside_no_such_directive on;|' "$tmp/nginx.conf" >"$tmp/broken.conf"
if nginx -t -q -p "$tmp" -e "$tmp/error.log" -c "$tmp/broken.conf" 2>"$tmp/broken.err"; then
  echo "FAIL: nginx -t accepted an unknown directive"
  exit 1
fi
grep -q stateside_no_such_directive "$tmp/broken.err" || { cat "$tmp/broken.err"; echo "FAIL: unexpected refusal"; exit 1; }

echo "--- no pod up: nginx answers a JSON 503 with Retry-After"
command -v curl >/dev/null || { echo "curl is not installed (scripts/lib.sh TEST_PACKAGES)"; exit 1; }
nginx -p "$tmp" -e "$tmp/error.log" -c "$tmp/nginx.conf"
trap 'kill "$(cat "$tmp/nginx.pid" 2>/dev/null)" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$health/nginx-health" && break
  sleep 0.1
done
for path in / /ws; do
  curl -s -D "$tmp/headers" -o "$tmp/body" "http://127.0.0.1:$site$path" || { echo "FAIL: no answer on $path"; cat "$tmp/error.log"; exit 1; }
  tr -d '\r' <"$tmp/headers" >"$tmp/h"
  head -n1 "$tmp/h" | grep -q '^HTTP/1.1 503 ' || { echo "FAIL: $path:"; cat "$tmp/h"; exit 1; }
  grep -qi '^content-type: application/json' "$tmp/h" || { echo "FAIL: $path is not JSON"; cat "$tmp/h"; exit 1; }
  grep -qi '^retry-after: 2$' "$tmp/h" || { echo "FAIL: $path has no Retry-After"; cat "$tmp/h"; exit 1; }
  grep -qx '{"error":"no pod available"}' "$tmp/body" || { echo "FAIL: $path body:"; cat "$tmp/body"; exit 1; }
  echo "$path: 503 $(cat "$tmp/body")"
done
echo ok

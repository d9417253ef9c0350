#!/bin/sh
# The nginx container's command (docker-compose.yml): nginx on
# /etc/nginx/nginx.conf (deploy/compose/nginx.conf), adapted to the engine
# and the nginx it runs on, in a copy at /tmp/nginx.conf:
#
# - `resolver`: the container's own DNS server, the first nameserver of its
#   /etc/resolv.conf. Docker's embedded DNS is 127.0.0.11 (the file's own
#   value); Podman's (the CNI dnsname plugin, or aardvark-dns) listens on the
#   Compose network's gateway, whose address Podman chooses.
# - nginx before 1.27.3 (Debian 12's is 1.22) has no `resolve` on upstream
#   servers: the copy drops it, and nginx resolves the pods when it loads its
#   configuration. A restarted pod container comes back with a new address,
#   so deploy/compose/rolling-update.sh reloads nginx (SIGHUP) after each pod.
#
# nginx stays the container's main process (exec): its stop signal and a
# SIGHUP reach it, and a reload reads /tmp/nginx.conf again.
set -eu

src=/etc/nginx/nginx.conf
conf=/tmp/nginx.conf

ns="$(sed -n 's/^nameserver[[:space:]][[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/resolv.conf | head -n 1)"
[ -n "$ns" ] || { echo "nginx-start: no nameserver in /etc/resolv.conf" >&2; exit 1; }
case "$ns" in
  *:*) ns="[$ns]" ;;  # IPv6
esac

version="$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')"
drop_resolve=""
if [ "$(printf '%s\n' 1.27.3 "$version" | sort -V | head -n 1)" != 1.27.3 ]; then
  echo "nginx-start: nginx $version has no upstream 'resolve': the pods are resolved when the configuration is (re)loaded" >&2
  drop_resolve='s/[[:space:]]resolve;/;/'
fi

sed -e "s|^\([[:space:]]*resolver[[:space:]][[:space:]]*\)[^[:space:]]*|\1$ns|" \
    -e "${drop_resolve:-s/^//}" "$src" >"$conf"
exec nginx -c "$conf" -g 'daemon off;'

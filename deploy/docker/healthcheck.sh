#!/bin/bash
# stateside-healthcheck URL_PATH [ADDRESS]: the images' HEALTHCHECK (and the
# Compose healthchecks). Exit 0 if `GET URL_PATH` on ADDRESS answers 200 within
# 2 seconds, else 1. ADDRESS is HOST:PORT, [V6]:PORT or PORT; it defaults to
# $STATESIDE_ADMIN_ADDR, then to the sidecar's default 127.0.0.1:9464. A
# wildcard host (0.0.0.0, ::) is probed on loopback.
#
# Why bash's /dev/tcp and not curl: debian:bookworm-slim has no curl, and
# installing it would add libcurl and a dozen libraries (TLS, LDAP, SSH, ...)
# to images that otherwise hold only what the binaries load. bash is already
# in the base image. The probe is plain HTTP/1.1 on loopback, nothing more.
set -u

path="${1:-}"
addr="${2:-${STATESIDE_ADMIN_ADDR:-127.0.0.1:9464}}"
case "$path" in
  /*) ;;
  *) echo "usage: stateside-healthcheck URL_PATH [HOST:PORT]" >&2; exit 2 ;;
esac

port="${addr##*:}"
host="${addr%:*}"
[ "$host" = "$addr" ] && host=""          # a bare PORT
host="${host#[}"; host="${host%]}"        # [v6] -> v6
case "$host" in
  ""|0.0.0.0|::) host=127.0.0.1 ;;
esac
case "$port" in
  ''|*[!0-9]*) echo "stateside-healthcheck: bad address '$addr'" >&2; exit 2 ;;
esac

# The connect on loopback is answered at once (or refused); the answer gets 2 s.
{ exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || { echo "no listener on $host:$port"; exit 1; }
printf 'GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: stateside-healthcheck\r\nConnection: close\r\n\r\n' \
  "$path" "$host" >&3
status_line=""
IFS= read -r -t 2 status_line <&3 || true
exec 3<&-
status_line="${status_line%$'\r'}"
echo "$host:$port$path: ${status_line:-no answer}"
case "$status_line" in
  "HTTP/1."?" 200 "*|"HTTP/1."?" 200") exit 0 ;;
  *) exit 1 ;;
esac

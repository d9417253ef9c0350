#!/bin/bash
# The per-address limits of deploy/nginx/ (limit_req, limit_conn) on a real
# nginx: the configuration deploy/local/up.sh generates (--config-only), in
# front of a stand-in for the pods (a second nginx answering JSON, and slowly
# on /slow). Proves that
#   - a client address over 50 r/s + a burst of 100 gets 429 with a JSON
#     body, while its first 100 requests pass;
#   - 127.0.0.1 is exempt (the local cluster's tests and load runs);
#   - a 65th request in progress from one address gets 429.
# Clients other than 127.0.0.1 are made by binding curl to 127.0.0.2.
#   nginx_limits_test.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: nginx_limits_test.sh SOURCE_DIR}"
command -v nginx >/dev/null || { echo "nginx is not installed (scripts/lib.sh TEST_PACKAGES: nginx-light)"; exit 1; }

tmp="$(mktemp -d)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A base port whose nginx port and first two pod ports (base + 11, + 12, see
# deploy/local/lib.sh app_port) are free, below the ephemeral range (32768
# and up), where another test's outgoing connection could take one of them
# between this check and nginx's bind.
port=""
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 12000))
  if ! listening "$p" && ! listening $((p + 11)) && ! listening $((p + 12)); then port=$p; break; fi
done
[ -n "$port" ] || fail "no free port"

STATESIDE_LOCAL_DIR="$tmp/local" STATESIDE_LOCAL_PORT="$port" \
  bash "$src/deploy/local/up.sh" --config-only 2 >/dev/null
front="$tmp/local/nginx"
grep -q 'limit_req ' "$src/deploy/nginx/radar.conf" || fail "radar.conf has no limit_req"

# The pods' stand-in. /slow sends its body at 1 byte/s, so a request to it
# stays in progress (at the front nginx too) for the whole test.
mkdir -p "$tmp/pods/tmp"
cat >"$tmp/pods/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid "$tmp/pods/nginx.pid";
error_log "$tmp/pods/error.log" warn;
events { worker_connections 1024; }
http {
  client_body_temp_path "$tmp/pods/tmp/body";
  proxy_temp_path "$tmp/pods/tmp/proxy";
  fastcgi_temp_path "$tmp/pods/tmp/fastcgi";
  uwsgi_temp_path "$tmp/pods/tmp/uwsgi";
  scgi_temp_path "$tmp/pods/tmp/scgi";
  access_log off;
  server {
    listen 127.0.0.1:$((port + 11));
    listen 127.0.0.1:$((port + 12));
    default_type application/json;
    location / { return 200 '{"pod":true}\n'; }
    location = /slow { limit_rate 1; return 200 '{"pod":true,"slow":"................................................................"}\n'; }
  }
}
EOF
nginx -p "$tmp/pods" -e "$tmp/pods/error.log" -c "$tmp/pods/nginx.conf" &
pids+=($!)
nginx -p "$front" -e "$front/error.log" -c "$front/nginx.conf" &
pids+=($!)

url="http://127.0.0.1:$port"
ready=0
for _ in $(seq 1 100); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/")" = 200 ]; then ready=1; break; fi
  sleep 0.1
done
[ $ready -eq 1 ] || { cat "$front/error.log" "$tmp/pods/error.log" 2>/dev/null; fail "nginx did not answer 200"; }

# burst FROM N: N requests on one keep-alive connection, as fast as curl
# sends them; prints one "code content-type" line per request and keeps the
# last body in $tmp/last.
# One curl, N requests in order (a URL glob); line i of the output is the
# status of request i, whose body is in $tmp/body_i.
burst() {
  local from="$1" n="$2"
  curl -s --interface "$from" -w '%{http_code} %{content_type}\n' \
    "$url/?n=[1-$n]" -o "$tmp/body_#1"
}

echo "--- 300 requests from 127.0.0.1 (exempt): all pass"
out="$(burst 127.0.0.1 300)"
ok=$(grep -c '^200 ' <<<"$out" || true)
echo "200: $ok"
[ "$ok" -eq 300 ] || fail "loopback was limited: $(sort <<<"$out" | uniq -c)"

# 600: even at 60 requests a second (a loaded machine) the last ones are
# past 50 r/s + 100.
echo "--- 600 requests from 127.0.0.2: the burst passes, the rest is 429 JSON"
out="$(burst 127.0.0.2 600)"
sort <<<"$out" | uniq -c
ok=$(grep -c '^200 ' <<<"$out" || true)
limited=$(grep -c '^429 application/json' <<<"$out" || true)
[ "$ok" -ge 100 ] || fail "fewer than the burst of 100 passed"
[ "$limited" -ge 1 ] || fail "nothing over 50 r/s + 100 was refused with 429 JSON"
[ $((ok + limited)) -eq 600 ] || fail "answers other than 200 and 429"
# The body of the first refused request (which one it is depends on the
# machine's pace: past the burst, one request in 20 ms still passes).
first=$(awk '/^429 / { print NR; exit }' <<<"$out")
body="$(cat "$tmp/body_$first")"
[ "$body" = '{"error":"too many requests"}' ] || fail "429 body: $body"
echo "429 body: $body"

echo "--- 64 requests in progress from 127.0.0.3, then a 65th is refused"
for _ in $(seq 1 64); do
  curl -s --interface 127.0.0.3 --max-time 60 -o /dev/null "$url/slow" &
  pids+=($!)
done
# Paced below 50 r/s so limit_req never answers these probes: a 429 here is
# limit_conn's once all 64 slow requests are in progress (up to 30 s: on a
# loaded machine 64 curl processes take a while to connect).
refused=0
for _ in $(seq 1 300); do
  if [ "$(curl -s --interface 127.0.0.3 -o /dev/null -w '%{http_code}' "$url/")" = 429 ]; then
    refused=1
    break
  fi
  sleep 0.1
done
[ $refused -eq 1 ] || fail "no 429 with 64 requests of one address in progress"
grep -q 'limiting connections' "$front/error.log" || fail "the refusal was not limit_conn's"
echo "--- another address is not affected"
[ "$(curl -s --interface 127.0.0.4 -o /dev/null -w '%{http_code}' "$url/")" = 200 ] || fail "127.0.0.4 refused"
echo ok

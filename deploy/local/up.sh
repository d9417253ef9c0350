#!/usr/bin/env bash
# Starts a local Stateside cluster on loopback: redis-server, N pods (a
# `stateside` sidecar and a `radar-app` each, sharing a socket directory) and
# nginx in front on one port. Returns once every process is ready.
#
#   deploy/local/up.sh [N]                N pods (default 3, at most 19)
#   deploy/local/up.sh --app node [N]     the pods run the Node.js example
#                                         (client/node/example) in place of
#                                         radar-app: same settings and ports
#                                         (or STATESIDE_LOCAL_APP=node)
#   STATESIDE_LOCAL_REDIS=cluster deploy/local/up.sh
#                                         the same on a Redis Cluster of six
#                                         nodes (=sentinel: a master, a replica
#                                         and three sentinels)
#   deploy/local/up.sh --config-only [N]  only write the secrets and the redis
#                                         and nginx configuration (no process)
#
# Settings: STATESIDE_LOCAL_DIR, STATESIDE_LOCAL_PORT, STATESIDE_BIN_DIR,
# STATESIDE_LOCAL_APP, STATESIDE_LOCAL_TIMEOUT (see deploy/local/lib.sh). Stop with down.sh.
# Exit 0 when all is ready; 1 with a message (and everything it started
# stopped again) otherwise, or if a cluster already runs in that directory.
set -euo pipefail
PROG="up.sh"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pods=3 config_only=0 count_given=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --config-only) config_only=1 ;;
    --app) [ $# -ge 2 ] || die "--app needs radar or node"; LOCAL_APP="$2"; shift ;;
    --app=*) LOCAL_APP="${1#--app=}" ;;
    *)
      [ $count_given -eq 0 ] || die "one pod count at most (see --help)"
      if ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt $MAX_PODS ]; then
        die "the pod count must be 1 to $MAX_PODS (got '$1')"
      fi
      pods="$1" count_given=1 ;;
  esac
  shift
done
check_env

# --- checks before anything starts ---------------------------------------------

need_command() { command -v "$1" >/dev/null || die "'$1' is missing (scripts/test installs it: $2)"; }
need_command openssl openssl
need_command nginx nginx-light
if [ $config_only -eq 0 ]; then
  need_command setsid util-linux
  need_command curl curl
  need_command redis-server redis-server
  need_command redis-cli redis-tools
  exes=(stateside radar-app)
  if [ "$LOCAL_APP" = node ]; then
    exes=(stateside)
    need_command node nodejs
    # The client's packages and ws (the example's /ws): npm ci in
    # client/node, or NODE_PATH (the tests' copy in the build tree).
    node -e 'require(process.argv[1]); require(require.resolve("ws", { paths: [process.argv[1]] }))' \
      "$LOCAL_ROOT/client/node" 2>/dev/null ||
      die "the Node.js client's packages are missing: run npm ci in client/node (or set NODE_PATH to a node_modules that has them)"
  fi
  for exe in "${exes[@]}"; do
    [ -x "$BIN_DIR/$exe" ] ||
      die "$BIN_DIR/$exe is missing: build it (cmake --build build --target $exe) or set STATESIDE_BIN_DIR"
  done

  # One cluster per directory: a second up.sh would fight over the files.
  running=()
  for base in $(redis_bases) "$(nginx_base)" "$LOCAL_DIR"/pod-*/{sidecar,app}.pid; do
    base="${base%.pid}"
    is_running "$base" && running+=("${base#"$LOCAL_DIR"/} (pid $(pid_of "$base"))")
  done
  [ ${#running[@]} -eq 0 ] ||
    die "a cluster already runs in $LOCAL_DIR: ${running[*]}; stop it with deploy/local/down.sh"

  # Every port free, so a clash is one clear message instead of a process
  # that dies on bind with its reason in a log.
  mapfile -t ports < <(echo "$LOCAL_PORT"; redis_ports)
  for i in $(seq 1 "$pods"); do ports+=("$(app_port "$i")" "$(admin_port "$i")"); done
  for port in "${ports[@]}"; do
    if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is in use (STATESIDE_LOCAL_PORT=$LOCAL_PORT uses $LOCAL_PORT, $(redis_ports | tr '\n' ' ')$(app_port 1)+, $(admin_port 1)+, one each per pod; pick another)"
    fi
  done
  # A Unix socket path has at most 107 bytes.
  sock="$(pod_socket "$pods")"
  [ ${#sock} -le 107 ] || die "STATESIDE_LOCAL_DIR is too long: $sock exceeds the 107 bytes of a Unix socket path"
fi

# --- files ------------------------------------------------------------------------

mkdir -p "$LOCAL_DIR"
chmod 0700 "$LOCAL_DIR"
mkdir -p "$LOCAL_DIR/secrets" "$LOCAL_DIR/redis" "$LOCAL_DIR/nginx/tmp"

# Secrets: generated once per directory and kept (a later up.sh reuses them),
# readable by this user only.
(
  umask 077
  cd "$LOCAL_DIR/secrets"
  [ -s encryption_key ] || openssl rand -hex 32 >encryption_key   # AES-256: 64 hex chars
  [ -s session_secret ] || openssl rand -hex 32 >session_secret   # >= 32 bytes
  [ -s redis_password ] || openssl rand -hex 24 >redis_password   # hex: no escaping in a URL
  chmod 0600 encryption_key session_secret redis_password
)
chmod 0700 "$LOCAL_DIR/secrets"

write_redis_conf

# nginx: a top-level file around the shared deploy/nginx/ parts, with every
# path inside $LOCAL_DIR/nginx (it runs as this user and never touches
# /var/lib/nginx or /var/log/nginx). `daemon off`: nginx stays the process
# run-one.sh started, so its pid, exit status and session are tracked like
# every other process (with `daemon on` it would fork away from them).
nginx_dir="$LOCAL_DIR/nginx"
nginx_user=""
if [ "$(id -u)" -eq 0 ]; then
  # A master running as root switches its workers to `nobody`, who cannot
  # enter this private directory (temp files); give them its owner instead.
  nginx_user="user $(stat -c %U "$LOCAL_DIR") $(stat -c %G "$LOCAL_DIR");"
fi
{
  echo "# Generated by deploy/local/up.sh for $LOCAL_DIR; rewritten on every start."
  echo "# Check: nginx -t -p $nginx_dir -e $nginx_dir/error.log -c $nginx_dir/nginx.conf"
  [ -z "$nginx_user" ] || echo "$nginx_user"
  cat <<EOF
daemon off;
# One worker: loopback traffic of tests and demos; the balancer state is
# shared through the upstream zone anyway.
worker_processes 1;
pid "$nginx_dir/nginx.pid";
error_log "$nginx_dir/error.log" warn;

events {
  worker_connections 1024;
}

http {
  client_body_temp_path "$nginx_dir/tmp/client_body";
  proxy_temp_path "$nginx_dir/tmp/proxy";
  fastcgi_temp_path "$nginx_dir/tmp/fastcgi";
  uwsgi_temp_path "$nginx_dir/tmp/uwsgi";
  scgi_temp_path "$nginx_dir/tmp/scgi";

  include "$LOCAL_ROOT/deploy/nginx/radar-http.conf";
  access_log "$nginx_dir/access.log" radar;

  upstream radar {
    include "$LOCAL_ROOT/deploy/nginx/radar-upstream.conf";
    # A pod that failed 3 times within fail_timeout is skipped for
    # fail_timeout, then tried again (deploy/compose/nginx.conf says why).
EOF
  for i in $(seq 1 "$pods"); do
    echo "    server 127.0.0.1:$(app_port "$i") max_fails=3 fail_timeout=5s;  # pod-$i"
  done
  cat <<EOF
  }

  server {
    listen 127.0.0.1:$LOCAL_PORT;
    include "$LOCAL_ROOT/deploy/nginx/radar.conf";
  }
}
EOF
} >"$nginx_dir/nginx.conf"
NGINX_ARGS=(-p "$nginx_dir" -e "$nginx_dir/error.log" -c "$nginx_dir/nginx.conf")

if [ $config_only -eq 1 ]; then
  echo "configuration written to $LOCAL_DIR (nginx: nginx ${NGINX_ARGS[*]})"
  exit 0
fi

# --- processes -----------------------------------------------------------------------

# A failed or interrupted start leaves nothing running (the logs stay).
started=0
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ] && [ $started -eq 1 ]; then
    say "stopping what was started (logs stay in $LOCAL_DIR)"
    STATESIDE_LOCAL_DIR="$LOCAL_DIR" STATESIDE_LOCAL_PORT="$LOCAL_PORT" \
      bash "$LOCAL_ROOT/deploy/local/down.sh" >/dev/null 2>&1 || true
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# Fresh logs for a fresh cluster; restart.sh appends to them.
rm -f "$LOCAL_DIR"/pod-*/*.log "$LOCAL_DIR"/redis/*.log "$LOCAL_DIR"/redis/*.nodes "$nginx_dir"/*.log "$nginx_dir"/master.*
rm -rf "$LOCAL_DIR"/pod-*
echo "$pods" >"$LOCAL_DIR/pods"
save_cluster_env
started=1
deadline=$((SECONDS + READY_TIMEOUT))

say "redis ($LOCAL_REDIS) on 127.0.0.1:$(redis_ports | tr '\n' ' ')"
start_redis "$deadline" || exit 1

say "$pods pods (sidecar admin on 127.0.0.1:$(admin_port 1)-$(admin_port "$pods"), $(app_name) on 127.0.0.1:$(app_port 1)-$(app_port "$pods"))"
for i in $(seq 1 "$pods"); do start_pod "$i" || exit 1; done
for i in $(seq 1 "$pods"); do wait_pod "$deadline" "$i" || exit 1; done

say "nginx on 127.0.0.1:$LOCAL_PORT"
nginx -t -q "${NGINX_ARGS[@]}" 2>"$nginx_dir/config-check.log" ||
  { cat "$nginx_dir/config-check.log" >&2; die "nginx rejected $nginx_dir/nginx.conf"; }
spawn "$(nginx_base)" nginx "${NGINX_ARGS[@]}"
wait_ready "$deadline" nginx "$(nginx_base)" nginx_ready || exit 1

trap - EXIT
cat <<EOF

Stateside local cluster: $pods pods behind nginx
  URL        http://127.0.0.1:$LOCAL_PORT/   ($(app_name); try: curl -si -H 'Content-Type: application/json' -d '{"user":"alice"}' http://127.0.0.1:$LOCAL_PORT/login)
  pods       pod-1..pod-$pods: $(app_name) 127.0.0.1:$(app_port 1)-$(app_port "$pods"), sidecar admin 127.0.0.1:$(admin_port 1)-$(admin_port "$pods")
  redis      $LOCAL_REDIS: 127.0.0.1:$(redis_ports | tr '\n' ' ')(password in $LOCAL_DIR/secrets/redis_password)
  status     deploy/local/status.sh
  logs       $LOCAL_DIR/pod-<i>/{sidecar,app}.log, $LOCAL_DIR/redis/*.log, $nginx_dir/{access,error}.log
  restart    deploy/local/restart.sh 2      (rolling restart of pod-2)
  stop       deploy/local/down.sh
EOF
if [ -n "${STATESIDE_LOCAL_DIR:-}" ] || [ -n "${STATESIDE_LOCAL_PORT:-}" ]; then
  echo "  (the scripts need the same STATESIDE_LOCAL_DIR=$LOCAL_DIR STATESIDE_LOCAL_PORT=$LOCAL_PORT)"
fi

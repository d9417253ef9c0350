# shellcheck shell=bash
# Shared by deploy/local/{up,down,status,restart}.sh: where a local cluster
# lives, its port layout, and how its processes are started, checked and
# stopped. Sourced, not executed; the including script sets PROG first.
#
# Environment (tests set these to run clusters side by side):
#   STATESIDE_LOCAL_DIR      state dir (default /tmp/stateside-local)
#   STATESIDE_LOCAL_PORT     nginx port (default 8080); derived from it:
#                            redis PORT+1, pod i's radar-app PORT+10+i and
#                            sidecar admin PORT+30+i (so clusters need their
#                            PORTs at least 50 apart)
#   STATESIDE_LOCAL_REDIS    the Redis layout: standalone (default; one
#                            redis-server on PORT+1), cluster (a Redis Cluster
#                            of three masters and three replicas on PORT+1 to
#                            PORT+6, bus ports 10000 above) or sentinel (a
#                            master on PORT+1, its replica on PORT+2 and three
#                            sentinels on PORT+3 to PORT+5)
#   STATESIDE_LOCAL_APP      the pods' app: radar (default: radar-app) or
#                            node (client/node/example/server.js, the same
#                            routes on the Node.js client; up.sh --app node)
#   STATESIDE_BIN_DIR        stateside and radar-app (default <repo>/build/bin)
#   STATESIDE_LOCAL_TIMEOUT  seconds to wait for readiness (default 60)
# Every other stateside / radar-app setting can be given through its usual
# environment variable (e.g. RADAR_TEST_HOOKS=true, STATESIDE_LOG_LEVEL=debug):
# the processes inherit the caller's environment.
#
# Each process NAME has, next to its log NAME.log: NAME.pid (the program),
# NAME.sid (its session: run-one.sh started with setsid, so every process it
# leaves behind, nginx workers included, is found by session) and NAME.rc
# (exit status, once it has ended).

LOCAL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="${STATESIDE_LOCAL_DIR:-/tmp/stateside-local}"
LOCAL_PORT="${STATESIDE_LOCAL_PORT:-8080}"
LOCAL_REDIS="${STATESIDE_LOCAL_REDIS:-standalone}"
LOCAL_APP="${STATESIDE_LOCAL_APP:-radar}"
# The Node.js example app (LOCAL_APP=node).
NODE_APP="$LOCAL_ROOT/client/node/example/server.js"
# The master name the sentinels watch (STATESIDE_LOCAL_REDIS=sentinel).
SENTINEL_MASTER=stateside
BIN_DIR="${STATESIDE_BIN_DIR:-$LOCAL_ROOT/build/bin}"
READY_TIMEOUT="${STATESIDE_LOCAL_TIMEOUT:-60}"
# App ports PORT+11.. must stay below the admin ports PORT+31..
MAX_PODS=19

# Drain settings of every pod. The pre-stop delay exists for Kubernetes,
# where endpoint removal takes a moment to reach the load balancers; here
# nginx learns that a pod is gone from the refused connect and retries that
# request on another pod at once, so a short delay is enough. It is kept
# above zero so the local cluster goes through the same steps as a real pod.
PRESTOP_DELAY="${STATESIDE_PRESTOP_DELAY:-1s}"
DRAIN_TIMEOUT="${STATESIDE_DRAIN_TIMEOUT:-10s}"
SHUTDOWN_TIMEOUT="${STATESIDE_SHUTDOWN_TIMEOUT:-20s}"

die() { echo "$PROG: $*" >&2; exit 1; }
say() { echo "$PROG: $*" >&2; }
# An unexpected failure under `set -e` says where, instead of a silent exit.
trap 'say "failed: line $LINENO: $BASH_COMMAND"' ERR

# Checks the environment once, before anything is touched.
check_env() {
  if ! [[ "$LOCAL_PORT" =~ ^[0-9]+$ ]] || [ "$LOCAL_PORT" -lt 1024 ] ||
     [ "$LOCAL_PORT" -gt $((65535 - 30 - MAX_PODS)) ]; then
    die "STATESIDE_LOCAL_PORT must be a number from 1024 to $((65535 - 30 - MAX_PODS)) (got '$LOCAL_PORT')"
  fi
  case "$LOCAL_REDIS" in
    standalone|sentinel) ;;
    cluster)
      # The cluster bus listens 10000 above each node's port.
      [ "$LOCAL_PORT" -le $((65535 - 10000 - 6)) ] ||
        die "STATESIDE_LOCAL_REDIS=cluster needs STATESIDE_LOCAL_PORT at most $((65535 - 10000 - 6)) (bus ports are 10000 above the nodes')" ;;
    *) die "STATESIDE_LOCAL_REDIS must be standalone, cluster or sentinel (got '$LOCAL_REDIS')" ;;
  esac
  case "$LOCAL_APP" in
    radar|node) ;;
    *) die "the app must be radar or node (got '$LOCAL_APP')" ;;
  esac
  [[ "$READY_TIMEOUT" =~ ^[1-9][0-9]*$ ]] ||
    die "STATESIDE_LOCAL_TIMEOUT must be a number of seconds (got '$READY_TIMEOUT')"
  [ -n "$LOCAL_DIR" ] || die "STATESIDE_LOCAL_DIR is empty"
  case "$LOCAL_DIR" in /*) ;; *) LOCAL_DIR="$PWD/$LOCAL_DIR" ;; esac
  LOCAL_DIR="${LOCAL_DIR%/}"
  [ -n "$LOCAL_DIR" ] || die "STATESIDE_LOCAL_DIR must not be /"
  # The config files quote paths; a quote or a newline would break them.
  case "$LOCAL_DIR$BIN_DIR" in *[\"\'\\$'\n']*) die "paths with quotes, backslashes or newlines are not supported: $LOCAL_DIR" ;; esac
}

# Redis data node K (1 by default: the standalone node, the first Cluster
# node, the Sentinel layout's first master) and sentinel K (1 to 3).
redis_port() { echo $((LOCAL_PORT + ${1:-1})); }
sentinel_port() { echo $((LOCAL_PORT + 2 + $1)); }
# The data nodes of the layout, one number a line.
redis_nodes() {
  case "$LOCAL_REDIS" in
    cluster) seq 1 6 ;;
    sentinel) seq 1 2 ;;
    *) echo 1 ;;
  esac
}
sentinels() { if [ "$LOCAL_REDIS" = sentinel ]; then seq 1 3; fi; }
app_port() { echo $((LOCAL_PORT + 10 + $1)); }
admin_port() { echo $((LOCAL_PORT + 30 + $1)); }
pod_dir() { echo "$LOCAL_DIR/pod-$1"; }
pod_socket() { echo "$LOCAL_DIR/pod-$1/sock/stateside.sock"; }
redis_base() {
  if [ "$LOCAL_REDIS" = standalone ]; then echo "$LOCAL_DIR/redis/redis"; else echo "$LOCAL_DIR/redis/node-${1:-1}"; fi
}
sentinel_base() { echo "$LOCAL_DIR/redis/sentinel-$1"; }
# Every Redis process of the layout: data nodes, then sentinels.
redis_bases() {
  local k
  for k in $(redis_nodes); do redis_base "$k"; done
  for k in $(sentinels); do sentinel_base "$k"; done
}
# Every port the layout listens on (a Cluster's bus ports too).
redis_ports() {
  local k
  for k in $(redis_nodes); do
    redis_port "$k"
    if [ "$LOCAL_REDIS" = cluster ]; then echo $(($(redis_port "$k") + 10000)); fi
  done
  for k in $(sentinels); do sentinel_port "$k"; done
}
# REDIS_URL of the sidecars: the node, the Cluster's seeds, or the
# sentinels (whose password is the data nodes' here).
redis_url() {
  local k hosts=""
  case "$LOCAL_REDIS" in
    cluster) for k in $(redis_nodes); do hosts+="${hosts:+,}127.0.0.1:$(redis_port "$k")"; done ;;
    sentinel) for k in $(sentinels); do hosts+="${hosts:+,}127.0.0.1:$(sentinel_port "$k")"; done ;;
    *) hosts="127.0.0.1:$(redis_port)" ;;
  esac
  echo "redis://:$(cat "$LOCAL_DIR/secrets/redis_password")@$hosts"
}
nginx_base() { echo "$LOCAL_DIR/nginx/master"; }
sidecar_base() { echo "$LOCAL_DIR/pod-$1/sidecar"; }
app_base() { echo "$LOCAL_DIR/pod-$1/app"; }

# The pod numbers of the cluster in LOCAL_DIR (from up.sh's record).
pod_count() { cat "$LOCAL_DIR/pods" 2>/dev/null || echo 0; }

# save_cluster_env: up.sh records how the cluster was started (ports, binaries,
# drain settings, the app, and the caller's RADAR_*, STATESIDE_LOG_* and
# NODE_PATH settings), so
# that down.sh, status.sh and restart.sh, run later from another shell, act on
# the cluster as it is, and a restarted pod gets the settings the others have.
save_cluster_env() {
  local v
  {
    printf 'LOCAL_PORT=%q\nBIN_DIR=%q\nREADY_TIMEOUT=%q\n' "$LOCAL_PORT" "$BIN_DIR" "$READY_TIMEOUT"
    printf 'LOCAL_REDIS=%q\nLOCAL_APP=%q\n' "$LOCAL_REDIS" "$LOCAL_APP"
    printf 'PRESTOP_DELAY=%q\nDRAIN_TIMEOUT=%q\nSHUTDOWN_TIMEOUT=%q\n' \
      "$PRESTOP_DELAY" "$DRAIN_TIMEOUT" "$SHUTDOWN_TIMEOUT"
    for v in $(compgen -e); do
      case "$v" in RADAR_*|STATESIDE_LOG_*|NODE_PATH) printf 'export %s=%q\n' "$v" "${!v}" ;; esac
    done
  } >"$LOCAL_DIR/cluster.env"
}

# load_cluster_env: the record of the running cluster wins over the caller's
# environment (see save_cluster_env). No record: the caller's settings.
load_cluster_env() {
  # shellcheck disable=SC1091  # written by save_cluster_env
  if [ -f "$LOCAL_DIR/cluster.env" ]; then source "$LOCAL_DIR/cluster.env"; fi
}

# --- processes ----------------------------------------------------------------

# proc_stat PID: sets PROC_STAT to the fields of /proc/PID/stat after the
# command name ([0] state, [1] ppid, [3] session); fails if there is no such
# process. No subshell: the sweeps call it for every process on the machine.
PROC_STAT=()
proc_stat() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  # The command name may hold spaces and parentheses: cut after the last ')'.
  read -r -a PROC_STAT <<<"${stat##*) }"
}

# pid_in_session PID SID: PID runs (not a zombie) in session SID. The session
# check keeps a recycled pid from being taken for ours.
pid_in_session() {
  proc_stat "$1" || return 1
  [ "${PROC_STAT[0]}" != Z ] && [ "${PROC_STAT[3]}" = "$2" ]
}

# is_running BASE: the program recorded in BASE.pid still runs.
is_running() {
  local pid sid
  pid="$(cat "$1.pid" 2>/dev/null)" || return 1
  sid="$(cat "$1.sid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ -n "$sid" ] && pid_in_session "$pid" "$sid"
}
pid_of() { cat "$1.pid" 2>/dev/null || echo -; }

# spawn BASE PROGRAM [ARGS...]: starts PROGRAM detached through run-one.sh,
# output appended to BASE.log, stdin from /dev/null (so the caller's pipes
# are not held open: a caller that reads up.sh's output sees it end).
spawn() {
  local base="$1"
  shift
  rm -f "$base.pid" "$base.sid" "$base.rc"
  setsid bash "$LOCAL_ROOT/deploy/local/run-one.sh" "$base" "$@" </dev/null >>"$base.log" 2>&1 &
  # setsid does not fork here (a background job is not a group leader), so
  # $! is the wrapper, the leader of the new session.
  echo "$!" >"$base.sid"
  local deadline=$((SECONDS + 10))
  until [ -s "$base.pid" ]; do
    [ $SECONDS -lt $deadline ] || die "could not start $1 (see $base.log)"
    sleep 0.02
  done
}

# The pids of this script and its ancestors: never killed by the sweep even if
# their command line names LOCAL_DIR (e.g. `bash -c 'STATESIDE_LOCAL_DIR=... down.sh'`).
own_lineage() {
  local pid=$$
  echo "$BASHPID"
  while [ -n "$pid" ] && [ "$pid" != 0 ]; do
    echo "$pid"
    proc_stat "$pid" || break
    pid="${PROC_STAT[1]}"
  done
}

# is_ours ARG0 ARG1: the command line is one of the programs a cluster runs
# (stateside, radar-app, node, redis-server, nginx, run-one.sh). nginx rewrites its
# command line ("nginx: worker process"); a script's name is its
# interpreter's first argument.
is_ours() {
  local arg name
  for arg in "$@"; do
    name="${arg%% *}"
    name="${name##*/}"
    case "${name%:}" in stateside|radar-app|node|redis-server|nginx|run-one.sh) return 0 ;; esac
  done
  return 1
}

# stragglers: pids of our programs (is_ours) whose command line has an
# argument inside LOCAL_DIR, plus every process of their sessions when those
# sessions hold only our programs (nginx workers do not name the directory;
# run-one.sh's sessions hold nothing else). Other programs that merely name a
# file there (a `tail -f` of a log) are left alone, and so are this script,
# its ancestors and its session. One pass over /proc.
stragglers() {
  local p pid sid args arg lineage own_sid="" hits=()
  local -A sid_of=() foreign_sid=() want_sid=()
  proc_stat $$ && own_sid="${PROC_STAT[3]}"
  lineage=" $(own_lineage | tr '\n' ' ') "
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    proc_stat "$pid" || continue
    [ "${PROC_STAT[0]}" != Z ] || continue
    sid="${PROC_STAT[3]}"
    mapfile -d '' args 2>/dev/null <"$p/cmdline" || continue
    [ ${#args[@]} -gt 0 ] || continue  # a kernel thread, or exiting
    sid_of[$pid]="$sid"
    if ! is_ours "${args[@]:0:2}"; then
      foreign_sid[$sid]=1
      continue
    fi
    [[ "$lineage" == *" $pid "* ]] && continue
    for arg in "${args[@]}"; do
      case "$arg" in
        "$LOCAL_DIR/"*|*" $LOCAL_DIR/"*|*"=$LOCAL_DIR/"*) hits+=("$pid"); break ;;
      esac
    done
  done
  for pid in "${hits[@]}"; do
    sid="${sid_of[$pid]}"
    [ "$sid" != "$own_sid" ] && [ -z "${foreign_sid[$sid]:-}" ] && want_sid[$sid]=1
  done
  {
    for pid in "${hits[@]}"; do echo "$pid"; done
    for pid in "${!sid_of[@]}"; do
      [ -n "${want_sid[${sid_of[$pid]}]:-}" ] && echo "$pid"
    done
  } | sort -un
}

# wait_gone SECONDS BASE...: waits until none of the programs runs.
# Returns 1 if some still run at the deadline.
wait_gone() {
  local deadline=$((SECONDS + $1)) base any
  shift
  while :; do
    any=0
    for base in "$@"; do is_running "$base" && any=1; done
    [ $any -eq 0 ] && return 0
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

# stop GRACE BASE...: SIGTERM to each program, up to GRACE seconds for all of
# them to exit, then SIGKILL to whatever is left of their sessions.
stop() {
  local grace="$1" base
  shift
  for base in "$@"; do
    # It may exit between the check and the signal (a pod's sidecar once its
    # app has drained): that is fine.
    is_running "$base" && { kill -TERM "$(cat "$base.pid" 2>/dev/null)" 2>/dev/null || true; }
  done
  if ! wait_gone "$grace" "$@"; then
    for base in "$@"; do
      is_running "$base" && say "$(basename "$(dirname "$base")")/$(basename "$base") (pid $(pid_of "$base")) did not exit within ${grace}s: SIGKILL"
    done
  fi
  kill_sessions "$@"
}

# kill_sessions BASE...: SIGKILL to every process still left in the sessions
# of these programs (nginx workers whose master was killed, the wrapper of a
# killed program), after a moment that lets run-one.sh record the exit
# status of a program that has just exited. One pass over /proc.
kill_sessions() {
  local base sid p deadline=$((SECONDS + 2)) sids=" "
  for base in "$@"; do
    sid="$(cat "$base.sid" 2>/dev/null)" || continue
    [ -n "$sid" ] || continue
    sids+="$sid "
    # The wrapper (the session leader) ends right after its program.
    while pid_in_session "$sid" "$sid" && [ $SECONDS -lt $deadline ]; do sleep 0.02; done
  done
  [ "$sids" != " " ] || return 0
  for p in /proc/[0-9]*; do
    proc_stat "${p#/proc/}" || continue
    if [ "${PROC_STAT[0]}" != Z ] && [[ "$sids" == *" ${PROC_STAT[3]} "* ]]; then
      kill -KILL "${p#/proc/}" 2>/dev/null || true
    fi
  done
}

# duration_seconds 10s|500ms|2m: whole seconds, rounded up (60 if not understood).
duration_seconds() {
  local d="$1"
  if [[ "$d" =~ ^([0-9]+)s$ ]]; then echo "${BASH_REMATCH[1]}"
  elif [[ "$d" =~ ^([0-9]+)ms$ ]]; then echo $(((BASH_REMATCH[1] + 999) / 1000))
  elif [[ "$d" =~ ^([0-9]+)m$ ]]; then echo $((BASH_REMATCH[1] * 60))
  else echo 60
  fi
}

# How long a pod may take from SIGTERM to both processes gone: the sidecar's
# own hard cap (after which it exits by itself, status 1) and a margin.
pod_stop_grace() { echo $(($(duration_seconds "$SHUTDOWN_TIMEOUT") + 5)); }

# --- readiness -------------------------------------------------------------------

# http_status URL: the HTTP status code, 000 if nothing answered.
http_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
}
http_ok() { [ "$(http_status "$1")" = 200 ]; }

# json_field JSON NAME: a string field of a flat JSON object (enough for the
# health answers read here; no jq needed).
json_field() { sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" <<<"$1"; }

# tail_log BASE: the end of a process's log, for an error message.
tail_log() {
  echo "--- last lines of $1.log:" >&2
  tail -n 20 "$1.log" >&2 2>/dev/null || true
}

# wait_ready DEADLINE NAME BASE CHECK...: polls CHECK (a command) until it
# succeeds; fails at once, with the log, if the program exits, and at the
# deadline (a $SECONDS value) with the log too.
wait_ready() {
  local deadline="$1" name="$2" base="$3"
  shift 3
  until "$@"; do
    if ! is_running "$base"; then
      say "$name exited during start-up (status $(cat "$base.rc" 2>/dev/null || echo unknown))"
      tail_log "$base"
      return 1
    fi
    if [ $SECONDS -ge "$deadline" ]; then
      say "$name not ready after ${READY_TIMEOUT}s"
      tail_log "$base"
      return 1
    fi
    sleep 0.1
  done
}

# redis_cli PORT ARGS...: redis-cli on a node or sentinel of the cluster,
# the password from its file (never on a command line).
redis_cli() {
  local port="$1"
  shift
  REDISCLI_AUTH="$(cat "$LOCAL_DIR/secrets/redis_password")" \
    redis-cli --no-auth-warning -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}
# redis_ready [K]: data node K answers.
redis_ready() { redis_cli "$(redis_port "${1:-1}")" ping | grep -q PONG; }
# sentinel_ready K: sentinel K knows the master and has found its replica
# (before that, a failover answers NOGOODSLAVE).
sentinel_ready() {
  local port
  port="$(sentinel_port "$1")"
  redis_cli "$port" sentinel get-master-addr-by-name "$SENTINEL_MASTER" | grep -q 127.0.0.1 &&
    redis_cli "$port" sentinel master "$SENTINEL_MASTER" | grep -A1 -x num-slaves | tail -n 1 | grep -qx '[1-9]'
}
# cluster_ok: every Cluster node says the cluster is up (all slots served).
cluster_ok() {
  local k
  for k in $(redis_nodes); do
    redis_cli "$(redis_port "$k")" cluster info | grep -q '^cluster_state:ok' || return 1
  done
}
sidecar_ready() { http_ok "http://127.0.0.1:$(admin_port "$1")/health/ready"; }
app_ready() { http_ok "http://127.0.0.1:$(app_port "$1")/healthz"; }
nginx_ready() { http_ok "http://127.0.0.1:$LOCAL_PORT/healthz"; }

# --- redis ------------------------------------------------------------------------

# write_conf FILE LINES...: a config file of mode 0600 (it holds the password).
write_conf() {
  local file="$1"
  shift
  (
    umask 077
    {
      echo "# Generated by $PROG for $LOCAL_DIR; rewritten on every start."
      printf '%s\n' "$@"
    } >"$file"
    chmod 0600 "$file"
  )
}

# write_redis_conf: the config files of the layout in LOCAL_DIR/redis, the
# password read from LOCAL_DIR/secrets/redis_password (which the caller
# writes) and put in files of mode 0600, never on a command line. No
# persistence (save "", no AOF): a local cluster's sessions need not outlive
# it; the Compose file turns persistence on. Every node of a Cluster or a
# Sentinel layout authenticates to the others with the same password
# (masterauth), and each sentinel both requires it and uses it on the nodes.
write_redis_conf() {
  local password k
  password="$(cat "$LOCAL_DIR/secrets/redis_password")"
  rm -f "$LOCAL_DIR"/redis/*.conf
  case "$LOCAL_REDIS" in
    standalone)
      write_conf "$LOCAL_DIR/redis/redis.conf" "requirepass $password" "dir \"$LOCAL_DIR/redis\"" ;;
    cluster)
      for k in $(redis_nodes); do
        write_conf "$(redis_base "$k").conf" "requirepass $password" "masterauth $password" \
          "dir \"$LOCAL_DIR/redis\"" "cluster-enabled yes" \
          "cluster-config-file \"$(redis_base "$k").nodes\"" "cluster-node-timeout 2000"
      done ;;
    sentinel)
      write_conf "$(redis_base 1).conf" "requirepass $password" "masterauth $password" "dir \"$LOCAL_DIR/redis\""
      write_conf "$(redis_base 2).conf" "requirepass $password" "masterauth $password" "dir \"$LOCAL_DIR/redis\"" \
        "replicaof 127.0.0.1 $(redis_port 1)"
      for k in $(sentinels); do
        # A sentinel rewrites its own file (what it learns): one each.
        write_conf "$(sentinel_base "$k").conf" "port $(sentinel_port "$k")" "bind 127.0.0.1" \
          "dir \"$LOCAL_DIR/redis\"" "requirepass $password" \
          "sentinel monitor $SENTINEL_MASTER 127.0.0.1 $(redis_port 1) 2" \
          "sentinel auth-pass $SENTINEL_MASTER $password" \
          "sentinel down-after-milliseconds $SENTINEL_MASTER 2000" \
          "sentinel failover-timeout $SENTINEL_MASTER 10000"
      done ;;
  esac
}

# start_redis DEADLINE: starts the layout's processes (write_redis_conf first)
# and returns once it serves: every node answers; a Cluster is created and
# says cluster_state:ok; the sentinels know the master and its replica.
# Fails (1) with the log of what did not start by DEADLINE (a $SECONDS value).
start_redis() {
  local deadline="$1" k conf
  for k in $(redis_nodes); do
    conf="$(redis_base "$k").conf"
    [ "$LOCAL_REDIS" != standalone ] || conf="$LOCAL_DIR/redis/redis.conf"
    spawn "$(redis_base "$k")" redis-server "$conf" \
      --port "$(redis_port "$k")" --bind 127.0.0.1 --save "" --appendonly no --daemonize no
  done
  for k in $(redis_nodes); do
    wait_ready "$deadline" "redis node $k" "$(redis_base "$k")" redis_ready "$k" || return 1
  done
  case "$LOCAL_REDIS" in
    cluster)
      local nodes=()
      for k in $(redis_nodes); do nodes+=("127.0.0.1:$(redis_port "$k")"); done
      REDISCLI_AUTH="$(cat "$LOCAL_DIR/secrets/redis_password")" \
        redis-cli --no-auth-warning --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
        >"$LOCAL_DIR/redis/cluster-create.log" 2>&1 ||
        { cat "$LOCAL_DIR/redis/cluster-create.log" >&2; die "redis-cli --cluster create failed"; }
      wait_ready "$deadline" "redis cluster" "$(redis_base 1)" cluster_ok || return 1 ;;
    sentinel)
      for k in $(sentinels); do
        spawn "$(sentinel_base "$k")" redis-server "$(sentinel_base "$k").conf" --sentinel --daemonize no
      done
      for k in $(sentinels); do
        wait_ready "$deadline" "sentinel $k" "$(sentinel_base "$k")" sentinel_ready "$k" || return 1
      done ;;
  esac
}

# --- pods -----------------------------------------------------------------------

# app_name: what the pods run, for messages.
app_name() { if [ "$LOCAL_APP" = node ]; then echo "the Node.js app"; else echo radar-app; fi; }

# start_pod I: pod I's sidecar and app (radar-app, or the Node.js example
# with the same settings: STATESIDE_LOCAL_APP), sharing the pod's socket
# directory as a Kubernetes pod's containers share an emptyDir. Does not wait.
start_pod() {
  local i="$1" secrets="$LOCAL_DIR/secrets"
  mkdir -p "$(pod_dir "$i")/sock"
  chmod 0700 "$(pod_dir "$i")/sock"
  # Secrets: the keys and the Redis URL (which holds the password) through
  # their _FILE settings, files of mode 0600 written here. Paths and
  # ports are flags, so `ps` shows which cluster a process belongs to. A
  # subshell keeps these variables out of the caller, and the unset drops
  # caller settings that would clash with the ones given here.
  (
    unset SESSION_ENCRYPTION_KEY SESSION_ENCRYPTION_KEYS SESSION_ENCRYPTION_KEYS_FILE \
          SESSION_SECRET REDIS_URL STATESIDE_SOCKET STATESIDE_ADMIN_ADDR INSTANCE_ID
    # Written beside and renamed into place: another pod's sidecar may be
    # reading it this moment (pods start without waiting for each other), and
    # a truncated file would read as empty (exit 2, "REDIS_URL_FILE ... is
    # empty").
    (umask 077 &&
      redis_url >"$secrets/redis_url.$i" &&
      mv -f "$secrets/redis_url.$i" "$secrets/redis_url")
    export REDIS_URL_FILE="$secrets/redis_url" USE_REDIS_SESSIONS=true STATESIDE_PRESTOP_DELAY="$PRESTOP_DELAY" \
           STATESIDE_DRAIN_TIMEOUT="$DRAIN_TIMEOUT" STATESIDE_SHUTDOWN_TIMEOUT="$SHUTDOWN_TIMEOUT" \
           STATESIDE_REDIS_TOPOLOGY="$LOCAL_REDIS"
    unset REDIS_SENTINEL_MASTER REDIS_SENTINEL_PASSWORD REDIS_SENTINEL_PASSWORD_FILE
    if [ "$LOCAL_REDIS" = sentinel ]; then
      export REDIS_SENTINEL_MASTER="$SENTINEL_MASTER" REDIS_SENTINEL_PASSWORD_FILE="$secrets/redis_password"
    fi
    spawn "$(sidecar_base "$i")" "$BIN_DIR/stateside" \
      --instance-id "pod-$i" \
      --socket "$(pod_socket "$i")" \
      --admin-addr "127.0.0.1:$(admin_port "$i")" \
      --session-encryption-key-file "$secrets/encryption_key" \
      --session-secret-file "$secrets/session_secret"
  ) || return 1
  (
    unset STATESIDE_SOCKET RADAR_LISTEN
    # Plain http on loopback: no Secure cookie (its name is then radar_sid),
    # and the pages that may POST and open /ws are nginx's and the pod's own
    # (a caller's RADAR_COOKIE_SECURE / RADAR_PUBLIC_ORIGINS win).
    export RADAR_COOKIE_SECURE="${RADAR_COOKIE_SECURE:-false}"
    export RADAR_PUBLIC_ORIGINS="${RADAR_PUBLIC_ORIGINS:-http://127.0.0.1:$LOCAL_PORT,http://localhost:$LOCAL_PORT,http://127.0.0.1:$(app_port "$i")}"
    local app_cmd=("$BIN_DIR/radar-app")
    [ "$LOCAL_APP" != node ] || app_cmd=(node "$NODE_APP")
    spawn "$(app_base "$i")" "${app_cmd[@]}" \
      --listen "127.0.0.1:$(app_port "$i")" --socket "$(pod_socket "$i")"
  ) || return 1
}

# wait_pod DEADLINE I: pod I's sidecar ready, then its app.
wait_pod() {
  wait_ready "$1" "pod-$2 sidecar" "$(sidecar_base "$2")" sidecar_ready "$2" &&
    wait_ready "$1" "pod-$2 $(app_name)" "$(app_base "$2")" app_ready "$2"
}

# stop_pods I...: SIGTERM to both processes of each pod at once (the classic
# sidecar layout: the app's forwarded Drain finds the sidecar draining
# already, which is idempotent), bounded by the sidecar's own hard cap.
stop_pods() {
  local i bases=()
  for i in "$@"; do bases+=("$(app_base "$i")" "$(sidecar_base "$i")"); done
  [ ${#bases[@]} -gt 0 ] || return 0
  stop "$(pod_stop_grace)" "${bases[@]}"
}

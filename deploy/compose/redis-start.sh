#!/bin/sh
# The Redis processes of the Compose overrides redis-cluster.yml and
# redis-sentinel.yml, started by each service as its command (the file is
# mounted read-only at /usr/local/bin/stateside-redis-start):
#
#   redis-start.sh cluster                       a Redis Cluster node
#   redis-start.sh master SELF                   Sentinel layout's first master
#   redis-start.sh replica SELF MASTER           its replica, of MASTER:6379
#   redis-start.sh sentinel NAME MASTER          a sentinel watching MASTER
#
# SELF and MASTER are Compose service names: a container's address changes
# when it is recreated, its name does not. The password (the redis_password
# secret) goes into a config file of mode 0600, never onto the command line;
# every data node both requires it and uses it on its master (masterauth),
# and each sentinel requires it too and uses it on the nodes. Data nodes
# persist as the standalone `redis` service of docker-compose.yml does (AOF
# only, the same maxmemory); a Cluster node's own state (nodes.conf) is in
# its /data volume. A sentinel writes what it learns (the current master
# after a failover, the other sentinels) into its file, kept in its /data
# volume: it is written here only once, when the volume is new.
set -eu
umask 077
password="$(cat /run/secrets/redis_password)"
conf=/tmp/redis.conf

data_node() {
  exec redis-server "$conf" --port 6379 --dir /data --appendonly yes --appendfsync everysec \
    --save "" --maxmemory 320mb --maxmemory-policy noeviction "$@"
}

case "${1:-}" in
  cluster)
    printf 'requirepass %s\nmasterauth %s\n' "$password" "$password" >"$conf"
    data_node --cluster-enabled yes --cluster-config-file /data/nodes.conf --cluster-node-timeout 5000 ;;
  master | replica)
    # replica-announce-ip: the name the sentinels (which resolve names) tell
    # the sidecars once this node is the master, rather than an address.
    printf 'requirepass %s\nmasterauth %s\nreplica-announce-ip %s\n' \
      "$password" "$password" "${2:?SELF}" >"$conf"
    [ "$1" = master ] || printf 'replicaof %s 6379\n' "${3:?MASTER}" >>"$conf"
    data_node ;;
  sentinel)
    name="${2:?NAME}" master="${3:?MASTER}"
    if [ ! -s /data/sentinel.conf ]; then
      printf '%s\n' "port 26379" "dir /data" "requirepass $password" \
        "sentinel resolve-hostnames yes" "sentinel announce-hostnames yes" \
        "sentinel monitor $name $master 6379 2" "sentinel auth-pass $name $password" \
        "sentinel down-after-milliseconds $name 5000" "sentinel failover-timeout $name 30000" \
        >/data/sentinel.conf.new
      mv /data/sentinel.conf.new /data/sentinel.conf
    fi
    exec redis-server /data/sentinel.conf --sentinel ;;
  *)
    echo "usage: redis-start.sh cluster | master SELF | replica SELF MASTER | sentinel NAME MASTER" >&2
    exit 2 ;;
esac

#!/bin/sh
# The one-shot service of redis-cluster.yml that makes a Redis Cluster of
# the six nodes NODE... (Compose service names, port 6379): three masters,
# each with a replica. Mounted read-only at
# /usr/local/bin/stateside-redis-cluster-init.
#
#   redis-cluster-init.sh NODE...
#
# `redis-cli --cluster create` takes addresses, not names (Redis 7.0:
# "Invalid node address"): each name is resolved here, once its node
# answers PING. A cluster that is already there (after a restart: the nodes
# keep it in their volumes) is left as it is. Exits 0 when the create is
# done (the nodes' healthchecks then wait for cluster_state:ok and their
# replication links), non-zero
# when a node does not answer within 120 s (Compose restarts it).
set -eu
REDISCLI_AUTH="$(cat /run/secrets/redis_password)"
export REDISCLI_AUTH
[ "$#" -gt 0 ] || { echo "usage: redis-cluster-init.sh NODE..." >&2; exit 2; }

addresses=""
for node in "$@"; do
  tries=0
  while :; do
    address="$(getent hosts "$node" | awk '{ print $1; exit }')"
    if [ -n "$address" ] && redis-cli -h "$address" ping 2>/dev/null | grep -q PONG; then break; fi
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || { echo "redis-cluster-init: $node does not answer" >&2; exit 1; }
    sleep 1
  done
  addresses="$addresses $address:6379"
done

known="$(redis-cli -h "$1" cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')"
if [ "${known:-1}" != 1 ]; then
  echo "redis-cluster-init: $1 already knows $known nodes: the cluster is there"
  exit 0
fi
echo "redis-cluster-init: creating the cluster of$addresses"
# shellcheck disable=SC2086  # one word an address
exec redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes

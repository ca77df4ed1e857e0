#!/usr/bin/env bash
# The end-to-end load run in one command (issue 21): builds the load tool, the plain baseline and the workers in Release,
# creates a RabbitMQ virtual host of its own (deleted on exit, with everything declared in it), and runs every path —
# plain MassTransit, MeshBus-hosted bare request/response, intent → grant through meshbus-authorize (SQLite and
# PostgreSQL), embedded, two-domain bridge — at 1, 8, 32 and 128 in flight and open loop at a fixed rate.
# Writes bench/results/load-<UTC time>.json and .md (override with LOAD_OUT=DIR). Extra arguments go to the tool
# (e.g. --runs 5 --seconds 6, --levels 8,32, --groups rabbitmq).
# LOAD_BEFORE=<commit>: also measures that commit's hosted responder and SQLite Authorize stack in the same run
# (paths hosted-bare@before, grant-sqlite@before), from a copy built in a temporary directory.
# Servers: those of scripts/servers.sh (the defaults below), or the shared ones:
#   source /work/wt/SHARED-SERVERS.env && bench/run-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
AMQP=${MESH_TEST_RABBITMQ_URI:-amqp://guest:guest@127.0.0.1:5672/}
PG=${MESH_TEST_POSTGRES:-Host=127.0.0.1;Port=5432;Username=postgres}
OUT=${LOAD_OUT:-bench/results}
if [ -n "${MESH_TEST_RABBITMQCTL:-}" ]; then
  ctl() { "$MESH_TEST_RABBITMQCTL" "$@"; }
else
  # scripts/servers.sh's node
  ctl() { RABBITMQ_NODENAME=meshbus@localhost ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=${EPMD_PORT:-4369} \
    RABBITMQ_DIST_PORT=${RMQ_DIST_PORT:-25672} timeout 90 rabbitmqctl -n meshbus@localhost "$@"; }
fi

dotnet build -c Release bench/MeshBus.Load.Plain -v q -nologo >/dev/null
dotnet build -c Release bench/MeshBus.Load -v q -nologo >/dev/null

before=()
if [ -n "${LOAD_BEFORE:-}" ]; then
  tree=$(mktemp -d /tmp/meshbus-load-before.XXXXXX)
  git archive "$LOAD_BEFORE" | tar -x -C "$tree"
  dotnet build -c Release "$tree/bench/MeshBus.Load" -v q -nologo >/dev/null
  before=(--before "$tree")
fi

user=$(printf '%s' "$AMQP" | sed -E 's#^amqp://([^:@/]+).*#\1#')
base=$(printf '%s' "$AMQP" | sed -E 's#^(amqp://[^/]+/).*#\1#')
vhost=meshbus-load-$(date -u +%H%M%S)-$RANDOM
ctl add_vhost "$vhost" >/dev/null
trap 'ctl delete_vhost "$vhost" >/dev/null || echo "could not delete virtual host $vhost" >&2; [ -z "${tree:-}" ] || rm -rf "$tree"' EXIT
ctl set_permissions -p "$vhost" "$user" '.*' '.*' '.*' >/dev/null
broker_pid=$(ctl eval 'list_to_integer(os:getpid()).' | tail -n1)

mkdir -p "$OUT"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
echo "uptime at start: $(uptime)"
dotnet bench/MeshBus.Load/bin/Release/net10.0/MeshBus.Load.dll \
  --amqp "$base$vhost" --postgres "$PG" --broker-pid "$broker_pid" \
  --json "$OUT/load-$stamp.json" --markdown "$OUT/load-$stamp.md" "${before[@]}" "$@"
echo "uptime at end: $(uptime)"
echo "results: $OUT/load-$stamp.json $OUT/load-$stamp.md"

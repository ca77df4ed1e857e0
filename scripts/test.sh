#!/usr/bin/env bash
# The MeshBus test command (README). Starts RabbitMQ, NATS (JetStream) and PostgreSQL on 127.0.0.1 with data in a
# temporary directory, runs `dotnet test MeshBus.sln` against them, and stops exactly what it started, also when
# the tests fail or the script is interrupted. Exits with dotnet test's code.
#
#   ./scripts/test.sh                      everything (installs the servers from Debian's packages when missing)
#   ./scripts/test.sh --fast               only tests without Category=Integration; no servers
#   ./scripts/test.sh [--fast] ARGS...     ARGS go to `dotnet test` (e.g. --filter "FullyQualifiedName~Hosting")
#   ./scripts/test.sh --no-fleet           everything but the fleet step
#
# The fleet step (after a whole run, while the servers are still up; not with --fast, --filter or --no-fleet):
# scripts/fleet.sh up on these servers (its own virtual hosts, databases and nats-server), the sample agent's
# cross-domain grant (scripts/fleet.sh sample), scripts/fleet.sh down --purge. Its failure fails the run.
#
# A server whose variable is already set (MESH_TEST_RABBITMQ_URI, MESH_TEST_NATS_URL, MESH_TEST_POSTGRES) is used
# as is and not started. MESH_TEST_RABBITMQCTL names a rabbitmqctl for the started broker (users, vhosts). Ports:
# the defaults (5672/25672/4369, 4222, 5432) when free, otherwise free random ones, so servers already running on
# this machine are never touched. MESH_TEST_HANG_TIMEOUT (default 5m) bounds one test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

FAST=0
FLEET=1
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fast) FAST=1; FLEET=0 ;;
    --no-fleet) FLEET=0 ;;
    --filter) FLEET=0; PASS+=("$1") ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) PASS+=("$1") ;;
  esac
  shift
done

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# MSBuild worker nodes must not outlive the run (CI waits for every process holding its output).
export MSBUILDDISABLENODEREUSE=1

START=$(date +%s)
DIR=""
STARTED=()        # what to stop, in order: rabbit nats pg
RMQ_PID_FILE=""; NATS_PID=""; PG_BIN=""; EPMD_STARTED=0
TEST_PID=""
OUT_LOG=""
AS_RABBIT=(); AS_PG=()
POLICY_RC_CREATED=0
FLEET_UP=0

# ---------------------------------------------------------------- installation
install_missing() {
  local need=()
  command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
  command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  [ ${#need[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "missing ${need[*]}; run as root or install sudo"
    sudo=(sudo)
  fi
  log "installing ${need[*]} from Debian's packages"
  # keep the packages' maintainer scripts from starting system-wide services
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  local rc=0
  { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } || rc=$?
  if [ "$POLICY_RC_CREATED" -eq 1 ]; then "${sudo[@]}" rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
  [ $rc -eq 0 ] || die "apt-get install ${need[*]} failed ($rc)"
}

# ---------------------------------------------------------------- ports
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
TAKEN=" "
PORT=""
pick_port() { # sets PORT: the preferred port when free, else a free random one; never one port twice in a run
  local p=$1 i
  for i in $(seq 0 200); do
    [ "$i" -gt 0 ] && p=$((20000 + RANDOM % 30000))
    if ! port_busy "$p" && [[ "$TAKEN" != *" $p "* ]]; then TAKEN+="$p "; PORT=$p; return 0; fi
  done
  die "no free port found"
}

# ---------------------------------------------------------------- servers
RMQ_ENV=()
rabbitmqctl_() {
  timeout 90 "${AS_RABBIT[@]}" env "${RMQ_ENV[@]}" \
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RMQ_NODE" "$@"
}

# tests that manage the broker (users, permissions, vhosts) call this wrapper through MESH_TEST_RABBITMQCTL
write_rabbitmqctl_wrapper() {
  {
    printf '#!/usr/bin/env bash\n'
    printf 'exec timeout 90'
    printf ' %q' "${AS_RABBIT[@]}" env "${RMQ_ENV[@]}" \
      "RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}" \
      /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RMQ_NODE"
    printf ' "$@"\n'
  } > "$DIR/rabbitmqctl"
  chmod 755 "$DIR/rabbitmqctl"
}

start_rabbit() {
  pick_port 5672; RMQ_PORT=$PORT; pick_port 25672; RMQ_DIST_PORT=$PORT; pick_port 4369; EPMD_PORT=$PORT
  RMQ_NODE="meshbus-test-$$@localhost"; RMQ_PID_FILE="$DIR/rabbit/node.pid"
  # environment of our node, for the server and for rabbitmqctl: loopback only, everything under $DIR
  RMQ_ENV=(HOME="$DIR/rabbit" RABBITMQ_NODENAME="$RMQ_NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$RMQ_PORT" RABBITMQ_DIST_PORT="$RMQ_DIST_PORT"
    ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$EPMD_PORT"
    RABBITMQ_MNESIA_BASE="$DIR/rabbit/mnesia" RABBITMQ_LOG_BASE="$DIR/rabbit/log"
    RABBITMQ_PID_FILE="$RMQ_PID_FILE" RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/rabbit/enabled_plugins"
    RABBITMQ_CONFIG_FILE="$DIR/rabbit/rabbitmq" RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/rabbit/advanced.config"
    RABBITMQ_CONF_ENV_FILE="$DIR/rabbit/rabbitmq-env.conf" ERL_CRASH_DUMP="$DIR/rabbit/erl_crash.dump")
  mkdir -p "$DIR/rabbit"
  echo "[]." > "$DIR/rabbit/enabled_plugins"
  : > "$DIR/rabbit/rabbitmq.conf"; echo "[]." > "$DIR/rabbit/advanced.config"; : > "$DIR/rabbit/rabbitmq-env.conf"
  # Debian runs the node as the rabbitmq user; we do the same (without its wrapper, which changes session and HOME)
  if [ "$(id -u)" -eq 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown -R rabbitmq: "$DIR/rabbit"; AS_RABBIT=(runuser -u rabbitmq --)
  fi
  STARTED+=(rabbit)
  setsid "${AS_RABBIT[@]}" env "${RMQ_ENV[@]}" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    /usr/lib/rabbitmq/bin/rabbitmq-server > "$DIR/rabbit.out" 2>&1 < /dev/null &
  echo $! > "$DIR/rabbit.launcher.pid"
  EPMD_STARTED=1
}

start_nats() {
  pick_port 4222; NATS_PORT=$PORT
  mkdir -p "$DIR/nats"
  STARTED+=(nats)
  # users and permissions per test domain (the federation tests connect as them), JetStream file storage, loopback
  "$ROOT/scripts/nats-test-config.sh" "$DIR/nats" "$NATS_PORT" > "$DIR/nats/nats.env"
  setsid nats-server -c "$DIR/nats/nats.conf" > "$DIR/nats.out" 2>&1 < /dev/null &
  NATS_PID=$!
}

start_pg() {
  pick_port 5432; PG_PORT=$PORT
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  mkdir -p "$DIR/pg"
  # initdb refuses to run as root
  if [ "$(id -u)" -eq 0 ]; then
    local u=postgres; id postgres >/dev/null 2>&1 || die "no postgres user to run PostgreSQL as"
    chown "$u" "$DIR/pg"; AS_PG=(runuser -u "$u" --)
  fi
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$DIR/pg/data" -A trust -U postgres --no-sync > "$DIR/pg.init" 2>&1 ||
    { cat "$DIR/pg.init" >&2; die "initdb failed"; }
  STARTED+=(pg)
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -s \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $DIR/pg -c fsync=off -c max_connections=300" start > /dev/null ||
    { cat "$DIR/pg/server.log" >&2; die "PostgreSQL did not start"; }
}

# ---------------------------------------------------------------- readiness
deadline() { echo $(( $(date +%s) + $1 )); }

wait_rabbit() {
  local end; end=$(deadline 120)
  # the node first writes its pid, then opens AMQP once booted; await_startup confirms the app is running
  while ! port_busy "$RMQ_PORT"; do
    if ! kill -0 "$(cat "$DIR/rabbit.launcher.pid")" 2>/dev/null; then
      tail -n 40 "$DIR/rabbit.out" >&2; die "RabbitMQ exited during start-up"
    fi
    [ "$(date +%s)" -lt "$end" ] || { tail -n 40 "$DIR/rabbit.out" >&2; die "RabbitMQ did not open port $RMQ_PORT"; }
    sleep 0.5
  done
  rabbitmqctl_ await_startup --timeout 60 > "$DIR/rabbit.await" 2>&1 ||
    { cat "$DIR/rabbit.await" >&2; die "rabbitmqctl await_startup failed"; }
  # and it speaks AMQP: the protocol header is answered by a Connection.Start method frame (type 1)
  local c=""
  exec 3<>"/dev/tcp/127.0.0.1/$RMQ_PORT"
  printf 'AMQP\0\0\x09\x01' >&3
  IFS= read -r -t 10 -N 1 c <&3 || true
  exec 3<&-
  [ "$c" = $'\x01' ] || die "RabbitMQ on $RMQ_PORT did not answer the AMQP protocol header"
}

wait_nats() {
  local end line; end=$(deadline 30)
  while :; do
    line=$( (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT" && IFS= read -r -t 5 l <&3 && echo "$l") 2>/dev/null || true)
    case "$line" in *'"jetstream":true'*) return 0 ;; esac
    kill -0 "$NATS_PID" 2>/dev/null || { cat "$DIR/nats.out" >&2; die "nats-server exited during start-up"; }
    [ "$(date +%s)" -lt "$end" ] || { cat "$DIR/nats.out" >&2; die "NATS with JetStream did not answer on $NATS_PORT"; }
    sleep 0.3
  done
}

wait_pg() {
  local end; end=$(deadline 60)
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres; do
    [ "$(date +%s)" -lt "$end" ] || { cat "$DIR/pg/server.log" >&2; die "PostgreSQL did not answer on $PG_PORT"; }
    sleep 0.3
  done
}

# ---------------------------------------------------------------- stop exactly what was started
kill_wait() { # PID (or -PGID): TERM, wait up to 10 s, then KILL
  local pid=$1 i
  kill -TERM -- "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do kill -0 -- "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL -- "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$TEST_PID" ] && kill -0 "$TEST_PID" 2>/dev/null; then
    log "stopping dotnet test"
    kill -TERM -- "-$TEST_PID" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$TEST_PID" 2>/dev/null || true
  fi
  # an interrupted fleet step: stop its workers before the servers they use
  if [ "$FLEET_UP" -eq 1 ]; then "$ROOT/scripts/fleet.sh" down --purge >&2 || true; fi
  local s
  for s in "${STARTED[@]}"; do
    case "$s" in
      pg)
        "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -s -t 20 stop >/dev/null 2>&1 ||
          { [ -f "$DIR/pg/data/postmaster.pid" ] && kill_wait "$(head -n1 "$DIR/pg/data/postmaster.pid")"; } || true ;;
      nats) [ -n "$NATS_PID" ] && kill_wait "$NATS_PID" ;;
      rabbit)
        local beam=""
        [ -f "$RMQ_PID_FILE" ] && beam=$(cat "$RMQ_PID_FILE" 2>/dev/null || true)
        # ask the node to stop (it removes its pid file), then make sure its VM and our launcher are gone
        [ -n "$beam" ] && { rabbitmqctl_ stop >/dev/null 2>&1 || true; }
        [ -n "$beam" ] && kill_wait "$beam"
        kill_wait "-$(cat "$DIR/rabbit.launcher.pid")"
        # the Erlang VM daemonizes its port mapper; stop the one on our port (it refuses while a node is registered)
        if [ "$EPMD_STARTED" -eq 1 ]; then
          local i
          for i in $(seq 1 25); do
            ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$EPMD_PORT" epmd -kill >/dev/null 2>&1 || true
            port_busy "$EPMD_PORT" || break
            sleep 0.2
          done
          port_busy "$EPMD_PORT" && log "warning: epmd on port $EPMD_PORT did not stop"
        fi ;;
    esac
  done
  if [ "$POLICY_RC_CREATED" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d 2>/dev/null || sudo rm -f /usr/sbin/policy-rc.d || true; fi
  if [ -n "$DIR" ] && [ -d "$DIR" ]; then
    if [ "${MESH_TEST_KEEP_LOGS:-0}" = 1 ] || { [ $rc -ne 0 ] && [ "${CI:-}" != true ]; }; then
      log "server logs kept in $DIR"
    else
      rm -rf "$DIR"
    fi
  fi
  if [ -n "$OUT_LOG" ] && [ -f "$OUT_LOG" ]; then
    # one line per test assembly, together at the end where a reader looks
    echo "================ summary ================" >&2
    grep -E '^(Passed|Failed)!|Test Run Aborted|The active test run was aborted|error [A-Z]+[0-9]+:|^fleet.sh: (up|down|step)' "$OUT_LOG" | sort -u >&2 || true
    rm -f "$OUT_LOG"
  fi
  log "finished in $(( $(date +%s) - START )) s with exit code $rc"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- main
command -v dotnet >/dev/null 2>&1 || die "the .NET SDK (dotnet) is not on PATH"

ARGS=(MeshBus.sln --blame-hang-timeout "${MESH_TEST_HANG_TIMEOUT:-5m}" --blame-hang-dump-type none
  --logger "console;verbosity=minimal" --logger "trx" --results-directory "$ROOT/TestResults")

if [ $FAST -eq 1 ]; then
  # merge with a --filter given by the caller
  filter="Category!=Integration"; rest=()
  for ((i = 0; i < ${#PASS[@]}; i++)); do
    if [ "${PASS[$i]}" = "--filter" ] && [ $((i + 1)) -lt ${#PASS[@]} ]; then
      filter="($filter)&(${PASS[$((i + 1))]})"; i=$((i + 1))
    else rest+=("${PASS[$i]}"); fi
  done
  PASS=("${rest[@]+"${rest[@]}"}" --filter "$filter")
  export MESH_TEST_NO_DOCKER=${MESH_TEST_NO_DOCKER:-1}
else
  need_rmq=1; need_nats=1; need_pg=1
  [ -n "${MESH_TEST_RABBITMQ_URI:-}" ] && need_rmq=0
  [ -n "${MESH_TEST_NATS_URL:-}" ] && need_nats=0
  [ -n "${MESH_TEST_POSTGRES:-}" ] && need_pg=0
  if [ $((need_rmq + need_nats + need_pg)) -gt 0 ]; then
    install_missing
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/meshbus-test.XXXXXX")
    chmod 755 "$DIR"
    t0=$(date +%s)
    [ $need_rmq -eq 1 ] && start_rabbit
    [ $need_nats -eq 1 ] && start_nats
    [ $need_pg -eq 1 ] && start_pg
    [ $need_nats -eq 1 ] && wait_nats
    [ $need_pg -eq 1 ] && wait_pg
    [ $need_rmq -eq 1 ] && wait_rabbit
    [ $need_rmq -eq 1 ] && export MESH_TEST_RABBITMQ_URI="amqp://guest:guest@127.0.0.1:$RMQ_PORT/"
    [ $need_rmq -eq 1 ] && write_rabbitmqctl_wrapper && export MESH_TEST_RABBITMQCTL="$DIR/rabbitmqctl"
    [ $need_nats -eq 1 ] && export MESH_TEST_NATS_URL="nats://127.0.0.1:$NATS_PORT"
    # shellcheck disable=SC1091
    [ $need_nats -eq 1 ] && . "$DIR/nats/nats.env"
    [ $need_pg -eq 1 ] && export MESH_TEST_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres"
    log "servers ready in $(( $(date +%s) - t0 )) s (data in $DIR)"
  fi
  # the servers are given: no container engine needed
  export MESH_TEST_NO_DOCKER=${MESH_TEST_NO_DOCKER:-1}
  log "MESH_TEST_RABBITMQ_URI=$MESH_TEST_RABBITMQ_URI"
  log "MESH_TEST_NATS_URL=$MESH_TEST_NATS_URL"
  log "MESH_TEST_POSTGRES=$MESH_TEST_POSTGRES"
fi

log "dotnet test ${ARGS[*]} ${PASS[*]+"${PASS[*]}"}"
# in a process group of its own so an interruption stops the test hosts too; `wait` lets the traps run meanwhile
set +e
OUT_LOG=$(mktemp "${TMPDIR:-/tmp}/meshbus-test-output.XXXXXX")
setsid dotnet test "${ARGS[@]}" "${PASS[@]+"${PASS[@]}"}" < /dev/null > >(tee "$OUT_LOG") 2>&1 &
TEST_PID=$!
wait "$TEST_PID"
code=$?
TEST_PID=""

# ---------------------------------------------------------------- the fleet step
# The two domains as worker processes on the same servers, the sample agent's grant, and a clean stop; bounded by
# fleet.sh itself (readiness 150 s, the sample 90 s, the stop 40 s).
if [ $FLEET -eq 1 ]; then
  t0=$(date +%s)
  export FLEET_DIR; FLEET_DIR=$(mktemp -d "${TMPDIR:-/tmp}/meshbus-fleet.XXXXXX")
  export FLEET_NAME="meshbus-ci-$$" FLEET_RABBITMQ_URI="$MESH_TEST_RABBITMQ_URI" FLEET_POSTGRES="$MESH_TEST_POSTGRES"
  export FLEET_RABBITMQCTL="${MESH_TEST_RABBITMQCTL:-}"
  log "fleet: scripts/fleet.sh up, sample, down --purge (state in $FLEET_DIR)"
  FLEET_UP=1
  fleet=0
  # With its build: `dotnet test` built the workers and the CLI (the tests use them) but not the sample agent, which
  # nothing references (a fresh clone has no meshbus-sample-agent.dll); the rest is up to date and quick.
  { "$ROOT/scripts/fleet.sh" up && "$ROOT/scripts/fleet.sh" sample cross; } 2>&1 | tee -a "$OUT_LOG" || fleet=$?
  if [ "$fleet" -ne 0 ]; then log "fleet: failed ($fleet); status:"; "$ROOT/scripts/fleet.sh" status >&2 || true; fi
  "$ROOT/scripts/fleet.sh" down --purge 2>&1 | tee -a "$OUT_LOG" || { [ "$fleet" -ne 0 ] || fleet=1; }
  FLEET_UP=0
  rm -rf "$FLEET_DIR"
  echo "fleet.sh: step finished in $(( $(date +%s) - t0 )) s with exit code $fleet" | tee -a "$OUT_LOG" >&2
  [ "$fleet" -eq 0 ] || [ "$code" -ne 0 ] || code=$fleet
fi
set -e
exit $code

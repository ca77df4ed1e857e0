#!/usr/bin/env bash
# Two trust domains, acme.example/prod and partner.example/prod, as separate worker processes on one machine
# (README, "Fleet"): per domain Sync, Authorize ×2, Enforce ×2 and Lineage on RabbitMQ (a virtual host and a worker
# user per domain) and PostgreSQL (a database and a non-superuser role per domain), the two Sync workers bridged by a
# nats-server with JetStream that this script runs itself (one NATS user per domain, as scripts/nats-test-config.sh
# writes them). The first `up` creates each domain's keys, pins each domain's root in the other, and signs the
# policies in samples/fleet/ with the domains' keys.
#
#   scripts/fleet.sh up [--no-build]   create what is missing, start what is not running, wait for /health/ready
#   scripts/fleet.sh status            each process and its readiness, then `meshbus status` of each domain
#   scripts/fleet.sh sample [cross|local]   provision the sample agent (once), issue it a fresh credential and run
#                                      samples/MeshBus.Samples.Agent: an intent on partner's resource (cross, the
#                                      default) or on acme's own (local); prints the grant
#   scripts/fleet.sh down [--purge]    SIGTERM every process `up` started, SIGKILL what is left after the bound;
#                                      --purge also deletes the virtual hosts, users, databases, roles and FLEET_DIR
#
# Servers (nothing is downloaded or installed; start them with scripts/servers.sh, or point at running ones):
#   FLEET_RABBITMQ_URI   an administrator's AMQP URI (default $MESH_TEST_RABBITMQ_URI, else amqp://guest:guest@127.0.0.1:5672/)
#   FLEET_RABBITMQCTL    rabbitmqctl for that broker (default $MESH_TEST_RABBITMQCTL, else the node scripts/servers.sh starts)
#   FLEET_POSTGRES       a superuser's connection string (default $MESH_TEST_POSTGRES, else Host=127.0.0.1;Port=5432;Username=postgres)
#   FLEET_NATS_PORT      the port of the fleet's own nats-server (default 4222 when free, else a free one; chosen once)
# State:
#   FLEET_DIR            keys, secrets, signed policies, logs, pid files (default .fleet in the repository)
#   FLEET_NAME           names the virtual hosts, broker users, databases and roles (default meshbus-fleet), so a
#                        fleet on shared servers never touches anything else there
#   FLEET_READY_TIMEOUT  seconds `up` waits for every /health/ready (default 150); FLEET_STOP_TIMEOUT for `down` (40)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
D=${FLEET_DIR:-$ROOT/.fleet}
NAME=${FLEET_NAME:-meshbus-fleet}
CONFIGURATION=${FLEET_CONFIGURATION:-Debug}
READY_TIMEOUT=${FLEET_READY_TIMEOUT:-150}
STOP_TIMEOUT=${FLEET_STOP_TIMEOUT:-40}
DOMAINS=(acme partner)
WORKERS=(sync authorize-1 authorize-2 enforce-1 enforce-2 lineage)
AGENT_SUBJECT=acme.example/prod/agents/fleet-sample

log() { printf 'fleet.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

domain_of() { echo "$1.example/prod"; }
slug() { echo "${1//[^A-Za-z0-9.-]/_}"; }            # as `meshbus trust export` names files
sql_name() { local n="${NAME}_$1"; echo "${n//[^A-Za-z0-9_]/_}"; }
vhost_of() { echo "$NAME-$1"; }
secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }   # hex: safe in URIs and connection strings

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
BIN() { echo "$ROOT/$1/bin/$CONFIGURATION/net10.0/$2.dll"; }
meshbus() { dotnet "$(BIN Clients/MeshBus.Cli meshbus)" "$@"; }

# ---------------------------------------------------------------- servers
RABBIT_URI=${FLEET_RABBITMQ_URI:-${MESH_TEST_RABBITMQ_URI:-amqp://guest:guest@127.0.0.1:5672/}}
RABBIT_HOSTPORT=${RABBIT_URI#*@}; RABBIT_HOSTPORT=${RABBIT_HOSTPORT%%/*}
RABBIT_HOST=${RABBIT_HOSTPORT%:*}; RABBIT_PORT=${RABBIT_HOSTPORT##*:}
[ "$RABBIT_PORT" = "$RABBIT_HOSTPORT" ] && RABBIT_PORT=5672
rabbitmqctl_() {
  local ctl=${FLEET_RABBITMQCTL:-${MESH_TEST_RABBITMQCTL:-}}
  if [ -n "$ctl" ]; then "$ctl" "$@"; else
    timeout 90 env RABBITMQ_NODENAME=meshbus@localhost ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="${EPMD_PORT:-4369}" \
      RABBITMQ_DIST_PORT="${RMQ_DIST_PORT:-25672}" rabbitmqctl -n meshbus@localhost "$@"
  fi
}

PG_ADMIN=${FLEET_POSTGRES:-${MESH_TEST_POSTGRES:-Host=127.0.0.1;Port=5432;Username=postgres}}
pg_setting() { # KEY: its value in PG_ADMIN (case-insensitive key), empty when absent
  local part k
  IFS=';' read -ra parts <<< "$PG_ADMIN"
  for part in "${parts[@]}"; do
    k=${part%%=*}
    if [ "${k,,}" = "${1,,}" ]; then echo "${part#*=}"; return; fi
  done
}
PG_HOST=$(pg_setting Host); PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=$(pg_setting Port); PG_PORT=${PG_PORT:-5432}
PG_USER=$(pg_setting Username); PG_USER=${PG_USER:-postgres}
psql_() { PGPASSWORD=$(pg_setting Password) PGCONNECT_TIMEOUT=10 PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres "$@"; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { local p=$1; while port_busy "$p"; do p=$((20000 + RANDOM % 30000)); done; echo "$p"; }

# /health/ready of a worker: prints the status code (000 when nothing answers) and leaves the body in $D/run/NAME.ready
probe() { # NAME PORT
  local out="$D/run/$1.ready" code=000 line
  : > "$out"
  if exec 3<>"/dev/tcp/127.0.0.1/$2"; then
    printf 'GET /health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    timeout 5 cat <&3 > "$out" 2>/dev/null || true
    exec 3<&-
    line=$(head -n 1 "$out")
    [[ $line =~ ^HTTP/[0-9.]+\ ([0-9]{3}) ]] && code=${BASH_REMATCH[1]}
  fi 2>/dev/null
  echo "$code"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---------------------------------------------------------------- first start
build() {
  log "building the workers, the CLI and the sample agent ($CONFIGURATION)"
  dotnet build "$ROOT/samples/fleet.slnf" -c "$CONFIGURATION" -v q -nologo > "$D/build.log" 2>&1 ||
    { tail -n 30 "$D/build.log" >&2; die "build failed (log: $D/build.log)"; }
}

init_keys() {
  local d dom
  for d in "${DOMAINS[@]}"; do
    dom=$(domain_of "$d")
    if [ ! -f "$D/$d/keys/keyset.json" ]; then
      rm -rf "$D/$d/keys"
      meshbus keys init --domain "$dom" --out "$D/$d/keys" > "$D/$d/keys.init.log"
      log "created the keys of $dom in $D/$d/keys"
    fi
    meshbus trust export --domain-dir "$D/$d/keys" --format vkey --out "$D/pinned" > /dev/null
  done
  # each domain pins the other's root and imports its key set
  local peer
  for d in "${DOMAINS[@]}"; do
    for peer in "${DOMAINS[@]}"; do
      [ "$peer" = "$d" ] && continue
      dom=$(domain_of "$peer")
      if [ ! -f "$D/$d/keys/trust/$(slug "$dom").vkey" ]; then
        meshbus trust add --domain-dir "$D/$d/keys" --peer "$dom" --root "$D/pinned/$(slug "$dom").vkey" \
          --keyset "$D/pinned/$(slug "$dom").keyset.json" > /dev/null
        log "$(domain_of "$d") pins $dom"
      fi
    done
  done
}

init_policies() {
  local d
  for d in "${DOMAINS[@]}"; do
    mkdir -p "$D/$d/policy"
    [ -f "$D/$d/policy/domain.json" ] ||
      meshbus policy sign "$ROOT/samples/fleet/$d.policy.json" --domain-dir "$D/$d/keys" --out "$D/$d/policy/domain.json" > /dev/null
    if [ -f "$ROOT/samples/fleet/$d.egress.policy.json" ] && [ ! -f "$D/$d/policy/egress.json" ]; then
      meshbus policy sign "$ROOT/samples/fleet/$d.egress.policy.json" --domain-dir "$D/$d/keys" --out "$D/$d/policy/egress.json" > /dev/null
    fi
  done
}

init_broker() {
  local d vhost user
  for d in "${DOMAINS[@]}"; do
    [ -f "$D/state/broker-$d" ] && continue
    vhost=$(vhost_of "$d"); user="$NAME-$d"
    mkdir -p "$D/$d/secrets"; (umask 077; secret > "$D/$d/secrets/rabbitmq-password")
    rabbitmqctl_ add_vhost "$vhost" > /dev/null
    rabbitmqctl_ delete_user "$user" > /dev/null 2>&1 || true
    rabbitmqctl_ add_user "$user" "$(cat "$D/$d/secrets/rabbitmq-password")" > /dev/null
    rabbitmqctl_ set_permissions -p "$vhost" "$user" '.*' '.*' '.*' > /dev/null
    touch "$D/state/broker-$d"
    log "RabbitMQ: virtual host $vhost, worker user $user"
  done
}

init_database() {
  local d db pw
  for d in "${DOMAINS[@]}"; do
    [ -f "$D/state/database-$d" ] && continue
    db=$(sql_name "$d"); pw=$(secret)
    # the workers' role owns its database (they create their tables) but is no superuser
    psql_ -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS $db" \
      -c "CREATE ROLE $db LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$pw'" -c "CREATE DATABASE $db OWNER $db"
    (umask 077; printf 'Host=%s;Port=%s;Username=%s;Password=%s;Database=%s\n' "$PG_HOST" "$PG_PORT" "$db" "$pw" "$db" > "$D/$d/secrets/postgres-connection")
    touch "$D/state/database-$d"
    log "PostgreSQL: database and role $db"
  done
}

start_nats() {
  alive "$D/run/nats.pid" && return 0
  if [ ! -f "$D/nats/nats.conf" ]; then
    mkdir -p "$D/nats"
    free_port "${FLEET_NATS_PORT:-4222}" > "$D/nats/port"
    MESH_NATS_ORIGIN_DOMAIN=$(domain_of acme) MESH_NATS_TARGET_DOMAIN=$(domain_of partner) \
      "$ROOT/scripts/nats-test-config.sh" "$D/nats" "$(cat "$D/nats/port")" > "$D/nats/nats.env"
    # shellcheck disable=SC1091
    ( . "$D/nats/nats.env"; umask 077
      printf '%s' "$MESH_TEST_NATS_ORIGIN_PASSWORD" > "$D/acme/secrets/nats-password"
      printf '%s' "$MESH_TEST_NATS_TARGET_PASSWORD" > "$D/partner/secrets/nats-password"
      printf '%s' "$MESH_TEST_NATS_ORIGIN_USER" > "$D/acme/nats-user"
      printf '%s' "$MESH_TEST_NATS_TARGET_USER" > "$D/partner/nats-user" )
  fi
  local port; port=$(cat "$D/nats/port")
  port_busy "$port" && die "port $port of the fleet's NATS is taken by another process (remove $D/nats to choose another)"
  setsid nats-server -c "$D/nats/nats.conf" > "$D/logs/nats.log" 2>&1 < /dev/null &
  echo $! > "$D/run/nats.pid"
  local i
  for i in $(seq 1 100); do port_busy "$port" && return 0; sleep 0.1; done
  tail -n 20 "$D/logs/nats.log" >&2; die "nats-server did not open port $port"
}

start_worker() { # DOMAIN NAME
  local d=$1 name=$2 program=${2%-[0-9]*} dom; dom=$(domain_of "$1")
  local id="$d-$name" pidf="$D/run/$1-$2.pid"
  alive "$pidf" && return 0
  local folder=${program^}
  local dll; dll=$(BIN "Workers/$folder" "meshbus-$program")
  [ -f "$dll" ] || die "$dll is not built (run without --no-build)"
  local port; port=$(free_port $((18080 + RANDOM % 2000)))
  echo "$port" > "$D/run/$id.port"
  local env=(
    MeshBus__Domain="$dom" MeshBus__Transport=RabbitMq
    MeshBus__KeyDirectory="$D/$d/keys" MeshBus__DataDirectory="$D/$d/data"
    RabbitMqTransport__Host="$RABBIT_HOST" RabbitMqTransport__Port="$RABBIT_PORT"
    RabbitMqTransport__VirtualHost="$(vhost_of "$d")" RabbitMqTransport__Username="$NAME-$d"
    RabbitMqTransport__Password_FILE="$D/$d/secrets/rabbitmq-password"
    Storage__Provider=Postgres Storage__ConnectionString_FILE="$D/$d/secrets/postgres-connection"
    Sync__PolicyBundleFile="$D/$d/policy/domain.json" Authorize__PolicyBundleFile="$D/$d/policy/domain.json"
    Health__Urls="http://127.0.0.1:$port" OTEL_SERVICE_NAME="meshbus-$program"
  )
  [ -f "$D/$d/policy/egress.json" ] && env+=(Authorize__EgressPolicyBundleFile="$D/$d/policy/egress.json")
  if [ "$program" = sync ]; then
    env+=(Federation__Link=Nats Federation__Nats__Url="nats://127.0.0.1:$(cat "$D/nats/port")"
      Federation__Nats__User="$(cat "$D/$d/nats-user")" Federation__Nats__Password_FILE="$D/$d/secrets/nats-password")
  fi
  mkdir -p "$D/$d/data"
  ( cd "$D/$d/data" && exec env "${env[@]}" setsid dotnet "$dll" >> "$D/logs/$id.log" 2>&1 < /dev/null ) &
  echo $! > "$pidf"
}

wait_ready() {
  local end=$(( $(date +%s) + READY_TIMEOUT )) pending d name code
  while :; do
    pending=()
    for d in "${DOMAINS[@]}"; do
      for name in "${WORKERS[@]}"; do
        if ! alive "$D/run/$d-$name.pid"; then
          log "$d $name exited before it was ready; the end of $D/logs/$d-$name.log:"
          tail -n 40 "$D/logs/$d-$name.log" >&2; exit 1
        fi
        code=$(probe "$d-$name" "$(cat "$D/run/$d-$name.port")")
        [ "$code" = 200 ] || pending+=("$d-$name")
      done
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ "$(date +%s)" -ge "$end" ]; then
      for name in "${pending[@]}"; do
        if [ -s "$D/run/$name.ready" ]; then
          log "$name is not ready after ${READY_TIMEOUT} s; /health/ready said:"
          sed -n '/^\r\{0,1\}$/,$p' "$D/run/$name.ready" | sed '1d' >&2
        else
          log "$name is not ready after ${READY_TIMEOUT} s: nothing answered on 127.0.0.1:$(cat "$D/run/$name.port")"
        fi
        log "the end of $D/logs/$name.log:"
        tail -n 30 "$D/logs/$name.log" >&2
      done
      die "not ready: ${pending[*]} (the processes keep running: scripts/fleet.sh status, scripts/fleet.sh down)"
    fi
    sleep 1
  done
}

up() {
  local no_build=0
  [ "${1:-}" = --no-build ] && no_build=1
  local t0; t0=$(date +%s)
  command -v nats-server > /dev/null || die "nats-server is not installed (scripts/servers.sh installs it)"
  command -v psql > /dev/null || die "psql is not installed (the postgresql package)"
  mkdir -p "$D/state" "$D/run" "$D/logs" "$D/acme/secrets" "$D/partner/secrets"
  chmod 700 "$D"
  [ $no_build -eq 1 ] || build
  init_keys
  init_policies
  init_broker
  init_database
  start_nats
  local d name
  for d in "${DOMAINS[@]}"; do
    for name in "${WORKERS[@]}"; do start_worker "$d" "$name"; done
  done
  wait_ready
  log "up: ${#DOMAINS[@]} domains, $(( ${#DOMAINS[@]} * ${#WORKERS[@]} )) workers ready in $(( $(date +%s) - t0 )) s (state and logs in $D)"
}

# ---------------------------------------------------------------- status
status() {
  [ -d "$D/run" ] || { echo "no fleet in $D"; return 1; }
  local d name pidf state code all=0
  printf '%-8s %-12s %-8s %-8s %s\n' domain worker pid state ready
  for d in "${DOMAINS[@]}"; do
    for name in "${WORKERS[@]}"; do
      pidf="$D/run/$d-$name.pid"
      if alive "$pidf"; then
        state=running; code=$(probe "$d-$name" "$(cat "$D/run/$d-$name.port")")
      else
        state=stopped; code=-; all=1
      fi
      [ "$code" = 200 ] || all=1
      printf '%-8s %-12s %-8s %-8s %s\n' "$d" "$name" "$( [ -f "$pidf" ] && cat "$pidf" || echo -)" "$state" "$code"
    done
  done
  if alive "$D/run/nats.pid"; then echo "nats     pid $(cat "$D/run/nats.pid") on 127.0.0.1:$(cat "$D/nats/port")"
  else echo "nats     stopped"; all=1; fi
  for d in "${DOMAINS[@]}"; do
    [ -f "$D/$d/secrets/postgres-connection" ] || continue
    echo
    Storage__Provider=Postgres Storage__ConnectionString="$(cat "$D/$d/secrets/postgres-connection")" \
      meshbus status --domain "$(domain_of "$d")" --keys "$D/$d/keys" || all=1
  done
  return $all
}

# ---------------------------------------------------------------- the sample agent
sample() {
  local kind=${1:-cross}
  [ -f "$D/state/broker-acme" ] || die "no fleet in $D: run scripts/fleet.sh up first"
  local a="$D/agent" vhost; vhost=$(vhost_of acme)
  mkdir -p "$a"
  if [ ! -f "$D/state/agent" ]; then
    rm -f "$a/agent.key" "$a/attester.key"
    meshbus agent keygen --out "$a/agent.key" > "$a/agent.pub"
    meshbus agent attester-init --domain-dir "$D/acme/keys" --name fleet-attester --out "$a/attester.key" > /dev/null
    # the agent's own broker user: `meshbus agent provision` declares its queue (with the workers' user) and prints
    # the user with a fresh password and its permissions
    meshbus agent provision --agent "$AGENT_SUBJECT" --vhost "$vhost" \
      --broker "amqp://$NAME-acme:$(cat "$D/acme/secrets/rabbitmq-password")@$RABBIT_HOST:$RABBIT_PORT/$vhost" > "$a/provision.txt"
    local user password queue
    read -r _ _ user password < <(grep '^rabbitmqctl add_user ' "$a/provision.txt")
    queue=$(sed -n 's/^# queue  *//p' "$a/provision.txt")
    [ -n "$user" ] && [ -n "$password" ] && [ -n "$queue" ] || die "unexpected output of meshbus agent provision: $a/provision.txt"
    (umask 077; printf '%s' "$password" > "$a/broker-password"); echo "$user" > "$a/broker-user"
    rabbitmqctl_ delete_user "$user" > /dev/null 2>&1 || true
    rabbitmqctl_ add_user "$user" "$password" > /dev/null
    # The profile printed lets the agent declare nothing; the .NET SDK on MassTransit declares its queue, its bus
    # endpoint (named after the queue by the sample) and the ingress exchanges it sends to (docs/operations.md,
    # "Agents' broker users"), so this user may configure exactly those names, and write only the ingress and its own.
    local q; q=$(printf '%s' "$queue" | sed 's/[.]/\\./g')
    rabbitmqctl_ set_permissions -p "$vhost" "$user" "^($q|$q-bus|agent-intents|agent-reports)\$" \
      "^($q|$q-bus|agent-intents|agent-reports)\$" "^($q|$q-bus)\$" > /dev/null
    touch "$D/state/agent"
    log "provisioned $AGENT_SUBJECT: broker user $user"
  fi
  # a fresh attestation and credential for each run (credentials are short-lived)
  meshbus agent attest --attester-key "$a/attester.key" --agent "$AGENT_SUBJECT" --public-key "$(cat "$a/agent.pub")" \
    --image-digest sha256:6f1ed002ab5595859014ebf0951522d9fd1d6a6b8bd5cb5ad1f3b7d3e5d6e8c1 --group deployers \
    --ttl 600 --out "$a/attestation.jws" > /dev/null
  meshbus agent issue --domain-dir "$D/acme/keys" --agent "$AGENT_SUBJECT" --public-key "$(cat "$a/agent.pub")" \
    --attestation "$a/attestation.jws" --ttl 600 > "$a/credential.jws"
  local target resource
  case "$kind" in
    cross) target=$(domain_of partner); resource=k8s://partner-prod/web/frontend ;;
    local) target=$(domain_of acme); resource=k8s://acme-prod/web/frontend ;;
    *) die "sample takes cross or local, not '$kind'" ;;
  esac
  dotnet "$(BIN samples/MeshBus.Samples.Agent meshbus-sample-agent)" \
    --broker "amqp://$RABBIT_HOST:$RABBIT_PORT/$vhost" --user "$(cat "$a/broker-user")" --password-file "$a/broker-password" \
    --subject "$AGENT_SUBJECT" --home "$(domain_of acme)" --key "$a/agent.key" --credential "$a/credential.jws" \
    --trust "$D/pinned" --action deploy --resource "$resource" --target "$target" --timeout "${FLEET_SAMPLE_TIMEOUT:-90}" --run
}

# ---------------------------------------------------------------- down
down() {
  local purge=0
  [ "${1:-}" = --purge ] && purge=1
  local t0; t0=$(date +%s)
  local pids=() f
  for f in "$D"/run/*.pid; do
    [ -e "$f" ] || continue
    [ "$f" = "$D/run/nats.pid" ] && continue
    alive "$f" && { kill -TERM "$(cat "$f")" 2>/dev/null || true; pids+=("$(cat "$f")"); }
  done
  local end=$(( $(date +%s) + STOP_TIMEOUT )) left p
  while :; do
    left=()
    for p in "${pids[@]+"${pids[@]}"}"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
    [ ${#left[@]} -eq 0 ] && break
    if [ "$(date +%s)" -ge "$end" ]; then
      log "killing ${#left[@]} worker(s) still running after ${STOP_TIMEOUT} s: ${left[*]}"
      kill -KILL "${left[@]}" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  # NATS last: the Sync workers flush their bridge before they exit
  if alive "$D/run/nats.pid"; then
    p=$(cat "$D/run/nats.pid"); kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$D"/run/*.pid
  log "down: ${#pids[@]} workers and NATS stopped in $(( $(date +%s) - t0 )) s"
  if [ $purge -eq 1 ] && [ -d "$D" ]; then
    local d
    for d in "${DOMAINS[@]}"; do
      if [ -f "$D/state/broker-$d" ]; then
        rabbitmqctl_ delete_vhost "$(vhost_of "$d")" > /dev/null 2>&1 || log "warning: could not delete virtual host $(vhost_of "$d")"
        rabbitmqctl_ delete_user "$NAME-$d" > /dev/null 2>&1 || true
      fi
      if [ -f "$D/state/database-$d" ]; then
        psql_ -c "DROP DATABASE IF EXISTS $(sql_name "$d") WITH (FORCE)" -c "DROP ROLE IF EXISTS $(sql_name "$d")" ||
          log "warning: could not drop database $(sql_name "$d")"
      fi
    done
    [ -f "$D/agent/broker-user" ] && { rabbitmqctl_ delete_user "$(cat "$D/agent/broker-user")" > /dev/null 2>&1 || true; }
    rm -rf "$D"
    log "purged: virtual hosts, users, databases, roles and $D"
  fi
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) shift; down "$@" ;;
  status) status ;;
  sample) shift; sample "$@" ;;
  *) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; exit $? ;;
esac

#!/usr/bin/env bash
# Writes a nats-server 2.9 configuration for tests: loopback only, JetStream with file storage in DIR, one NATS user
# per test domain that may publish only as itself, and an unauthenticated default user for the other tests. Prints the
# variables the federation tests read (source its output, or let scripts/test.sh export them).
#
#   scripts/nats-test-config.sh DIR PORT > DIR/nats.env && nats-server -c DIR/nats.conf
#
# The domains are acme.example/prod and globex.example/prod unless MESH_NATS_ORIGIN_DOMAIN / MESH_NATS_TARGET_DOMAIN
# name others (scripts/fleet.sh runs acme.example/prod and partner.example/prod).
# Domain names become subject tokens by Libraries/MeshBus.Federation/Subjects.cs (docs/federation.md): every byte
# outside [a-z0-9-] is written as _xx. The permissions below are the production ones for one domain (docs/federation.md).
set -euo pipefail
DIR=$1; PORT=$2
mkdir -p "$DIR/jetstream"
token() { # the subject token of a domain name
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    if [[ $c =~ [a-z0-9-] ]]; then out+=$c; else out+=$(printf '_%02x' "'$c"); fi
  done
  printf '%s' "$out"
}
pw() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
domain_user() { # USER PASSWORD DOMAIN
  local t; t=$(token "$3")
  cat <<CONF
    { user: "$1", password: "$2",
      permissions: {
        publish: { allow: [ "meshbus.*.$t.>", "\$JS.API.INFO",
                            "\$JS.API.STREAM.CREATE.MESHBUS_$t", "\$JS.API.STREAM.UPDATE.MESHBUS_$t", "\$JS.API.STREAM.INFO.MESHBUS_$t",
                            "\$JS.API.CONSUMER.CREATE.MESHBUS_$t.>", "\$JS.API.CONSUMER.DURABLE.CREATE.MESHBUS_$t.>",
                            "\$JS.API.CONSUMER.INFO.MESHBUS_$t.>", "\$JS.API.CONSUMER.MSG.NEXT.MESHBUS_$t.>", "\$JS.ACK.MESHBUS_$t.>" ] },
        subscribe: { allow: [ "_INBOX_$t.>" ] }
      } }
CONF
}
ORIGIN=${MESH_NATS_ORIGIN_DOMAIN:-acme.example/prod}; TARGET=${MESH_NATS_TARGET_DOMAIN:-globex.example/prod}
OPW=$(pw); TPW=$(pw)
cat > "$DIR/nats.conf" <<CONF
listen: 127.0.0.1:$PORT
jetstream { store_dir: "$DIR/jetstream" }
no_auth_user: meshbus-tests
authorization {
  users: [
    { user: "meshbus-tests", password: "$(pw)" },
$(domain_user meshbus-origin "$OPW" "$ORIGIN"),
$(domain_user meshbus-target "$TPW" "$TARGET")
  ]
}
CONF
cat <<ENV
export MESH_TEST_NATS_ORIGIN_DOMAIN='$ORIGIN' MESH_TEST_NATS_ORIGIN_USER=meshbus-origin MESH_TEST_NATS_ORIGIN_PASSWORD='$OPW'
export MESH_TEST_NATS_TARGET_DOMAIN='$TARGET' MESH_TEST_NATS_TARGET_USER=meshbus-target MESH_TEST_NATS_TARGET_PASSWORD='$TPW'
ENV

#!/bin/sh
# The compose fleet's first start (the meshbus-init service, run before any worker; docs/operations.md): in each
# domain's key volume, mounted at /meshbus/<domain>, it creates what scripts/fleet.sh creates with the same CLI commands:
#   domain/         the key directory (`meshbus keys init`), pinning the other domain's root and key set (`meshbus trust add`)
#   policy/*.json   the policies of /policies (samples/fleet) signed with the domain's key (`meshbus policy sign`)
# Idempotent: what exists is kept, so a restart changes nothing and never replaces a key.
set -eu
DOMAINS="acme partner"
V=${MESHBUS_INIT_VOLUMES:-/meshbus}; POLICIES=${MESHBUS_INIT_POLICIES:-/policies}
pinned=$(mktemp -d)
for d in $DOMAINS; do
  dir=$V/$d
  if [ ! -f "$dir/domain/keyset.json" ]; then
    rm -rf "$dir/domain"
    meshbus keys init --domain "$d.example/prod" --out "$dir/domain"
  fi
  meshbus trust export --domain-dir "$dir/domain" --format vkey --out "$pinned" > /dev/null
done
for d in $DOMAINS; do
  for peer in $DOMAINS; do
    [ "$peer" = "$d" ] && continue
    name="$peer.example/prod"; slug="$peer.example_prod"
    if [ ! -f "$V/$d/domain/trust/$slug.vkey" ]; then
      meshbus trust add --domain-dir "$V/$d/domain" --peer "$name" --root "$pinned/$slug.vkey" --keyset "$pinned/$slug.keyset.json"
    fi
  done
  mkdir -p "$V/$d/policy"
  for scope in policy egress.policy; do
    src="$POLICIES/$d.$scope.json"; out="$V/$d/policy/${scope%.policy}.json"
    [ "$scope" = policy ] && out="$V/$d/policy/domain.json"
    if [ -f "$src" ] && [ ! -f "$out" ]; then
      meshbus policy sign "$src" --domain-dir "$V/$d/domain" --out "$out"
    fi
  done
done
rm -rf "$pinned"
echo "meshbus-init: keys, pins and signed policies in place"

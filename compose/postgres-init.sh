#!/bin/sh
# Runs once, when the PostgreSQL container starts on an empty data volume (/docker-entrypoint-initdb.d): creates the
# workers' role and database from the workers' own connection string (the secret mounted at
# /run/secrets/db-connection: Username, Password, Database). The role owns its database, so the workers can create
# their tables, but it is no superuser; the superuser (POSTGRES_USER, password from POSTGRES_PASSWORD_FILE) is for
# the operator only.
set -eu
cs=$(cat "${DB_CONNECTION_FILE:-/run/secrets/db-connection}")
get() { printf '%s\n' "$cs" | tr ';' '\n' | sed -n "s/^ *$1 *= *//Ip" | head -n 1; }
user=$(get Username); password=$(get Password); db=$(get Database)
[ -n "$user" ] && [ -n "$password" ] && [ -n "$db" ] || { echo "db-connection must name Username, Password and Database" >&2; exit 1; }
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v user="$user" -v password="$password" -v db="$db" <<'SQL'
CREATE ROLE :"user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
SQL

#!/bin/sh
# The official image's start-up, as far as this project uses it: an empty PGDATA is initialised with
# POSTGRES_USER (default postgres) and POSTGRES_PASSWORD, POSTGRES_DB is created, and the server listens
# on every address with password authentication.
set -eu
user="${POSTGRES_USER:-postgres}"
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set: set the database superuser's password}"
  password_file="$(mktemp)"
  printf '%s' "$POSTGRES_PASSWORD" > "$password_file"
  # UTF-8, as the official image: without a locale initdb would choose SQL_ASCII, whose text drivers get as bytes.
  initdb --pgdata "$PGDATA" --username "$user" --pwfile "$password_file" --auth-local trust --auth-host scram-sha-256 \
    --encoding UTF8 --locale C.UTF-8
  rm "$password_file"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  database="${POSTGRES_DB:-$user}"
  if [ "$database" != postgres ]; then
    pg_ctl --pgdata "$PGDATA" --options "-c listen_addresses=''" --wait start
    createdb --username "$user" "$database"
    pg_ctl --pgdata "$PGDATA" --mode fast --wait stop
  fi
fi
[ "$1" = postgres ] && shift && set -- postgres -D "$PGDATA" "$@"
exec "$@"

#!/bin/sh
# The official image's start-up, as far as this project uses it: an empty PGDATA is initialised with
# POSTGRES_USER (default postgres) and POSTGRES_PASSWORD (or the file POSTGRES_PASSWORD_FILE names: a
# Docker secret), POSTGRES_DB is created, and the server listens on every address with password authentication,
# or with the method POSTGRES_HOST_AUTH_METHOD names (`trust` needs no password: bitbucket-pipelines.yml's service).
set -eu
user="${POSTGRES_USER:-postgres}"
host_auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
      echo "both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set: set only one of them" >&2
      exit 1
    fi
    # As the official image reads it: the file's content without its trailing newlines.
    POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
  fi
  if [ "$host_auth" != trust ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set: set the database superuser's password (or POSTGRES_PASSWORD_FILE)}"
  fi
  password_file="$(mktemp)"
  printf '%s' "${POSTGRES_PASSWORD:-}" > "$password_file"
  # initdb refuses an empty password file: a superuser without a password (trust) is given none.
  password_option=""
  [ -s "$password_file" ] && password_option="--pwfile=$password_file"
  # UTF-8, as the official image: without a locale initdb would choose SQL_ASCII, whose text drivers get as bytes.
  initdb ${password_option:+"$password_option"} --pgdata "$PGDATA" --username "$user" --auth-local trust --auth-host "$host_auth" \
    --encoding UTF8 --locale C.UTF-8
  rm "$password_file"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all $host_auth" >> "$PGDATA/pg_hba.conf"
  database="${POSTGRES_DB:-$user}"
  if [ "$database" != postgres ]; then
    pg_ctl --pgdata "$PGDATA" --options "-c listen_addresses=''" --wait start
    createdb --username "$user" "$database"
    pg_ctl --pgdata "$PGDATA" --mode fast --wait stop
  fi
fi
[ "$1" = postgres ] && shift && set -- postgres -D "$PGDATA" "$@"
exec "$@"

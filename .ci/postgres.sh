#!/usr/bin/env bash
# Install (apt-get, if needed) and start a throw-away PostgreSQL server on 127.0.0.1 for the test suite,
# then print its URL. Idempotent: a server already running from this script is reused.
#
#   eval "$(.ci/postgres.sh --export)"   # sets AUTOGAI_TEST_POSTGRES_URL
#   .ci/postgres.sh                      # prints the URL
#   .ci/postgres.sh --stop               # stops the server
#
# Settings (environment): AUTOGAI_PG_PORT (54329), AUTOGAI_PG_DIR (/tmp/autogai-postgres),
# AUTOGAI_PG_USER / AUTOGAI_PG_PASSWORD / AUTOGAI_PG_DB (autogai / autogai / autogai_test).
# The fault tests and bench/faults.py stop and restart servers of their own (another port and directory),
# never the shared one: `AUTOGAI_PG_PORT=P AUTOGAI_PG_DIR=D .ci/postgres.sh [--stop]`.
set -euo pipefail
# runuser, useradd and the server binaries live in sbin, which a minimal PATH lacks.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

PORT="${AUTOGAI_PG_PORT:-54329}"
DIR="${AUTOGAI_PG_DIR:-/tmp/autogai-postgres}"
DB_USER="${AUTOGAI_PG_USER:-autogai}"
DB_PASSWORD="${AUTOGAI_PG_PASSWORD:-autogai}"
DB_NAME="${AUTOGAI_PG_DB:-autogai_test}"
URL="postgresql://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${PORT}/${DB_NAME}"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  local candidate
  for candidate in /usr/lib/postgresql/*/bin; do
    [ -x "$candidate/pg_ctl" ] && { echo "$candidate"; return 0; }
  done
  command -v pg_ctl >/dev/null 2>&1 && { dirname "$(readlink -f "$(command -v pg_ctl)")"; return 0; }
  return 1
}

BINDIR="$(find_bindir || true)"
if [ -z "$BINDIR" ]; then
  log "installing PostgreSQL with apt-get"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
  BINDIR="$(find_bindir)"
fi

# PostgreSQL refuses to run as root: run it as the 'postgres' system user then.
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DIR" --shell /bin/sh postgres
  AS_PG=(runuser -u postgres --)
else
  AS_PG=()
fi

if [ "${1:-}" = "--stop" ]; then
  [ -f "$DIR/data/PG_VERSION" ] && "${AS_PG[@]}" "$BINDIR/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
  exit 0
fi

mkdir -p "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres "$DIR"

if [ ! -f "$DIR/data/PG_VERSION" ]; then
  log "initialising a cluster in $DIR/data"
  "${AS_PG[@]}" "$BINDIR/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
fi

if ! "${AS_PG[@]}" "$BINDIR/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  log "starting on 127.0.0.1:$PORT"
  "${AS_PG[@]}" "$BINDIR/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200 -c fsync=off" start >/dev/null
fi

PSQL=("${AS_PG[@]}" "$BINDIR/psql" -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
if [ "$("${PSQL[@]}" -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname='${DB_USER}'")" != "1" ]; then
  "${PSQL[@]}" -d postgres -c "CREATE ROLE ${DB_USER} LOGIN PASSWORD '${DB_PASSWORD}' CREATEDB" >/dev/null
fi
if [ "$("${PSQL[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname='${DB_NAME}'")" != "1" ]; then
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}" >/dev/null
fi

if [ "${1:-}" = "--export" ]; then
  echo "export AUTOGAI_TEST_POSTGRES_URL='${URL}'"
else
  echo "${URL}"
fi

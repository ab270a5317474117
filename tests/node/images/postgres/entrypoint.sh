#!/bin/sh
# Entrypoint of localhost/llsd-postgres:1 (Debian's PostgreSQL) for the real-node tests.
#
# First start (no $PGDATA/PG_VERSION): initdb, then the role and database from the env:
#   POSTGRES_PASSWORD  required; the password of POSTGRES_USER
#   POSTGRES_USER      default postgres; created as the superuser
#   POSTGRES_DB        default $POSTGRES_USER; created, owned by POSTGRES_USER
# then, every start: `postgres` in the foreground (PID 1; the image's StopSignal is SIGINT, a
# fast shutdown) on 0.0.0.0:5432 (PGPORT changes it, for the server and psql alike), password
# (scram-sha-256) auth over TCP, trust on the unix socket in $PGDATA (for
# `kubectl exec ... psql -U USER DB`: PGHOST points there).
#
# Runs as any non-root uid (image default 999, or the pod's runAsUser) with a read-only root:
# everything it writes is under $PGDATA (default /var/lib/postgresql/data/pgdata). Mount the
# volume (emptyDir) at /var/lib/postgresql/data, the parent: initdb must own, and chmod 0700,
# the data dir itself, which a volume root does not allow.
# Extra arguments are passed to postgres (e.g. -c log_statement=all).
set -eu

say() { echo "llsd-postgres: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA

[ "$(id -u)" != 0 ] || die "PostgreSQL refuses to run as root: run as uid 999 (the image's user) or any other non-root uid"

parent=$(dirname "$PGDATA")
[ -w "$parent" ] || [ -w "$PGDATA" ] ||
  die "$parent is not writable by uid $(id -u): mount a volume there (an emptyDir, with fsGroup when not running as 999)"

# initdb and postgres look their uid up in the user database; a pod's arbitrary runAsUser has
# no /etc/passwd entry, so give it one through nss_wrapper (files beside the data dir).
if ! whoami >/dev/null 2>&1; then
  nss="$parent/.nss-wrapper"
  mkdir -p "$nss"
  printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/sh\n' "$(id -u)" "$(id -g)" "$parent" >"$nss/passwd"
  printf 'postgres:x:%s:\n' "$(id -g)" >"$nss/group"
  export LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$nss/passwd" NSS_WRAPPER_GROUP="$nss/group"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || die "POSTGRES_PASSWORD is empty: set it (the password of $POSTGRES_USER)"
  say "initialising $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  # The password goes through a pipe, never to disk or the command line.
  printf '%s\n' "$POSTGRES_PASSWORD" |
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile=/dev/stdin \
      --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-instructions >&2
  {
    echo "# llsd-postgres: any address, password auth"
    echo "host all all 0.0.0.0/0 scram-sha-256"
    echo "host all all ::/0 scram-sha-256"
  } >>"$PGDATA/pg_hba.conf"
  {
    echo "# llsd-postgres"
    echo "listen_addresses = '*'"
    echo "unix_socket_directories = '$PGDATA'"
    echo "password_encryption = 'scram-sha-256'"
  } >>"$PGDATA/postgresql.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    # A server on the unix socket only, just long enough to create the database.
    pg_ctl --pgdata="$PGDATA" --wait --silent -o "-c listen_addresses=''" start >&2
    printf 'CREATE DATABASE :"db";\n' |
      psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 -v db="$POSTGRES_DB" \
        --host="$PGDATA" --username="$POSTGRES_USER" --dbname=postgres >&2
    pg_ctl --pgdata="$PGDATA" --wait --silent -m fast stop >&2
  fi
  say "initialised"
fi

exec postgres "$@"

#!/bin/sh
# Entrypoint of localhost/llsd-redis:1 (Debian's redis-server) for the real-node tests.
#
#   REDIS_PASSWORD  required; what clients AUTH with (requirepass: the default user's password)
#   REDIS_DATA_DIR  default /data; must be writable: mount a volume there (an emptyDir)
#
# Runs `redis-server` in the foreground (PID 1; SIGTERM stops it) on 0.0.0.0:6379 (and [::]
# when the pod has IPv6), as any non-root uid (image default 999, or the pod's runAsUser) with
# a read-only root. The only file it writes is its config, $REDIS_DATA_DIR/llsd-redis.conf
# (mode 0600, rewritten at every start): the password goes there, never on a command line
# (ps, /proc/*/cmdline). Persistence is off (no RDB snapshot, no AOF): the data lives as long
# as the process. Protected mode is off (it only guards a server without a password).
# No REDIS_PORT: Kubernetes sets it (tcp://IP:PORT) in every pod of a namespace that has a
# Service named redis. `--port N` changes the port.
# Extra arguments are passed to redis-server after the config file, e.g. `--appendonly yes`
# (files in $REDIS_DATA_DIR) or `--loglevel verbose`.
# `kubectl exec ... -- redis-cli -a PASSWORD ping` (or env REDISCLI_AUTH) answers PONG.
set -eu

say() { echo "llsd-redis: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

: "${REDIS_DATA_DIR:=/data}"

[ -n "${REDIS_PASSWORD:-}" ] || die "REDIS_PASSWORD is empty: set it (clients AUTH with it)"
nl='
'
cr=$(printf '\r')
case "$REDIS_PASSWORD" in
  *"$nl"* | *"$cr"*) die "REDIS_PASSWORD has a line break: a config file line cannot hold it" ;;
esac
case "$REDIS_DATA_DIR" in
  *'"'* | *\\* | *"$nl"*) die "REDIS_DATA_DIR=$REDIS_DATA_DIR: no quotes, backslashes or line breaks, please" ;;
esac
if ! { [ -d "$REDIS_DATA_DIR" ] && [ -w "$REDIS_DATA_DIR" ]; }; then
  die "$REDIS_DATA_DIR is not a directory writable by uid $(id -u): mount a volume there (an emptyDir)"
fi
[ "$(id -u)" != 0 ] || say "WARNING: running as root; the image's user is 999 (any non-root uid works)"

# In a double-quoted config argument, redis reads \\ and \" (and \n, \xHH, ...) as escapes:
# escape every backslash and double quote, so the password is taken byte for byte.
pass=$(printf '%s' "$REDIS_PASSWORD" | sed 's/[\\"]/\\&/g')
conf="$REDIS_DATA_DIR/llsd-redis.conf"
umask 077
rm -f "$conf.tmp"
cat >"$conf.tmp" <<EOF
# llsd-redis: written by llsd-redis-entrypoint at every start; edits are lost.
bind * -::*
port 6379
protected-mode no
requirepass "$pass"
daemonize no
supervised no
logfile ""
dir "$REDIS_DATA_DIR"
save ""
appendonly no
EOF
mv -f "$conf.tmp" "$conf"
unset pass REDIS_PASSWORD
umask 022

say "redis-server, password auth, data dir $REDIS_DATA_DIR, persistence off"
exec redis-server "$conf" "$@"

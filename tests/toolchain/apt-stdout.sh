#!/usr/bin/env bash
# tests/apt.sh writes nothing on stdout, so a script whose stdout is data can install what it
# needs on a fresh machine: tests/node/up once read apt's "Reading package lists..." as an image
# archive printed by tests/node/images/build.sh. A fake apt-get (first install fails, as with a
# stale package list) prints on stdout; the caller's stdout must stay empty.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fake="$(mktemp -d)"
trap 'rm -rf "$fake"' EXIT
cat >"$fake/apt-get" <<'FAKE'
#!/bin/sh
echo "Reading package lists..."
echo "apt-get $*" >>"$(dirname "$0")/calls"
case "$*" in
  update) exit 0 ;;
  *) [ -e "$(dirname "$0")/updated" ] && exit 0; touch "$(dirname "$0")/updated"; exit 100 ;;
esac
FAKE
chmod +x "$fake/apt-get"
out="$(
  PATH="$fake:$PATH"
  log() { echo "apt-stdout: $*" >&2; }
  die() { echo "apt-stdout: $*" >&2; exit 1; }
  # shellcheck source=../apt.sh
  source "$HERE/../apt.sh"
  apt_install some-package 2>/dev/null
)"
calls="$(cat "$fake/calls")"
expected="apt-get install -y --no-install-recommends some-package
apt-get update
apt-get install -y --no-install-recommends some-package"
if [[ "$calls" != "$expected" ]]; then
  echo "apt-stdout: FAILED: apt_install ran:" >&2
  echo "$calls" >&2
  exit 1
fi
if [[ -n "$out" ]]; then
  echo "apt-stdout: FAILED: apt_install wrote on stdout: $out" >&2
  exit 1
fi
echo "apt-stdout: ok (apt's output went to stderr; install retried after an update)"

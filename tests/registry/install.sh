#!/usr/bin/env bash
# Installs Debian's docker-registry (distribution 2.8.2), the real OCI registry
# that tests/support/src/registry.rs runs on loopback. Idempotent: exits at once
# when the binary is already there. Never leaves the packaged service running:
# the tests start their own registry with their own config and port.
set -euo pipefail

BIN=/usr/bin/docker-registry
log() { echo "registry/install.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -x "$BIN" ]]; then
  exit 0
fi

[[ "$(id -u)" -eq 0 ]] || die "$BIN is missing and installing it needs root (apt-get install docker-registry)"
command -v apt-get >/dev/null || die "$BIN is missing and apt-get is not available (Debian/Ubuntu only)"

# The packaged service runs `docker-registry serve /etc/docker/registry/config.yml`;
# our tests' registries run with configs in temp dirs, so they never match this.
service_pids() { pgrep -f "^$BIN serve /etc/docker/registry/" || true; }
before="$(service_pids)"

# Keep the package's maintainer scripts from starting the service: invoke-rc.d
# and deb-systemd-invoke consult policy-rc.d, and 101 means "action forbidden".
# An existing policy-rc.d (containers ship one that forbids everything) is kept.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
remove_policy() { if [[ -n "$own_policy" ]]; then rm -f "$policy"; fi; }
trap remove_policy EXIT

# shellcheck source=../apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"
apt_install docker-registry

[[ -x "$BIN" ]] || die "the docker-registry package installed but $BIN is missing"

# Belt and braces: if the service started anyway, stop and disable it, then
# end only the registry processes that appeared during this install.
# The postinst enables the unit for boot even when it may not start it;
# `systemctl disable` only removes symlinks, so it works without systemd running.
if command -v systemctl >/dev/null; then
  log "running: systemctl disable docker-registry.service (tests start their own registry)"
  systemctl disable docker-registry.service >/dev/null 2>&1 || true
  if systemctl is-system-running >/dev/null 2>&1; then
    systemctl stop docker-registry.service >/dev/null 2>&1 || true
  fi
fi
for pid in $(service_pids); do
  if ! grep -qx "$pid" <<<"$before"; then
    log "stopping the packaged docker-registry service (pid $pid) started by the install"
    kill "$pid" 2>/dev/null || true
  fi
done
sleep 0.2
for pid in $(service_pids); do
  if ! grep -qx "$pid" <<<"$before"; then
    kill -9 "$pid" 2>/dev/null || true
  fi
done

log "installed: $("$BIN" --version 2>&1 | head -n 1)"

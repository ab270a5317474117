#!/usr/bin/env bash
# Installs Debian's chromium, the browser the playground's tests drive (playground/test/
# browser.mjs, through playwright-core with executablePath). Playwright's own browser download
# is not used: it needs hosts this machine cannot reach, and a distribution package is the one
# that gets security updates. Idempotent: exits at once when the binary is there.
set -euo pipefail

BIN="${CHROMIUM:-/usr/bin/chromium}"
log() { echo "browser/install.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -x "$BIN" ]]; then
  exit 0
fi
[[ "$BIN" == /usr/bin/chromium ]] || die "CHROMIUM=$BIN does not exist"
[[ "$(id -u)" -eq 0 ]] || die "$BIN is missing and installing it needs root (apt-get install chromium)"
command -v apt-get >/dev/null || die "$BIN is missing and apt-get is not available (Debian/Ubuntu only)"

log "installing Debian's chromium for the playground's browser tests (first run only, ~1 min)"
# shellcheck source=../apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"
apt_install chromium
[[ -x "$BIN" ]] || die "the chromium package installed but $BIN is missing"
log "installed: chromium $(dpkg-query -W -f '${Version}' chromium)"

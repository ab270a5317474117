# Sourced by the install scripts of Debian packages the tests need (tests/registry/,
# tests/browser/). Expects log() and die() from the caller.

# apt_install PACKAGE: installs it without recommends; on failure refreshes the package lists
# once (a stale or empty list is the usual cause) and retries. apt's progress goes to stderr:
# callers' stdout is data (tests/node/images/build.sh prints its archives there, and
# tests/node/up read "Reading package lists..." as one on a fresh machine).
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  log "running: apt-get install -y --no-install-recommends $1"
  if ! apt-get install -y --no-install-recommends "$1" >&2; then
    log "install failed; running: apt-get update, then retrying the install"
    apt-get update >&2 || die "apt-get update failed"
    apt-get install -y --no-install-recommends "$1" >&2 || die "apt-get install $1 failed"
  fi
}

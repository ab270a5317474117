#!/usr/bin/env bash
# Imports OCI image archives made by build.sh into containerd's CRI namespace (k8s.io), so the
# kubelet finds them with imagePullPolicy IfNotPresent and never pulls.
#
# Usage: import.sh --address CONTAINERD_SOCKET ARCHIVE...
#
# An archive is imported only when its image name is missing from containerd or points at
# another manifest digest: a warm run costs a few `ctr images ls`, not a re-import (20-60 s
# for the starter). The name and digest are read from the archive's index.json.
# Uses Debian's `ctr` (package containerd), or $CTR when set (e.g. a containerd 2.x build).
# Progress goes to stderr; stdout stays empty.
set -euo pipefail

log() { echo "images/import.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

address=""
archives=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --address) [[ $# -ge 2 ]] || die "--address needs a socket path"; address="$2"; shift 2 ;;
    --address=*) address="${1#*=}"; shift ;;
    -h|--help) sed -n '2,11p' "$0" >&2; exit 0 ;;
    -*) die "unknown option $1 (usage: import.sh --address CONTAINERD_SOCKET ARCHIVE...)" ;;
    *) archives+=("$1"); shift ;;
  esac
done
[[ -n "$address" ]] || die "usage: import.sh --address CONTAINERD_SOCKET ARCHIVE..."
[[ ${#archives[@]} -gt 0 ]] || die "no archive given (build.sh prints their paths)"
[[ -S "$address" ]] || die "$address is not a socket: is the test containerd running?"

CTR="${CTR:-$(command -v ctr || true)}"
[[ -n "$CTR" && -x "$CTR" ]] ||
  die "ctr not found: install Debian's containerd package (apt-get install containerd) or set CTR"
ctr_() { "$CTR" --address "$address" --namespace k8s.io "$@"; }

# NAME DIGEST of an archive: index.json is its second entry (oci_image.py writes it early), so
# this reads a few KiB, not the GiB of layers.
archive_name_digest() {
  python3 - "$1" <<'EOF'
import json, sys, tarfile
with tarfile.open(sys.argv[1], mode="r|") as tar:
    for member in tar:
        if member.name.lstrip("./") == "index.json":
            index = json.load(tar.extractfile(member))
            break
    else:
        sys.exit(f"{sys.argv[1]}: no index.json (not an OCI archive)")
m = index["manifests"][0]
name = m.get("annotations", {}).get("io.containerd.image.name")
if not name:
    sys.exit(f"{sys.argv[1]}: index.json names no image (annotation io.containerd.image.name)")
print(name, m["digest"])
EOF
}

for archive in "${archives[@]}"; do
  [[ -f "$archive" ]] || die "$archive: no such file"
  read -r name digest < <(archive_name_digest "$archive") || die "$archive: cannot read its index.json"
  [[ -n "${digest:-}" ]] || die "$archive: cannot read its index.json"
  current="$(ctr_ images ls "name==$name" | awk -v n="$name" '$1 == n { print $3 }')"
  if [[ "$current" == "$digest" ]]; then
    log "$name: already imported ($digest)"
    continue
  fi
  log "importing $name from $archive ($(du -h "$archive" | cut -f1); ~1 s per 50 MiB)…"
  start=$SECONDS
  ctr_ images import "$archive" >&2
  current="$(ctr_ images ls "name==$name" | awk -v n="$name" '$1 == n { print $3 }')"
  [[ "$current" == "$digest" ]] ||
    die "$name: after the import containerd has digest '${current:-none}', the archive $digest"
  # Keep the kubelet's image garbage collector off it: a removed image cannot be pulled back.
  ctr_ images label "$name" io.cri-containerd.pinned=pinned >/dev/null
  log "imported $name ($digest) in $((SECONDS - start)) s"
done

#!/usr/bin/env bash
# Registry reads (issue 8): first read vs cached reads (by tag, by digest) of a label config,
# a layer config and provider metadata, against Debian's docker-registry on loopback, with
# the blob requests the registry logged per read. Release build; no cluster needed.
#   tests/bench/oci.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/../.."
"$ROOT/tests/registry/install.sh"
echo "==> building and running the OCI bench (release; first build takes minutes)" >&2
cd "$ROOT"
cargo run -q --release -p llsd-test-support --example oci-bench

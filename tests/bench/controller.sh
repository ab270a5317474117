#!/usr/bin/env bash
# Controller benchmark (issue 7) on the local control plane: start-up time, apply -> Deployment
# and apply -> Ready (p50/p99 over 50 CRs), 200 CRs at once (total time, peak RSS, CPU).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/../.."
cd "$ROOT"
# shellcheck source=lib.sh
source "$HERE/lib.sh"
bench_prepare controller-bench
# Installed when missing; an existing CRD (maybe with conversion configured by a test) stays.
"$KUBECTL" get crd llamastackdistributions.llamastack.io >/dev/null 2>&1 \
  || "$target_dir/release/llama-stack-operator" crds | "$KUBECTL" apply --server-side -f - >/dev/null
LLSD_OPERATOR_BIN="$target_dir/release/llama-stack-operator" "$target_dir/release/examples/controller-bench"

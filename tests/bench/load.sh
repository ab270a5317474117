#!/usr/bin/env bash
# Load benchmark (issue 19 §4) on the local control plane: 1,000 CRs at once (all Deployments,
# all Ready, peak RSS, CPU, operator writes per CR), then a 10-minute churn (create, update,
# delete at a fixed rate) with the operator's RSS every 30 s. LLSD_LOAD_CRS,
# LLSD_LOAD_CHURN_MINUTES and LLSD_LOAD_CHURN_RATE change the sizes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/../.."
cd "$ROOT"
# shellcheck source=lib.sh
source "$HERE/lib.sh"
bench_prepare load-bench
# The plain CRD (a test may have left conversion configured to a process that is gone).
"$target_dir/release/llama-stack-operator" crds | "$KUBECTL" apply --server-side --force-conflicts -f - >/dev/null
echo "==> ${LLSD_LOAD_CRS:-1000} CRs at once, then ${LLSD_LOAD_CHURN_MINUTES:-10} min of churn" >&2
LLSD_OPERATOR_BIN="$target_dir/release/llama-stack-operator" LLSD_LOAD_AUDIT_LOG="$STATE/logs/audit.log" \
  "$target_dir/release/examples/load-bench"

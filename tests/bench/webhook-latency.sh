#!/usr/bin/env bash
# Webhook latency (issue 6): p50/p99 of /validate and /convert under 50 parallel requests,
# measured with the load tool `oha` on loopback against the operator process, which looks up
# Secrets on the local control plane like it would in a cluster.
#   tests/bench/webhook-latency.sh [REQUESTS]      (default 5000 per endpoint)
# Installs oha from crates.io into the cache once (~7 min). (`hey` cannot be used: it sends
# "127.0.0.1:PORT" as TLS SNI, which rustls rightly refuses.)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/../.."
# shellcheck source=../cluster/lib.sh
source "$ROOT/tests/cluster/lib.sh"
REQUESTS="${1:-5000}"
OHA_VERSION=1.16.0
OHA_ROOT="$LLSD_CACHE_DIR/tools/oha-$OHA_VERSION"
OHA="$OHA_ROOT/bin/oha"
if [[ ! -x "$OHA" ]]; then
  echo "==> installing oha $OHA_VERSION from crates.io (once, ~7 min)" >&2
  CARGO_TARGET_DIR="$LLSD_CACHE_DIR/tools/oha-build" cargo install oha --locked --version "$OHA_VERSION" --root "$OHA_ROOT"
  rm -rf "$LLSD_CACHE_DIR/tools/oha-build"
fi
echo "==> building the operator (release)" >&2
(cd "$ROOT" && cargo build -q --release -p llama-stack-operator)
target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
OP="$target_dir/release/llama-stack-operator"
export KUBECONFIG; KUBECONFIG="$("$ROOT/tests/cluster/up" | tail -n 1)"
KUBECTL="$(llsd_bin kubectl)"
ns="llsd-bench-webhooks-$$"
work="$(mktemp -d)"
cleanup() {
  [[ -n "${op_pid:-}" ]] && kill "$op_pid" 2>/dev/null || true
  "$KUBECTL" delete ns "$ns" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$KUBECTL" get crd llamastackdistributions.llamastack.io >/dev/null 2>&1 \
  || "$OP" crds | "$KUBECTL" apply --server-side -f - >/dev/null
"$KUBECTL" create ns "$ns" >/dev/null
"$KUBECTL" -n "$ns" create secret generic vllm-creds --from-literal=token=x >/dev/null
port=19443
"$OP" run --namespace "$ns" --watch-namespace "$ns" --bind-address 127.0.0.1 \
  --webhook-port $port --metrics-port 19080 --probe-port 19081 --webhook-host 127.0.0.1 \
  --webhook-secret bench-webhook-cert >"$work/operator.log" 2>&1 &
op_pid=$!
for _ in $(seq 1 300); do curl -fs http://127.0.0.1:19081/readyz >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs http://127.0.0.1:19081/readyz >/dev/null || { cat "$work/operator.log"; exit 1; }

cat >"$work/validate.json" <<JSON
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
 "uid":"00000000-0000-0000-0000-000000000001","kind":{"group":"llamastack.io","version":"v1alpha2","kind":"LlamaStackDistribution"},
 "resource":{"group":"llamastack.io","version":"v1alpha2","resource":"llamastackdistributions"},
 "name":"bench","namespace":"$ns","operation":"CREATE","userInfo":{"username":"bench"},
 "object":{"apiVersion":"llamastack.io/v1alpha2","kind":"LlamaStackDistribution","metadata":{"name":"bench","namespace":"$ns"},
  "spec":{"distribution":{"name":"starter"},
   "providers":{"inference":[{"id":"primary","provider":"vllm","endpoint":"http://vllm:8000/v1","apiKey":{"secretKeyRef":{"name":"vllm-creds","key":"token"}}},
                             {"id":"backup","provider":"vllm","endpoint":"http://vllm-b:8000/v1"}]},
   "resources":{"models":[{"name":"llama-3.1-8b"},{"name":"big","provider":"backup"}],"tools":["websearch"]},
   "disabled":["eval"]}}}}
JSON
cat >"$work/convert.json" <<JSON
{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{
 "uid":"00000000-0000-0000-0000-000000000002","desiredAPIVersion":"llamastack.io/v1alpha2",
 "objects":[{"apiVersion":"llamastack.io/v1alpha1","kind":"LlamaStackDistribution","metadata":{"name":"bench","namespace":"$ns"},
  "spec":{"replicas":2,"server":{"distribution":{"name":"starter"},
   "containerSpec":{"port":8321,"env":[{"name":"OLLAMA_URL","value":"http://ollama:11434"}]},
   "workers":2,"podDisruptionBudget":{"maxUnavailable":1},"storage":{"size":"20Gi"},
   "autoscaling":{"minReplicas":1,"maxReplicas":5,"targetCPUUtilizationPercentage":75}},
   "network":{"exposeRoute":true}}}]}}
JSON
# Sanity: both answer what they should before being timed.
curl -sk -H 'Content-Type: application/json' --data @"$work/validate.json" "https://127.0.0.1:$port/validate" | grep -q '"allowed":true' \
  || { echo "validate did not allow the sample" >&2; exit 1; }
curl -sk -H 'Content-Type: application/json' --data @"$work/convert.json" "https://127.0.0.1:$port/convert" | grep -q '"status":"Success"' \
  || { echo "convert did not succeed" >&2; exit 1; }
for hook in validate convert; do
  echo "==> /$hook: $REQUESTS requests, 50 in parallel (oha $OHA_VERSION)"
  "$OHA" -n "$REQUESTS" -c 50 -m POST -T application/json -D "$work/$hook.json" --insecure --no-tui \
    "https://127.0.0.1:$port/$hook"
done

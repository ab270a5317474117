# Sourced by the cluster benchmarks (controller.sh, load.sh): builds the release operator and
# the benchmark client (example $1), starts the local control plane, and sets target_dir,
# KUBECONFIG (exported), KUBECTL and STATE (the control plane's state dir).
# shellcheck shell=bash
bench_prepare() {
  echo "==> building the operator (release) and the benchmark client" >&2
  cargo build -q --release -p llama-stack-operator
  cargo build -q --release -p llsd-test-support --example "$1"
  target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  KUBECONFIG="$(tests/cluster/up | tail -n 1)"
  export KUBECONFIG
  KUBECTL="$(source tests/cluster/lib.sh; llsd_bin kubectl)"
  STATE="$(source tests/cluster/lib.sh; echo "$LLSD_STATE_DIR")"
}

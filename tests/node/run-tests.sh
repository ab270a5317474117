#!/usr/bin/env bash
# Runs the tests on the real node (issue 16):
#   tests/node/up -> cargo test -p llsd-test-support --features real-node [ARGS...] -> tests/node/down
# with KUBECONFIG (the node's control plane), LLSD_KUBECTL, LLSD_OPERATOR_BIN and
# LLSD_NODE_CONTAINERD (the node's containerd socket) set. The node is taken down at the end
# only if this run started it (down restores what the kubelet changed on the host); a node that
# was already running (make demo, or by hand) is left running. Exit code = cargo's.
#
# The node has the machine's 2 CPUs: the tests run one at a time (--test-threads=1), each
# server pod asking for what a sample asks.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"
set +e

# The images the tests run: containerd gets them before any pod needs them.
IMAGES="pause busybox starter stand-in-openai postgres redis"
# Images the tests push to a loopback registry, for the kubelet to pull from there: built
# (cached), never imported, so a pull really fetches them.
PUSHED_IMAGES="external-provider"

DEMO_NS=llsd-demo
BORROWED=llsd.test/replicas-before-tests
started_here=""
llsd_node_alive kubelet || started_here=1
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  give_back
  if [[ -n "$started_here" ]]; then
    echo "run-tests: taking the node down (this run started it)" >&2
    "$HERE/down" || echo "run-tests: WARNING: tests/node/down failed" >&2
  else
    echo "run-tests: leaving the node running (it was running before this run)" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The node has this machine's 2 CPUs and a server asks for 1: what `make demo` (or a user in its
# namespace) left running would leave the tests' pods Pending. Its Deployments are scaled to 0
# for the run, their replica counts kept in an annotation, and scaled back at the end.
borrow() {
  local d n
  llsd_node_kubectl get namespace "$DEMO_NS" >/dev/null 2>&1 || return 0
  while read -r d n; do
    [[ -n "$d" && "${n:-0}" -gt 0 ]] || continue
    echo "run-tests: scaling $DEMO_NS/$d from $n to 0 replicas for the tests (given back at the end)" >&2
    llsd_node_kubectl -n "$DEMO_NS" annotate deployment "$d" --overwrite "$BORROWED=$n" >/dev/null &&
      llsd_node_kubectl -n "$DEMO_NS" scale deployment "$d" --replicas=0 >/dev/null
  done < <(llsd_node_kubectl -n "$DEMO_NS" get deployments -o jsonpath='{range .items[*]}{.metadata.name} {.spec.replicas}{"\n"}{end}')
}
# shellcheck disable=SC2317  # invoked by cleanup
give_back() {
  local d n
  llsd_node_alive kubelet && llsd_apiserver_ready || return 0
  while read -r d n; do
    [[ -n "$d" && -n "$n" ]] || continue
    echo "run-tests: scaling $DEMO_NS/$d back to $n replicas" >&2
    llsd_node_kubectl -n "$DEMO_NS" scale deployment "$d" --replicas="$n" >/dev/null &&
      llsd_node_kubectl -n "$DEMO_NS" annotate deployment "$d" "$BORROWED-" >/dev/null
  done < <(llsd_node_kubectl -n "$DEMO_NS" get deployments -o json 2>/dev/null | python3 -c '
import json, sys
for d in json.load(sys.stdin)["items"]:
    n = d["metadata"].get("annotations", {}).get(sys.argv[1])
    if n is not None:
        print(d["metadata"]["name"], n)
' "$BORROWED")
}

kubeconfig="$(LLSD_NODE_IMAGES="$IMAGES" "$HERE/up" | tail -n 1)"
if [[ -z "$kubeconfig" || ! -s "$kubeconfig" ]]; then
  echo "run-tests: tests/node/up failed" >&2
  exit 1
fi
# shellcheck disable=SC2086  # a list of names
"$HERE/images/build.sh" $PUSHED_IMAGES >/dev/null || { echo "run-tests: images/build.sh $PUSHED_IMAGES failed" >&2; exit 1; }
# An operator `make demo` left running answers the demo namespace's webhooks and the CRD's
# conversion: the tests point those at their own operators.
if llsd_demo_operator_pid >/dev/null; then
  echo "run-tests: stopping the operator make demo left running (make demo starts it again)" >&2
  llsd_demo_stop_operator
fi

borrow

cd "$HERE/../.." || exit 1
echo "run-tests: building the operator binary" >&2
cargo build -p llama-stack-operator || exit 1
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
kubectl="$(llsd_bin kubectl)"
export KUBECONFIG="$kubeconfig" LLSD_KUBECTL="$kubectl" \
  LLSD_OPERATOR_BIN="$target_dir/debug/llama-stack-operator" \
  LLSD_NODE_CONTAINERD="$LLSD_CONTAINERD_SOCK"
# Disk, checked here because running short shows up later as failures that do not name it
# (a pod stuck ContainerCreating, a registry push cut off). The labelled-image test pushes a
# full copy of the starter image into a registry under $TMPDIR; pods write to the node's dir.
free_gib() { df -Pk "$1" | awk 'NR == 2 { printf "%d", $4 / 1048576 }'; }
starter_gib="$(du -k "$("$HERE/images/build.sh" --cached starter | cut -d' ' -f3)" | awk '{ printf "%d", $1 / 1048576 + 1 }')"
tmp_dir="${TMPDIR:-/tmp}"
need_gib=$((starter_gib + 2))
for dir in "$tmp_dir" "$LLSD_NODE_DIR"; do
  have_gib="$(free_gib "$dir")"
  if ((have_gib < need_gib)); then
    echo "run-tests: only $have_gib GiB free on the filesystem of $dir; the node tests need $need_gib GiB" \
      "(a $starter_gib GiB copy of the starter image for the labelled-image test, 2 GiB for pods)." \
      "Free some space (e.g. cargo clean of stale target dirs) and run again." >&2
    exit 1
  fi
done
# The samples first, on a node of their own; the demo's test last, leaving the demo as a user
# finds it after `make demo`.
rc=0
for t in node_samples node_status node_demo; do
  cargo test -p llsd-test-support --features real-node --test "$t" "$@" -- --test-threads=1 || rc=1
done
exit "$rc"

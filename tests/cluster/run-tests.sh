#!/usr/bin/env bash
# Runs the smoke tests against the real control plane:
#   up  ->  KUBECONFIG=<path> LLSD_KUBECTL=<kubectl> LLSD_HELM=<helm> LLSD_OPERATOR_BIN=<operator> cargo test -p llsd-test-support [ARGS...]  ->  down
# A cluster that was already running (started by hand, or by another run that
# is still going) is left running. The cluster is stopped only by the last
# run-tests.sh using it, and only if a run-tests.sh started it (marker
# <state>/started-by = "run-tests:<pid>"). Exit code = cargo's.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"
set +e

me="run-tests:$$"
users="$LLSD_STATE_DIR/users"

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local other starter pid
  ( # the lock is held by a subshell so it is released however we got here
    llsd_lock
    rm -f "$users/$$"
    other=""
    for f in "$users"/*; do
      [[ -e "$f" ]] || continue
      pid="$(basename "$f")"
      if kill -0 "$pid" 2>/dev/null; then other="$pid"; else rm -f "$f"; fi
    done
    starter="$(cat "$LLSD_STATE_DIR/started-by" 2>/dev/null || true)"
    if [[ "$starter" == run-tests:* ]]; then
      pid="${starter#run-tests:}"
      if [[ -n "$other" ]]; then
        llsd_log "leaving the cluster running: run-tests.sh pid $other still uses it"
      elif [[ "$starter" == "$me" ]] || ! kill -0 "$pid" 2>/dev/null; then
        llsd_stop_all
        llsd_log "stopped the cluster (started by $starter)"
      fi
    else
      llsd_log "leaving the cluster running: it was started by '${starter:-unknown}', not by run-tests.sh"
    fi
  )
}

mkdir -p "$users"
touch "$users/$$"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

kubeconfig="$(LLSD_CLUSTER_STARTED_BY="$me" "$HERE/up" | tail -n 1)"
up_rc=$?
# An operator `make demo` left running would answer webhooks and reconcile beside the tests'
# own operators: the tests need the cluster to themselves.
if llsd_demo_operator_pid >/dev/null; then
  echo "run-tests: stopping the operator make demo left running (make demo starts it again)" >&2
  llsd_demo_stop_operator
fi
if [[ $up_rc -ne 0 || -z "$kubeconfig" || ! -s "$kubeconfig" ]]; then
  echo "run-tests: tests/cluster/up failed (exit $up_rc)" >&2
  exit 1
fi
echo "run-tests: cluster started by $(cat "$LLSD_STATE_DIR/started-by" 2>/dev/null); KUBECONFIG=$kubeconfig" >&2

cd "$HERE/../.."
# The controller tests run the operator binary as a process (architecture.md, ladder 4).
echo "run-tests: building the operator binary" >&2
cargo build -p llama-stack-operator || exit 1
# The OCI tests push to a real registry on loopback (tests/support/src/registry.rs).
"$HERE/../registry/install.sh" || exit 1
# The chart tests (tests/support/tests/helm.rs) lint, render and install with a real helm; the
# alert rules' tests (monitoring.rs) run promtool.
"$HERE/build.sh" helm promtool || exit 1
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
KUBECONFIG="$kubeconfig" LLSD_KUBECTL="$(llsd_bin kubectl)" LLSD_HELM="$(llsd_bin helm)" \
  LLSD_PROMTOOL="$(llsd_bin promtool)" \
  LLSD_OPERATOR_BIN="$target_dir/debug/llama-stack-operator" \
  cargo test -p llsd-test-support "$@"
rc=$?
exit "$rc"

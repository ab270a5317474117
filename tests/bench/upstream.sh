#!/usr/bin/env bash
# `make bench-upstream` (issue 18, item 5): the upstream Go operator and ours side by side, on
# one local control plane of their own, with the same v1alpha1 workload; prints each figure
# with the ratio upstream/ours and writes the table to $B/last-run.md (and .json).
#
#   1. upstream's manager, built from the Go module proxy at the pinned commit (resolved with
#      `go mod download -json`; its module cache copy is never copied into this repo);
#   2. ours in release (`cargo build --release -p llama-stack-operator`) and the harness
#      (tests/support/examples/upstream_bench.rs);
#   3. a separate control plane (tests/cluster/up with its own state dir and ports, the
#      binaries shared), stopped at the end if this script started it;
#   4. a client certificate per operator (CN bench-upstream / bench-ours, group
#      system:masters), so the audit log attributes every write;
#   5. the harness: passes upstream, ours, ours, upstream (LLSD_BENCH_PASSES=2).
#
# Env (defaults in brackets): LLSD_BENCH_PASSES [2] each, LLSD_BENCH_SEQ [50],
# LLSD_BENCH_BURST [200], LLSD_BENCH_CLIENTS [32], LLSD_BENCH_IDLE_SECONDS [120],
# LLSD_BENCH_QUIET_SECONDS [10], LLSD_BENCH_SETTLE_MAX_SECONDS [120], LLSD_BENCH_WAIT_SECONDS
# [600]; LLSD_UPSTREAM_SRC: where the Go module proxy does not serve upstream's module, a git
# directory (or clone) of github.com/llamastack/llama-stack-k8s-operator that holds the pinned
# commit, exported into the cache (never into this repo). See tests/bench/README.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

export LLSD_CACHE_DIR="${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LLSD_CACHE_DIR/target}"
B="$LLSD_CACHE_DIR/bench-upstream"
UPSTREAM_MODULE=github.com/llamastack/llama-stack-k8s-operator
UPSTREAM_COMMIT=7735e43c2028bce93afb3a545b41a4c94590bb6b
# The pseudo-version of that commit (no tag is its ancestor; committed 2026-04-15T01:51:16Z).
UPSTREAM_VERSION=v0.0.0-20260415015116-7735e43c2028

# The benchmark's own control plane: its state dir and ports, away from the tests'
# (23790..26443), tests/node's and `make demo`'s (33790..36443). The binaries are shared.
export LLSD_STATE_DIR="$B/cluster"
export LLSD_ETCD_CLIENT_PORT=43790 LLSD_ETCD_PEER_PORT=43800 LLSD_APISERVER_PORT=46443
export LLSD_KCM_PORT=46257 LLSD_SCHEDULER_PORT=46259
unset LLSD_FAKE_NODES

say() { printf '==> %s\n' "$*" >&2; }
mkdir -p "$B"/{bin,run,logs}

started_cluster=0
harness_pid=""
cleanup() {
  local rc=$? f pid exe
  trap - EXIT INT TERM
  if [[ -n "$harness_pid" ]] && kill -0 "$harness_pid" 2>/dev/null; then
    kill -TERM "$harness_pid" 2>/dev/null || true
    wait "$harness_pid" 2>/dev/null || true
  fi
  # Operators the harness started and could not stop (it was killed): by pid file, if the
  # pid still runs one of the two binaries.
  for f in "$B"/run/pids/*.pid; do
    [[ -s "$f" ]] || continue
    pid="$(<"$f")"
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    exe="${exe% (deleted)}"
    if [[ "$pid" =~ ^[0-9]+$ && -n "$exe" && ( "$exe" == "${UPSTREAM_BIN:-}" || "$exe" == "${OURS_BIN:-}" ) ]]; then
      say "stopping operator pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  if ((started_cluster)); then
    say "stopping the benchmark's control plane"
    tests/cluster/down || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ 1. upstream's manager
# Resolves the module through the Go module proxy; prints the directory of its source.
upstream_source() {
  local out dir
  mkdir -p "$B/gomod"
  if out="$(cd "$B/gomod" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "$UPSTREAM_MODULE@$UPSTREAM_COMMIT" 2>&1)"; then
    dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$out")"
    if [[ -d "$dir" ]]; then
      say "upstream: $(sed -n 's/^[[:space:]]*"Version": "\(.*\)",$/\1/p' <<<"$out" | head -n 1) from the Go module proxy ($dir)"
      echo "$dir"
      return 0
    fi
  fi
  say "the Go module proxy did not serve $UPSTREAM_MODULE@$UPSTREAM_COMMIT:"
  sed -n 's/^[[:space:]]*"Error": "\(.*\)"$/\1/p' <<<"$out" | sed 's/\\n/\n/g; s/\\t/  /g' | sed 's/^/    /' >&2
  if [[ -z "${LLSD_UPSTREAM_SRC:-}" ]]; then
    say "set LLSD_UPSTREAM_SRC to a git directory or clone of $UPSTREAM_MODULE that holds $UPSTREAM_COMMIT"
    return 1
  fi
  dir="$B/src-$UPSTREAM_COMMIT"
  if [[ ! -s "$dir/go.mod" ]]; then
    local gitdir="$LLSD_UPSTREAM_SRC"
    [[ -d "$gitdir/.git" ]] && gitdir="$gitdir/.git"
    git --git-dir="$gitdir" cat-file -e "$UPSTREAM_COMMIT^{commit}" 2>/dev/null || {
      say "LLSD_UPSTREAM_SRC=$LLSD_UPSTREAM_SRC has no commit $UPSTREAM_COMMIT"
      return 1
    }
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    git --git-dir="$gitdir" archive "$UPSTREAM_COMMIT" | tar -x -C "$dir.tmp"
    mv "$dir.tmp" "$dir"
  fi
  say "upstream: $UPSTREAM_COMMIT exported from $LLSD_UPSTREAM_SRC into $dir"
  echo "$dir"
}

UPSTREAM_SRC="$(upstream_source)"
UPSTREAM_BIN="$B/bin/manager-${UPSTREAM_COMMIT:0:12}"
if [[ ! -x "$UPSTREAM_BIN" ]]; then
  say "building upstream's manager (go build, as its Makefile's build target; first run ~2-4 min)"
  (
    cd "$UPSTREAM_SRC"
    # The module cache copy is read-only: -mod=mod resolves its go.mod without writing there.
    GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -p "${LLSD_BUILD_PARALLELISM:-2}" -o "$UPSTREAM_BIN.tmp" .
  )
  mv -f "$UPSTREAM_BIN.tmp" "$UPSTREAM_BIN"
fi
# Upstream renders its kustomize base from manifests/base relative to its working directory
# on every reconcile (its image copies controllers/manifests to /manifests): a writable copy.
UPSTREAM_WORKDIR="$B/run/upstream"
rm -rf "$UPSTREAM_WORKDIR"
mkdir -p "$UPSTREAM_WORKDIR"
cp -R "$UPSTREAM_SRC/controllers/manifests" "$UPSTREAM_WORKDIR/"
chmod -R u+w "$UPSTREAM_WORKDIR"
UPSTREAM_CRD="$UPSTREAM_SRC/config/crd/bases/llamastack.io_llamastackdistributions.yaml"
[[ -s "$UPSTREAM_CRD" ]] || { say "no CRD at $UPSTREAM_CRD"; exit 1; }

# ------------------------------------------------------------ 2. ours and the harness
say "building ours (release) and the harness"
cargo build -q --release -p llama-stack-operator
cargo build -q --release -p llsd-test-support --example upstream-bench
# Copies: another build into the shared target dir must not swap the binaries mid-run.
OURS_BIN="$B/bin/llama-stack-operator"
HARNESS="$B/bin/upstream-bench"
cp -f "$CARGO_TARGET_DIR/release/llama-stack-operator" "$OURS_BIN.tmp" && mv -f "$OURS_BIN.tmp" "$OURS_BIN"
cp -f "$CARGO_TARGET_DIR/release/examples/upstream-bench" "$HARNESS.tmp" && mv -f "$HARNESS.tmp" "$HARNESS"
if [[ -z "${LLSD_BENCH_OURS_REV:-}" ]]; then
  LLSD_BENCH_OURS_REV="$(git rev-parse --short=12 HEAD 2>/dev/null || echo 'not a git checkout')"
  git diff --quiet HEAD -- 2>/dev/null || LLSD_BENCH_OURS_REV+=" with uncommitted changes"
fi

# ------------------------------------------------------------ 3. the control plane
# shellcheck source=tests/cluster/lib.sh
if ! (source tests/cluster/lib.sh && llsd_cluster_healthy); then
  started_cluster=1
fi
KUBECONFIG="$(LLSD_CLUSTER_STARTED_BY="bench-upstream:$$" tests/cluster/up | tail -n 1)"
export KUBECONFIG
# shellcheck source=tests/cluster/lib.sh
LLSD_KUBECTL="$(source tests/cluster/lib.sh && llsd_bin kubectl)"
export LLSD_KUBECTL
PKI="$LLSD_STATE_DIR/pki"

# ------------------------------------------------------------ 4. one identity per operator
# client_kubeconfig USER: a client certificate CN=USER, O=system:masters, signed by the
# cluster's CA, in a kubeconfig of its own; prints its path.
client_kubeconfig() {
  local user="$1" d="$B/run/users"
  mkdir -p "$d"
  openssl genrsa -out "$d/$user.key" 2048 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$d/$user.ext"
  openssl req -new -key "$d/$user.key" -subj "/O=system:masters/CN=$user" 2>/dev/null |
    openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -CAserial "$d/ca.srl" \
      -days 30 -sha256 -extfile "$d/$user.ext" -out "$d/$user.crt" 2>/dev/null
  cat >"$d/$user.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster:
    server: https://127.0.0.1:$LLSD_APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$d/$user.crt")
    client-key-data: $(base64 -w0 <"$d/$user.key")
contexts:
- name: bench
  context: {cluster: bench, user: $user}
current-context: bench
EOF
  chmod 600 "$d/$user.kubeconfig" "$d/$user.key"
  echo "$d/$user.kubeconfig"
}

# ------------------------------------------------------------ 5. the harness
export LLSD_BENCH_DIR="$B"
export LLSD_BENCH_AUDIT_LOG="$LLSD_STATE_DIR/logs/audit.log"
export LLSD_BENCH_UPSTREAM_BIN="$UPSTREAM_BIN"
export LLSD_BENCH_UPSTREAM_WORKDIR="$UPSTREAM_WORKDIR"
export LLSD_BENCH_UPSTREAM_CRD="$UPSTREAM_CRD"
LLSD_BENCH_UPSTREAM_KUBECONFIG="$(client_kubeconfig bench-upstream)"
export LLSD_BENCH_UPSTREAM_KUBECONFIG
LLSD_BENCH_UPSTREAM_VERSION="$UPSTREAM_MODULE $UPSTREAM_VERSION (go build, $(go version | awk '{print $3}'))"
export LLSD_BENCH_UPSTREAM_VERSION
export LLSD_OPERATOR_BIN="$OURS_BIN"
LLSD_BENCH_OURS_KUBECONFIG="$(client_kubeconfig bench-ours)"
export LLSD_BENCH_OURS_KUBECONFIG
export LLSD_BENCH_OURS_REV="$LLSD_BENCH_OURS_REV (release build)"
say "running: passes ${LLSD_BENCH_PASSES:-2} each, ${LLSD_BENCH_SEQ:-50} sequential, ${LLSD_BENCH_BURST:-200} at once, idle ${LLSD_BENCH_IDLE_SECONDS:-120} s; operator logs in $B/logs"
"$HARNESS" &
harness_pid=$!
wait "$harness_pid"

#!/usr/bin/env bash
# Builds (once per machine) the binaries of the test control plane from the Go
# module proxy, using the wrapper modules beside this script:
#   kube/  -> kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
#             and for tests/node: kubelet, kube-proxy (k8s.io/kubernetes v1.36.5)
#   etcd/  -> etcd (go.etcd.io/etcd/server/v3 v3.6.16)
#   kwok/  -> kwok (sigs.k8s.io/kwok v0.8.0)
#   helm/  -> helm (helm.sh/helm/v4; the chart tests, issue 20)
#   promtool/ -> promtool (github.com/prometheus/prometheus; the alert rules' tests, issue 20)
#   ../node/coredns/ -> coredns (github.com/coredns/coredns, a few plugins only; tests/node)
# Binaries land in ${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}/k8s-bin/<component>-<version>/<component>.
#
# Usage: build.sh [component...]      (default: all). Prints nothing on stdout;
#        progress goes to stderr.  Source it to use `llsd_bin <component>`.
set -euo pipefail

LLSD_CLUSTER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LLSD_CACHE_DIR="${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}"
LLSD_BIN_DIR="$LLSD_CACHE_DIR/k8s-bin"

# The versions come from the wrapper modules' go.mod (the single source of
# truth): to bump, edit the require (and, for kube/, every staging replace),
# run `go mod tidy` there, and the cache key changes with it.
_llsd_modver() { awk -v m="$2" '($1 == "require" ? $2 : $1) == m { print ($1 == "require" ? $3 : $2); exit }' "$LLSD_CLUSTER_SRC/$1/go.mod"; }
KUBE_VERSION="$(_llsd_modver kube k8s.io/kubernetes)"
ETCD_VERSION="$(_llsd_modver etcd go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(_llsd_modver kwok sigs.k8s.io/kwok)"
HELM_VERSION="$(_llsd_modver helm helm.sh/helm/v4)"
PROMTOOL_VERSION="$(_llsd_modver promtool github.com/prometheus/prometheus)"
COREDNS_VERSION="$(_llsd_modver ../node/coredns github.com/coredns/coredns)"

llsd_component_version() {
  case "$1" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|kubelet|kube-proxy) echo "$KUBE_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    promtool) echo "$PROMTOOL_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    *) echo "unknown component: $1" >&2; return 1 ;;
  esac
}

# Path of a component's cached binary (whether built or not).
llsd_bin() {
  local c="$1" v
  v="$(llsd_component_version "$c")"
  echo "$LLSD_BIN_DIR/$c-$v/$c"
}

_llsd_build_one() {
  local c="$1" v dir pkg moddir ldflags="-s -w" est
  v="$(llsd_component_version "$c")"
  dir="$LLSD_BIN_DIR/$c-$v"
  if [[ -x "$dir/$c" ]]; then
    [[ "$c" != kwok || -s "$dir/stages.yaml" ]] && return 0
    _llsd_kwok_stages "$dir"
    return 0
  fi
  case "$c" in
    kube-*|kubectl|kubelet)
      moddir="$LLSD_CLUSTER_SRC/kube"; pkg="k8s.io/kubernetes/cmd/$c"
      # Measured on 2 cores, in this order (they share most packages via GOCACHE).
      case "$c" in kube-apiserver) est="~7" ;; kubelet) est="~2-6" ;; kube-controller-manager|kubectl) est="~2" ;; *) est="~1" ;; esac
      local major="${KUBE_VERSION#v}" minor p date
      minor="${major#*.}"; minor="${minor%%.*}"; major="${major%%.*}"
      # buildDate: the release's date on the module proxy (reproducible).
      date="$(cd "$moddir" && go list -m -json k8s.io/kubernetes | sed -n 's/^[[:space:]]*"Time": "\(.*\)",$/\1/p')"
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
        ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=${date:-1970-01-01T00:00:00Z}"
      done ;;
    etcd) moddir="$LLSD_CLUSTER_SRC/etcd"; pkg="go.etcd.io/etcd/server/v3"; est="~1.5" ;;
    kwok) moddir="$LLSD_CLUSTER_SRC/kwok"; pkg="sigs.k8s.io/kwok/cmd/kwok"; est="~2.5" ;;
    helm)
      moddir="$LLSD_CLUSTER_SRC/helm"; pkg="helm.sh/helm/v4/cmd/helm"; est="~3"
      # `helm version` says which release it is.
      ldflags+=" -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" ;;
    promtool)
      moddir="$LLSD_CLUSTER_SRC/promtool"; pkg="github.com/prometheus/prometheus/cmd/promtool"; est="~4"
      ldflags+=" -X github.com/prometheus/common/version.Version=$PROMTOOL_VERSION" ;;
    # Our own main package (the plugins the node needs), not the stock binary.
    coredns) moddir="$LLSD_CLUSTER_SRC/../node/coredns"; pkg="."; est="~2" ;;
  esac
  echo "building $c $v (first run only, $est min)…" >&2
  mkdir -p "$dir"
  local start=$SECONDS tmp="$dir/.$c.tmp.$$"
  (
    cd "$moddir"
    # -mod=mod is not used: go.mod/go.sum are committed and must be complete.
    CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local \
      go build -p "${LLSD_BUILD_PARALLELISM:-2}" -ldflags "$ldflags" -o "$tmp" "$pkg"
  )
  mv -f "$tmp" "$dir/$c"
  [[ "$c" != kwok ]] || _llsd_kwok_stages "$dir"
  echo "built $c $v in $((SECONDS - start)) s -> $dir/$c" >&2
}

# kwok run standalone needs its Stage config (kwokctl normally writes it): take
# the default "fast" node/pod stages and the lease heartbeat from the kwok
# module's own source in the module cache (not copied into this repository).
_llsd_kwok_stages() {
  local dir="$1" src f
  src="$(cd "$LLSD_CLUSTER_SRC/kwok" && go mod download -json sigs.k8s.io/kwok |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$src/kustomize/stage" ]] || { echo "kwok module source not found (got '$src')" >&2; return 1; }
  {
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
      pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      echo "---"
      cat "$src/kustomize/stage/$f"
    done
  } >"$dir/stages.yaml.tmp"
  mv -f "$dir/stages.yaml.tmp" "$dir/stages.yaml"
}

llsd_build() {
  local c dir missing=0
  # Built already (the warm case of every `up`): no lock to wait for behind another build.
  for c in "$@"; do
    dir="$LLSD_BIN_DIR/$c-$(llsd_component_version "$c")"
    [[ -x "$dir/$c" && ( "$c" != kwok || -s "$dir/stages.yaml" ) ]] || missing=1
  done
  ((missing)) || return 0
  mkdir -p "$LLSD_BIN_DIR"
  # One builder at a time per machine (several test processes may call `up`).
  exec 8>"$LLSD_BIN_DIR/.build.lock"
  flock 8
  # Sequential on purpose: the machine has 2 cores.
  for c in "$@"; do _llsd_build_one "$c"; done
  flock -u 8
  exec 8>&-
}

LLSD_ALL_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl)
# What a real node adds (tests/node/up builds these after the control plane); the kwok suites
# never need them, so `build.sh` alone does not build them: `build.sh "${LLSD_NODE_COMPONENTS[@]}"`.
# shellcheck disable=SC2034  # used by tests/node/up
LLSD_NODE_COMPONENTS=(kubelet kube-proxy coredns)

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  if [[ $# -eq 0 ]]; then set -- "${LLSD_ALL_COMPONENTS[@]}"; fi
  llsd_build "$@"
fi

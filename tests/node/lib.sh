# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared by tests/node/up and down (sourced, not executed). A real node (containerd, kubelet,
# kube-proxy, CoreDNS) beside its own control-plane instance (tests/cluster/up with another
# state dir and other ports, no kwok). Layout of the state dir
# (${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}/node):
#   cluster/           the control plane's state (tests/cluster's layout: pki/, etcd/, logs/, ...)
#   pki/               the node's client certificates (kubelet, kube-proxy), signed by cluster/pki/ca
#   containerd/        config.toml, root/, state/, opt/, runc/ (runc's state), certs.d/, the sockets
#   cni/net.d/         the CNI conflist (containerd's conf_dir); cni/ipam/: host-local's leases
#   kubelet/           config.yaml, kubeconfig, root/ (--root-dir), pki/ (--cert-dir)
#   pod-logs/          the kubelet's podLogsDir
#   kube-proxy/        kubeconfig
#   coredns/           Corefile
#   logs/<c>.log       one log per node component; pids/<c>.pid one pid per component
#   sysctl.saved       the host's sysctls before the first up (down restores them, then removes it)
#   .lock              serialises up / down

LLSD_NODE_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LLSD_CACHE_DIR="${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}"
LLSD_NODE_DIR="$LLSD_CACHE_DIR/node"

# The node's own control-plane instance: exported, so tests/cluster/up and down (run as
# children) and tests/cluster/lib.sh (sourced below) all address it, not the kwok one.
export LLSD_STATE_DIR="$LLSD_NODE_DIR/cluster"
export LLSD_FAKE_NODES=""
export LLSD_ETCD_CLIENT_PORT=33790 LLSD_ETCD_PEER_PORT=33800 LLSD_APISERVER_PORT=36443
export LLSD_KCM_PORT=36257 LLSD_SCHEDULER_PORT=36259
# shellcheck source=../cluster/lib.sh
source "$LLSD_NODE_SRC/../cluster/lib.sh"

# The node's network: a private bridge whose .1 is the node IP, the kubelet's address, the CNI
# gateway and CoreDNS's address. Nothing of the node listens on any other interface.
LLSD_NODE_NAME=llsd-node
LLSD_NODE_BRIDGE=llsdbr0
LLSD_NODE_IP=10.244.7.1
LLSD_NODE_POD_CIDR=10.244.7.0/24
LLSD_NODE_DNS_IP=10.96.0.10 # the kube-dns Service (ClusterIP in LLSD_SERVICE_CIDR)
LLSD_NODE_CLUSTER_DOMAIN=cluster.local
# Ports: the kubelet on the node IP, everything else on 127.0.0.1. All below 30000: a NodePort
# (30000-32767) equal to one of them would divert its traffic (kube-proxy DNATs NodePorts on
# the node IP, locally generated connections included). Away from the defaults (10250, 10248,
# 10249, 10256, 8080, 8181) so a real cluster's components never collide.
LLSD_KUBELET_PORT=29250
LLSD_KUBELET_HEALTHZ_PORT=29248
LLSD_KUBE_PROXY_METRICS_PORT=29249
LLSD_KUBE_PROXY_HEALTHZ_PORT=29256
LLSD_COREDNS_HEALTH_PORT=29280
LLSD_COREDNS_READY_PORT=29281

LLSD_NODE_KUBECONFIG="$LLSD_KUBECONFIG" # the instance's admin kubeconfig
LLSD_CONTAINERD_DIR="$LLSD_NODE_DIR/containerd"
LLSD_CONTAINERD_SOCK="$LLSD_CONTAINERD_DIR/containerd.sock"
LLSD_NODE_SYSCTL_SAVED="$LLSD_NODE_DIR/sysctl.saved"
LLSD_NODE_FWD_CHAIN=LLSD-NODE-FORWARD

# Host tunables the node changes: the kubelet (kernel.*, vm.*), the bridge/forwarding this node
# needs (net.*), and kube-proxy's conntrack settings (turned off in up, saved all the same).
LLSD_NODE_SYSCTLS=(
  kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes
  net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.ipv4.conf.all.route_localnet
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.netfilter.nf_conntrack_tcp_be_liberal
)

llsd_node_log() { echo "[node $(date -u +%H:%M:%S)] $*" >&2; }
llsd_node_die() { llsd_node_log "ERROR: $*"; exit 1; }

llsd_node_pidfile() { echo "$LLSD_NODE_DIR/pids/$1.pid"; }

# The binary a node component runs from (what its pid's /proc/<pid>/exe must point at).
llsd_node_bin() {
  case "$1" in
    containerd) readlink -f "$(command -v containerd 2>/dev/null || echo /usr/bin/containerd)" ;;
    *) llsd_bin "$1" ;;
  esac
}

# Prints the pid of node component $1 if it runs (and is really our binary); fails otherwise.
llsd_node_pid() { llsd_pid_of "$(llsd_node_pidfile "$1")" "$(llsd_node_bin "$1")"; }
llsd_node_alive() { llsd_node_pid "$1" >/dev/null; }

# Stops the given node components together: TERM to all, then KILL what still runs after
# $LLSD_NODE_STOP_SECS (default 15) seconds. Safe for components that are not running. A
# zombie counts as stopped (_llsd_running, tests/cluster/lib.sh).
llsd_node_stop() {
  local c pid
  local -a pids=()
  for c in "$@"; do
    if pid="$(llsd_node_pid "$c")"; then
      llsd_node_log "stopping $c (pid $pid)"
      pids+=("$pid")
    fi
  done
  llsd_terminate "${LLSD_NODE_STOP_SECS:-15}" "${pids[@]}"
  for c in "$@"; do rm -f "$(llsd_node_pidfile "$c")"; done
}

# Takes the node's lock on fd 7 (released when the process exits). fds 8 and 9 are
# tests/cluster's (build lock, state lock).
llsd_node_lock() {
  mkdir -p "$LLSD_NODE_DIR"
  exec 7>"$LLSD_NODE_DIR/.lock"
  flock 7
}

# kubectl against the node's control plane.
llsd_node_kubectl() { "$(llsd_bin kubectl)" --kubeconfig "$LLSD_NODE_KUBECONFIG" --request-timeout=20s "$@"; }

# ctr against our containerd, in the CRI's namespace.
llsd_node_ctr() { ctr --address "$LLSD_CONTAINERD_SOCK" --namespace k8s.io "$@"; }

llsd_node_containerd_ready() { [[ -S "$LLSD_CONTAINERD_SOCK" ]] && ctr --address "$LLSD_CONTAINERD_SOCK" version >/dev/null 2>&1; }

# The Node object reports Ready=True.
llsd_node_ready() {
  [[ "$(llsd_node_kubectl get node "$LLSD_NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

llsd_node_http_ok() { curl -fsS --noproxy '*' --max-time 2 "$1" >/dev/null 2>&1; }

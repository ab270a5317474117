# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared by up, down and run-tests.sh (sourced, not executed).
# Layout of the state dir (${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}/cluster, or
# $LLSD_STATE_DIR: a second, independent instance, e.g. tests/node's, on other LLSD_*_PORTs):
#   pki/            CA, serving/client certificates, service-account keys
#   etcd/           etcd data (wiped whenever etcd is started afresh)
#   logs/<c>.log    one log per component
#   pids/<c>.pid    one pid per component
#   *.kubeconfig    admin (printed by up), kube-controller-manager, kube-scheduler
#   kwok-stages.yaml, nodes.yaml
#   started-by      who started the running cluster (see run-tests.sh)
#   users/<pid>     run-tests.sh processes currently using the cluster
#   .lock           serialises up / down / run-tests bookkeeping

LLSD_CLUSTER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=build.sh
source "$LLSD_CLUSTER_SRC/build.sh"

LLSD_STATE_DIR="${LLSD_STATE_DIR:-$LLSD_CACHE_DIR/cluster}"
LLSD_KUBECONFIG="$LLSD_STATE_DIR/admin.kubeconfig"

# Fixed loopback ports, chosen away from the defaults so a real cluster's
# components (2379/2380, 6443, 10257, 10259) never collide with ours.
LLSD_ETCD_CLIENT_PORT="${LLSD_ETCD_CLIENT_PORT:-23790}"
LLSD_ETCD_PEER_PORT="${LLSD_ETCD_PEER_PORT:-23800}"
LLSD_APISERVER_PORT="${LLSD_APISERVER_PORT:-26443}"
LLSD_KCM_PORT="${LLSD_KCM_PORT:-26257}"
LLSD_SCHEDULER_PORT="${LLSD_SCHEDULER_PORT:-26259}"
LLSD_SERVICE_CIDR="10.96.0.0/16"
LLSD_SERVICE_IP="10.96.0.1"
LLSD_POD_CIDR="10.244.0.0/16"
# kwok's fake Nodes: the env var LLSD_FAKE_NODES (space-separated names) overrides them; set
# but empty means no kwok at all (tests/node runs a real kubelet instead). The array has its
# own name: an array cannot be exported, so reusing the env var's name would hide it from
# the scripts this one starts.
read -ra LLSD_FAKE_NODE_NAMES <<<"${LLSD_FAKE_NODES-kwok-node-0 kwok-node-1}"

# Components in start order (down stops them in reverse).
LLSD_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)
if ((${#LLSD_FAKE_NODE_NAMES[@]})); then LLSD_COMPONENTS+=(kwok); fi

llsd_log() { echo "[cluster $(date -u +%H:%M:%S)] $*" >&2; }

llsd_pidfile() { echo "$LLSD_STATE_DIR/pids/$1.pid"; }

# Prints the pid of component $1 if it is running (and is really our binary:
# guards against pid reuse); fails otherwise.
llsd_pid() { llsd_pid_of "$(llsd_pidfile "$1")" "$(llsd_bin "$1")"; }

# llsd_pid_of PIDFILE BINARY: the pid in PIDFILE if that process runs BINARY (" (deleted)"
# accepted: a rebuilt binary leaves its process running); fails otherwise.
llsd_pid_of() {
  local pid exe
  [[ -s "$1" ]] || return 1
  pid="$(<"$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "${exe% (deleted)}" == "$2" ]] || return 1
  echo "$pid"
}

# llsd_spawn BINARY LOG PIDFILE ARGS...: runs BINARY detached (own session, no proxy: every
# endpoint is on loopback or the node's bridge), appending to LOG, its pid in PIDFILE. The lock
# fds (7-9) are closed, or the daemon would hold them for its lifetime. Returns once the pid
# runs BINARY: until env and setsid have exec'ed it, llsd_pid_of would call it dead.
llsd_spawn() {
  local bin="$1" log="$2" pidfile="$3" pid i
  shift 3
  echo "==== $(date -u +%FT%TZ) starting $(basename "$bin") $*" >>"$log"
  env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY -u all_proxy \
    setsid "$bin" "$@" </dev/null >>"$log" 2>&1 7>&- 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$pidfile"
  for ((i = 0; i < 100; i++)); do
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$bin" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
}

llsd_alive() { llsd_pid "$1" >/dev/null; }

# Stops the given components: TERM to all at once, then waits (up to 10 s in
# all) and KILLs what is left. Safe for components that are not running.
llsd_stop() {
  local c pid
  local -a pids=()
  for c in "$@"; do
    if pid="$(llsd_pid "$c")"; then
      llsd_log "stopping $c (pid $pid)"
      pids+=("$pid")
    fi
  done
  llsd_terminate 10 "${pids[@]}"
  for c in "$@"; do rm -f "$(llsd_pidfile "$c")"; done
}

# llsd_terminate SECS PID...: TERM to every pid, up to SECS seconds for them to exit, then
# KILL what still runs (tests/node's components too).
llsd_terminate() {
  local secs="$1" pid i
  shift
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for ((i = 0; i < secs * 10; i++)); do
    _llsd_any_alive "$@" || break
    sleep 0.1
  done
  for pid in "$@"; do
    if _llsd_running "$pid"; then
      llsd_log "pid $pid ignored TERM for $secs s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < 50; i++)); do
    _llsd_any_alive "$@" || break
    sleep 0.1
  done
}

_llsd_any_alive() {
  local pid
  for pid in "$@"; do _llsd_running "$pid" && return 0; done
  return 1
}

# The process exists and is not a zombie: a daemon whose parent is gone waits for PID 1 to
# reap it, which on some machines takes a second or two after it exited.
_llsd_running() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

# Everything but etcd first (so the API server does not outlive its storage), then etcd.
llsd_stop_all() {
  llsd_stop kwok kube-scheduler kube-controller-manager kube-apiserver
  llsd_stop etcd
  rm -f "$LLSD_STATE_DIR/started-by"
}

# The API server answers /readyz with the admin credentials.
llsd_apiserver_ready() {
  curl -fsS --max-time 3 --cacert "$LLSD_STATE_DIR/pki/ca.crt" \
    --cert "$LLSD_STATE_DIR/pki/admin.crt" --key "$LLSD_STATE_DIR/pki/admin.key" \
    "https://127.0.0.1:$LLSD_APISERVER_PORT/readyz" >/dev/null 2>&1
}

# Everything up runs is alive and the API server is ready.
llsd_cluster_healthy() {
  local c
  for c in "${LLSD_COMPONENTS[@]}"; do llsd_alive "$c" || return 1; done
  [[ -s "$LLSD_KUBECONFIG" ]] && llsd_apiserver_ready
}

# Takes the state dir's lock on fd 9 (released when the process exits).
llsd_lock() {
  mkdir -p "$LLSD_STATE_DIR"
  exec 9>"$LLSD_STATE_DIR/.lock"
  flock 9
}

# The operator `make demo` leaves running (tests/node/demo, which sources this with the node's state dir; before issue 16 the demo ran on this cluster), and how to stop it: the
# process, then its webhook registrations (failurePolicy Fail) and the CRD's conversion, so
# the cluster stays usable without it.
LLSD_DEMO_PIDFILE="$LLSD_STATE_DIR/pids/operator-demo.pid"
llsd_demo_operator_pid() {
  local pid
  [[ -s "$LLSD_DEMO_PIDFILE" ]] || return 1
  pid="$(<"$LLSD_DEMO_PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == *llama-stack-operator* ]] || return 1
  echo "$pid"
}
llsd_demo_stop_operator() {
  local pid kubectl
  if pid="$(llsd_demo_operator_pid)"; then
    llsd_log "stopping the demo operator (pid $pid)"
    llsd_terminate 10 "$pid"
  fi
  rm -f "$LLSD_DEMO_PIDFILE"
  llsd_apiserver_ready || return 0
  kubectl="$(llsd_bin kubectl)"
  export KUBECONFIG="$LLSD_KUBECONFIG"
  "$kubectl" delete mutatingwebhookconfiguration llama-stack-operator-mutating --ignore-not-found >/dev/null 2>&1 || true
  "$kubectl" delete validatingwebhookconfiguration llama-stack-operator-validating --ignore-not-found >/dev/null 2>&1 || true
  if "$kubectl" get crd llamastackdistributions.llamastack.io -o jsonpath='{.spec.conversion.webhook.clientConfig.url}' 2>/dev/null | grep -q '127.0.0.1:9443'; then
    "$kubectl" patch crd llamastackdistributions.llamastack.io --type=json \
      -p '[{"op":"replace","path":"/spec/conversion","value":{"strategy":"None"}}]' >/dev/null 2>&1 || true
  fi
}

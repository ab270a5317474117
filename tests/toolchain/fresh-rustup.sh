#!/usr/bin/env bash
# Issue 16, item 0: `make demo` on a machine whose rustup has only the host target.
#
# A fresh machine of our kind has Rust through rustup but no wasm32-wasip2 target, and the
# operator's build (host/build.rs) compiles the embedded plugin for it. This check runs the
# demo's own build step (`make build`, the prerequisite of `make demo`) against a scratch
# RUSTUP_HOME holding the same toolchain WITHOUT that target, then builds the plugin crate for
# wasm32-wasip2 with it. It fails if the target was not installed by make, or does not work.
#
# The scratch toolchain is a hard-linked copy of the active one (no download, no disk cost);
# the few metadata files rustup rewrites are real copies, so the machine's own toolchain is
# never modified.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${LLSD_CACHE_DIR:-$HOME/.cache/llama-stack-operator}"
TARGET=wasm32-wasip2
log() { echo "[fresh-rustup] $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

command -v rustup >/dev/null || die "rustup not found: Rust must come through rustup (it installs the $TARGET target)"
sysroot="$(cd "$ROOT" && rustc --print sysroot)"
toolchain="$(basename "$sysroot")"
[[ -d "$sysroot/lib/rustlib" ]] || die "unexpected sysroot $sysroot"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/llsd-fresh-rustup.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
home="$scratch/rustup"
mkdir -p "$home/toolchains"
real_home="${RUSTUP_HOME:-$HOME/.rustup}"
[[ -f "$real_home/settings.toml" ]] && cp "$real_home/settings.toml" "$home/"
[[ -d "$real_home/update-hashes" ]] && cp -r "$real_home/update-hashes" "$home/"

log "copying toolchain $toolchain (hard links) without the $TARGET target"
tc="$home/toolchains/$toolchain"
cp -al "$sysroot" "$tc"
rustlib="$tc/lib/rustlib"
rm -rf "$rustlib/$TARGET" "$rustlib/manifest-rust-std-$TARGET"
# Files rustup rewrites when it adds a component: real copies, never links to the originals.
for f in components multirust-channel-manifest.toml multirust-config.toml rust-installer-version; do
  [[ -e "$rustlib/$f" ]] || continue
  rm -f "$rustlib/$f"
  cp "$sysroot/lib/rustlib/$f" "$rustlib/$f"
done
grep -v -x "rust-std-$TARGET" "$sysroot/lib/rustlib/components" >"$rustlib/components" || true
# rustup's own record of installed components: one [[components]] table each.
python3 - "$rustlib/multirust-config.toml" "$TARGET" <<'PY'
import re, sys
path, target = sys.argv[1], sys.argv[2]
tables = re.split(r"(?m)^(?=\[\[components\]\])", open(path).read())
keep = [t for t in tables
        if not (re.search(r'(?m)^pkg = "rust-std"$', t)
                and re.search(rf'(?m)^target = "{re.escape(target)}"$', t))]
open(path, "w").write("".join(keep))
PY

export RUSTUP_HOME="$home" RUSTUP_TOOLCHAIN="$toolchain"
if rustup target list --installed | grep -qx "$TARGET"; then
  die "the scratch toolchain still lists $TARGET: the check would prove nothing"
fi
log "scratch toolchain ready: $(rustup target list --installed | tr '\n' ' ')"

log "running the demo's build step: make build (must install $TARGET itself)"
make -C "$ROOT" --no-print-directory build >"$scratch/make-build.log" 2>&1 ||
  { tail -40 "$scratch/make-build.log" >&2; die "make build failed on a toolchain without $TARGET"; }
rustup target list --installed | grep -qx "$TARGET" ||
  die "make build finished but $TARGET is still not installed"
grep -q "installing the rust target $TARGET" "$scratch/make-build.log" ||
  die "make build did not say that it installs $TARGET"

log "building the plugin crate for $TARGET with the freshly installed target"
# Its own target dir: the shared one already holds this build and would prove nothing.
cargo build -q --release -p llama-stack-config --target "$TARGET" \
  --manifest-path "$ROOT/Cargo.toml" --target-dir "$CACHE/fresh-rustup-target" ||
  die "the $TARGET build failed with the target make installed"
wasm="$CACHE/fresh-rustup-target/$TARGET/release/llama_stack_config.wasm"
[[ "$(head -c 8 "$wasm" | od -An -tx1 | tr -d ' \n')" == 0061736d0d000100 ]] ||
  die "$wasm is not a WebAssembly component"
log "ok: make build installed $TARGET on a toolchain without it, and the component builds with it"

#!/usr/bin/env bash
# Builds the browser playground's engine: the operator's default plugin component (the guest/
# crate for wasm32-wasip2, built exactly as host/build.rs builds it), transpiled to JavaScript +
# core wasm by jco, bundled with the WASI shims it needs by esbuild. Prints the sizes.
#
#   playground/build.sh                     # build the component, transpile, bundle
#   LLSD_PLUGIN_WASM=x.wasm build.sh        # transpile a prebuilt component instead
#   PLAYGROUND_OPTIMIZE=0 build.sh          # skip wasm-opt (jco -O; ~30 s, ~22% smaller wasm)
#
# Output (dist/):
#   llama_stack_config.wasm   the component, as the operator embeds it (not served)
#   transpiled/               jco transpile output: engine.js, engine.core*.wasm, .d.ts types
#   engine.bundle.js          src/engine.js + transpiled/engine.js + browser WASI shims (ESM);
#                             it fetches transpiled/engine.core*.wasm relative to itself
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$here"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/llama-stack-operator/target}"

# 1. The component. Same command, flags and target dir as host/build.rs, so the operator's
#    build and this one share (and reuse) one artefact.
if [[ -n "${LLSD_PLUGIN_WASM:-}" ]]; then
  wasm="$LLSD_PLUGIN_WASM"
else
  plugin_target="$CARGO_TARGET_DIR/plugin-build"
  (cd "$root" && env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS \
      -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER \
      cargo build --release -p llama-stack-config --target wasm32-wasip2 \
      --config 'profile.release.lto="fat"' --config profile.release.codegen-units=1 \
      --target-dir "$plugin_target")
  wasm="$plugin_target/wasm32-wasip2/release/llama_stack_config.wasm"
fi

# 2. The JS toolchain, exactly as the lockfile pins it.
if [[ ! -x node_modules/.bin/jco || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
jco=node_modules/.bin/jco
esbuild=node_modules/.bin/esbuild

rm -rf dist
mkdir -p dist
cp "$wasm" dist/llama_stack_config.wasm

echo "== WASI imports of the component"
"$jco" wit dist/llama_stack_config.wasm | grep -E '^\s*(import|export) ' || true

# 3. Transpile.
#   --instantiation async  an `instantiate(getCoreModule, imports)` function instead of a module
#                          that instantiates itself at import: no bare `@bytecodealliance/...`
#                          imports in the output (no import map needed), the WASI imports are
#                          passed in, the core modules are compiled once by us, and a fresh
#                          instance per call is possible (the guest's allocator needs that).
#   --no-nodejs-compat     no Node fetch fallback in the output; we always pass getCoreModule.
#   -O                     wasm-opt (binaryen, bundled with jco) on the core modules.
#   types (.d.ts) are kept: the page's code can be checked against them.
opts=(--name engine --instantiation async --no-nodejs-compat --quiet)
if [[ "${PLAYGROUND_OPTIMIZE:-1}" != 0 ]]; then
  opts+=(-O)
fi
"$jco" transpile dist/llama_stack_config.wasm -o dist/transpiled "${opts[@]}"

# 4. Bundle for the browser: one ES module, the browser flavour of preview2-shim.
"$esbuild" src/engine.js --bundle --format=esm --platform=browser --target=es2022 --minify \
  --log-level=warning --outfile=dist/engine.bundle.js

# 5. Sizes.
size() { stat -c %s "$1"; }
gz() { gzip -9c "$1" | wc -c; }
echo "== sizes (bytes: raw / gzip -9)"
total=0 totalgz=0 served=0 servedgz=0
while IFS= read -r f; do
  r=$(size "$f") g=$(gz "$f")
  printf '  %-55s %9d %9d\n' "${f#dist/}" "$r" "$g"
  total=$((total + r)) totalgz=$((totalgz + g))
  case "$f" in
    dist/engine.bundle.js|dist/transpiled/*.wasm) served=$((served + r)) servedgz=$((servedgz + g)) ;;
  esac
done < <(find dist -type f | sort)
printf '  %-55s %9d %9d\n' "dist/ (all files)" "$total" "$totalgz"
printf '  %-55s %9d %9d\n' "served (bundle + core wasm)" "$served" "$servedgz"

#!/usr/bin/env bash
# Builds the browser playground: the operator's default plugin component (the guest/ crate for
# wasm32-wasip2, built exactly as host/build.rs builds it), transpiled to JavaScript + core wasm
# by jco, and the page around it, bundled by esbuild. Prints the sizes.
#
#   playground/build.sh                     # build the component, transpile, bundle
#   LLSD_PLUGIN_WASM=x.wasm build.sh        # transpile a prebuilt component instead
#   PLAYGROUND_OPTIMIZE=0 build.sh          # skip wasm-opt (jco -O; ~30 s, ~22% smaller wasm)
#
# build/ (intermediate, not served):
#   llama_stack_config.wasm   the component, as the operator embeds it
#   transpiled/               jco transpile output: engine.js, engine.core*.wasm, .d.ts types
#   engine.bundle.js          src/engine.js alone, browser flavour (for test/node-smoke.mjs)
#   samples.js                deploy/samples/*.yaml as a module (the page's examples)
# dist/ (the static site; `llama-stack-operator playground` serves it):
#   index.html, app.css, app.js  the page (app.js: src/app.js + engine + yaml + samples)
#   engine.core*.wasm            the component's core modules, fetched by app.js
#   vendor-*.js + js-component-bindgen-component.core*.wasm
#                                jco's bindgen, loaded only when a vendor .wasm is picked
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

rm -rf dist build
mkdir -p dist build
cp "$wasm" build/llama_stack_config.wasm
sha256="$(sha256sum build/llama_stack_config.wasm | cut -d' ' -f1)"

echo "== WASI imports of the component"
"$jco" wit build/llama_stack_config.wasm | grep -E '^\s*(import|export) ' || true

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
"$jco" transpile build/llama_stack_config.wasm -o build/transpiled "${opts[@]}"
cp build/transpiled/*.wasm dist/

# 4. The examples: every deploy/samples/*.yaml, the simple one first.
node --input-type=module -e '
  import { readdirSync, readFileSync, writeFileSync } from "node:fs";
  const dir = process.argv[1];
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort((a, b) =>
    (b === "v1alpha2-simple.yaml") - (a === "v1alpha2-simple.yaml") || a.localeCompare(b));
  const samples = files.map((file) => ({ file, text: readFileSync(`${dir}/${file}`, "utf8") }));
  writeFileSync("build/samples.js", `export default ${JSON.stringify(samples)};\n`);
' "$root/deploy/samples"

# 5. Bundle for the browser (the browser flavour of preview2-shim). Code splitting keeps jco's
#    bindgen (vendor.js, ~1 MB) out of the first load; its own core wasm files are fetched
#    relative to the chunk, so they are copied next to it. `node:*` imports are the bindgen's
#    Node-only branch, never taken in a browser.
common=(--bundle --format=esm --platform=browser --target=es2022 --minify --log-level=warning)
"$esbuild" src/app.js "${common[@]}" --splitting --outdir=dist --chunk-names='[name]-[hash]' \
  --external:'node:*' --define:ENGINE_SHA256="\"$sha256\""
cp node_modules/@bytecodealliance/jco-transpile/vendor/js-component-bindgen-component.core*.wasm dist/
cp src/index.html src/app.css dist/
"$esbuild" src/engine.js "${common[@]}" --outfile=build/engine.bundle.js

# 6. Sizes.
size() { stat -c %s "$1"; }
gz() { gzip -9c "$1" | wc -c; }
echo "== dist/ sizes (bytes: raw / gzip -9); component sha256 $sha256"
total=0 totalgz=0 first=0 firstgz=0
while IFS= read -r f; do
  r=$(size "$f") g=$(gz "$f")
  printf '  %-55s %9d %9d\n' "${f#dist/}" "$r" "$g"
  total=$((total + r)) totalgz=$((totalgz + g))
  case "$f" in
    dist/vendor-*|dist/js-component-bindgen-*) ;;
    *) first=$((first + r)) firstgz=$((firstgz + g)) ;;
  esac
done < <(find dist -type f | sort)
printf '  %-55s %9d %9d\n' "all files" "$total" "$totalgz"
printf '  %-55s %9d %9d\n' "first load (all but the vendor-plugin bindgen)" "$first" "$firstgz"

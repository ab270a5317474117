// Transpiles a component with no build step, the way the playground page would for a vendor
// .wasm picked from disk: jco's bindgen (itself a component, transpiled to JS + wasm, in
// @bytecodealliance/jco-transpile/component) turns the bytes into files in memory; the JS is
// imported from a data: URL (a blob: URL in a browser) and the core modules compiled from the
// file map. Then info() and generate() on the result, compared with the build-time transpile.
//
//   node test/transpile-in-js.mjs [component.wasm]   (default build/llama_stack_config.wasm)
//
// Also bundles the bindgen for the browser with esbuild and prints its size.

import { readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { execFileSync } from "node:child_process";
import { $init, generate } from "@bytecodealliance/jco-transpile/component";

const here = dirname(fileURLToPath(import.meta.url));
const playground = join(here, "..");
const wasmPath = process.argv[2] ?? join(playground, "build/llama_stack_config.wasm");
const { wasiImports } = await import(join(playground, "src/engine.js"));

let t = performance.now();
await $init;
const tInit = performance.now() - t;
const bytes = await readFile(wasmPath);
t = performance.now();
const { files, imports, exports } = generate(bytes, {
  name: "vendor",
  instantiation: { tag: "async" },
  noNodejsCompat: true,
  noTypescript: true,
});
const tGen = performance.now() - t;
console.log(
  `bindgen init ${tInit.toFixed(0)} ms, transpile ${tGen.toFixed(0)} ms: ` +
    files.map(([n, b]) => `${n} (${b.length})`).join(", "),
);
console.log(`imports: ${imports.join(", ")}\nexports: ${exports.map((e) => e[0]).join(", ")}`);

const fileMap = new Map(files);
const js = new TextDecoder().decode(fileMap.get("vendor.js"));
const { instantiate } = await import(`data:text/javascript;base64,${Buffer.from(js).toString("base64")}`);
const modules = new Map();
for (const [name, b] of files) if (name.endsWith(".wasm")) modules.set(name, await WebAssembly.compile(b));
const root = await instantiate((name) => modules.get(name), wasiImports);
const engine = root["llamastack:config/engine@0.1.0"] ?? root.engine;
const info = engine.info();
console.log(`info: ${info.name} ${info.version} (${info.distributions.length} distributions)`);
const req = JSON.stringify({ name: "x", spec: { distribution: { name: "starter" } } });
const a = engine.generate(req).contentHash;
const { loadEngine } = await import(join(playground, "src/engine.js"));
const built = await loadEngine((name) => readFile(join(playground, "build/transpiled", name)));
const b = (await built.generate(req)).contentHash;
console.log(`generate: in-JS transpile ${a === b ? "==" : "!="} build-time transpile (${a})`);

// What the bindgen costs a browser page.
const out = "/tmp/llsd-playground-bindgen.js";
execFileSync(
  join(playground, "node_modules/.bin/esbuild"),
  [
    "--bundle",
    "--format=esm",
    "--platform=browser",
    "--minify",
    "--log-level=error",
    `--outfile=${out}`,
    "--external:*.wasm",
    "--external:node:*",
  ],
  { input: 'export { $init, generate } from "@bytecodealliance/jco-transpile/component";', cwd: playground },
);
const dir = join(playground, "node_modules/@bytecodealliance/jco-transpile/vendor");
const gz = (f) => execFileSync("sh", ["-c", `gzip -9c '${f}' | wc -c`], { encoding: "utf8" }).trim();
for (const f of [out, join(dir, "js-component-bindgen-component.core.wasm"), join(dir, "js-component-bindgen-component.core2.wasm")]) {
  console.log(`  ${f.split("/").pop()}: ${(await stat(f)).size} bytes, gzip -9 ${gz(f)}`);
}
if (a !== b) process.exit(1);

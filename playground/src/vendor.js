// A vendor plugin (.wasm component) picked from disk, made runnable in the page with no build
// step: jco's bindgen, itself a component transpiled to JS (@bytecodealliance/jco-transpile),
// turns the component's bytes into JS + core modules in memory. The page loads this module only
// when a file is picked, so the bindgen (~1 MB gzip) costs nothing until then.
//
// The plugin gets what the operator's sandbox gives a plugin (host/src/plugin/sandbox.rs): no
// environment, no preopened directories, no network, clocks frozen at 0, insecure random seeded 0.

import { $init, generate } from "@bytecodealliance/jco-transpile/component";
import * as clocks from "@bytecodealliance/preview2-shim/clocks";
import * as filesystem from "@bytecodealliance/preview2-shim/filesystem";
import * as random from "@bytecodealliance/preview2-shim/random";
import { Engine, wasiImports } from "./engine.js";

const frozen = {
  "wasi:clocks/wall-clock": {
    ...clocks.wallClock,
    now: () => ({ seconds: 0n, nanoseconds: 0 }),
    resolution: () => ({ seconds: 1n, nanoseconds: 0 }),
  },
  "wasi:clocks/monotonic-clock": { ...clocks.monotonicClock, now: () => 0n, resolution: () => 1_000_000_000n },
};

const sandbox = {
  ...wasiImports,
  ...frozen,
  "wasi:filesystem/preopens": { getDirectories: () => [] },
  "wasi:filesystem/types": filesystem.types,
  "wasi:random/random": random.random,
  "wasi:random/insecure": random.insecure,
};

export class PluginLoadError extends Error {}

/**
 * Bytes of a component -> { engine, info, imports, sha256 }. Refuses a component that is not a
 * config plugin (no llamastack:config/engine export) or that imports what the sandbox does not
 * give (sockets, http: the operator would refuse it too).
 */
export async function loadVendor(bytes, label = "vendor") {
  await $init;
  let out;
  try {
    out = generate(bytes, {
      name: "plugin",
      instantiation: { tag: "async" },
      noNodejsCompat: true,
      noTypescript: true,
    });
  } catch (e) {
    throw new PluginLoadError(`${label} is not a WebAssembly component: ${e?.message ?? e}`);
  }
  const exported = out.exports.map(([name]) => name);
  if (!exported.some((n) => n === "engine" || n.startsWith("llamastack:config/engine@"))) {
    throw new PluginLoadError(
      `${label} does not export llamastack:config/engine (it exports: ${exported.join(", ") || "nothing"})`,
    );
  }
  const missing = out.imports.map(unversioned).filter((i) => !(i in sandbox));
  if (missing.length) {
    throw new PluginLoadError(`${label} imports ${missing.join(", ")}, which a plugin's sandbox does not provide`);
  }
  const files = new Map(out.files);
  const js = files.get("plugin.js");
  const url = URL.createObjectURL(new Blob([js], { type: "text/javascript" }));
  let instantiate;
  try {
    ({ instantiate } = await import(/* webpackIgnore: true */ url));
  } finally {
    URL.revokeObjectURL(url);
  }
  const modules = new Map();
  await Promise.all(
    [...files]
      .filter(([name]) => name.endsWith(".wasm"))
      .map(async ([name, b]) => modules.set(name, await WebAssembly.compile(b))),
  );
  const engine = new Engine(modules, instantiate, sandbox);
  const info = await engine.cachedInfo();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const sha256 = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { engine, info, imports: out.imports, sha256, label };
}

function unversioned(name) {
  return name.replace(/@[^/]*$/, "");
}

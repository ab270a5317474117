// The config engine in JavaScript: the operator's WASI component (guest/ crate), transpiled by
// `jco transpile --instantiation async` into dist/transpiled/ (build.sh), with the few WASI
// interfaces it imports served by @bytecodealliance/preview2-shim.
//
// The guest uses a bump allocator meant for one call per instance (guest/src/one_shot_alloc.rs):
// an instance never gives memory back. So, as the operator does, every call here gets a fresh
// instance. The core modules are compiled once; instantiating them again is cheap.

import { instantiate } from "../build/transpiled/engine.js";
import * as cli from "@bytecodealliance/preview2-shim/cli";
import * as io from "@bytecodealliance/preview2-shim/io";

// What the component imports (`jco wit dist/llama_stack_config.wasm`): the wasi:cli, wasi:io and
// wasi:random/insecure-seed interfaces Rust's std links on wasm32-wasip2. No filesystem, clocks,
// sockets or http. Keys are unversioned: jco's instantiate looks them up without @0.2.x.
// The seed is fixed at 0, as the operator's sandbox does (host/src/plugin/sandbox.rs,
// `insecure_random_seed(0)`): same instance state, same output, in both hosts.
export const wasiImports = {
  "wasi:cli/environment": cli.environment,
  "wasi:cli/exit": cli.exit,
  "wasi:cli/stderr": cli.stderr,
  "wasi:cli/stdin": cli.stdin,
  "wasi:cli/stdout": cli.stdout,
  "wasi:cli/terminal-input": cli.terminalInput,
  "wasi:cli/terminal-output": cli.terminalOutput,
  "wasi:cli/terminal-stderr": cli.terminalStderr,
  "wasi:cli/terminal-stdin": cli.terminalStdin,
  "wasi:cli/terminal-stdout": cli.terminalStdout,
  "wasi:io/error": io.error,
  "wasi:io/poll": io.poll,
  "wasi:io/streams": io.streams,
  "wasi:random/insecure-seed": { insecureSeed: () => [0n, 0n] },
};

// The core modules jco split the component into, as named by dist/transpiled/engine.js.
export const coreModuleNames = ["engine.core.wasm", "engine.core2.wasm", "engine.core3.wasm"];

/**
 * Compiles the core modules once. `load(name)` returns the bytes (ArrayBuffer/Uint8Array), a
 * Response, or a promise of either. By default they are fetched next to this module's
 * directory (the page: dist/).
 */
export async function loadEngine(load) {
  load ??= (name) => fetch(new URL(`./${name}`, import.meta.url));
  const modules = new Map();
  await Promise.all(
    coreModuleNames.map(async (name) => {
      const src = await load(name);
      const module =
        typeof Response !== "undefined" && src instanceof Response
          ? await WebAssembly.compileStreaming(src)
          : await WebAssembly.compile(src);
      modules.set(name, module);
    }),
  );
  return new Engine(modules);
}

export class Engine {
  /**
   * `modules`: name -> compiled core module; `instantiateComponent`: jco's `instantiate` of the
   * transpiled component (the built-in one by default; a vendor plugin's, transpiled in the page,
   * otherwise); `imports`: what it imports, by unversioned interface name.
   */
  constructor(modules, instantiateComponent = instantiate, imports = wasiImports) {
    this.modules = modules;
    this.instantiateComponent = instantiateComponent;
    this.imports = imports;
  }

  /**
   * A fresh instance of the component: its `engine` export (info/generate/validate/convert).
   * `instantiateCore` (optional, for diagnostics) replaces WebAssembly.instantiate for the core
   * modules, e.g. to look at the guest's memory.
   */
  async instantiate(instantiateCore = WebAssembly.instantiate) {
    const getCoreModule = (name) => {
      const m = this.modules.get(name);
      if (!m) throw new Error(`unknown core module ${name}`);
      return m;
    };
    const root = await this.instantiateComponent(getCoreModule, this.imports, instantiateCore);
    const engine = root.engine ?? root["llamastack:config/engine@0.1.0"];
    if (!engine) throw new Error("the component does not export llamastack:config/engine");
    return engine;
  }

  // One call, one instance. Results and errors as jco maps them: `result<T, E>` returns T or
  // throws a ComponentError whose `payload` is E (a field-error list, or a convert-error).
  async info() {
    return (await this.instantiate()).info();
  }
  /** info() of the first call: a plugin's info does not change. */
  async cachedInfo() {
    this.infoOnce ??= this.info();
    return this.infoOnce;
  }
  async generate(request) {
    return (await this.instantiate()).generate(toJson(request));
  }
  async validate(request) {
    return (await this.instantiate()).validate(toJson(request));
  }
  async convert(object, toVersion) {
    return (await this.instantiate()).convert(toJson(object), toVersion);
  }
}

function toJson(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}

// Smoke test of the transpiled engine in Node (run `./build.sh` first):
//   node test/node-smoke.mjs            # the browser bundle (build/engine.bundle.js)
//   node test/node-smoke.mjs src        # src/engine.js with Node's preview2-shim
//
// info(); generate() on deploy/samples/v1alpha2-simple.yaml compared byte for byte with
// `llama-stack-operator generate -f` (the operator running the same component in wasmtime);
// convert() of v1alpha1-starter.yaml to v1alpha2; the field errors of an unknown distribution;
// what reusing one instance does (the guest's one-shot allocator); timings. Exits 1 on failure.
//
// LLSD_OPERATOR_BIN overrides the operator binary (default
// $CARGO_TARGET_DIR/debug/llama-stack-operator, CARGO_TARGET_DIR defaulting to
// ~/.cache/llama-stack-operator/target).

import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const playground = join(here, "..");
const root = join(playground, "..");
const variant = process.argv[2] ?? "bundle";
const modulePath =
  variant === "src" ? join(playground, "src/engine.js") : join(playground, "build/engine.bundle.js");

let failures = 0;
const fail = (msg) => {
  failures++;
  console.error(`FAIL: ${msg}`);
};
const ok = (msg) => console.log(`ok: ${msg}`);
const ms = (t) => `${t.toFixed(2)} ms`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function lsd(file) {
  const docs = parseAllDocuments(await readFile(join(root, file), "utf8"));
  const obj = docs.map((d) => d.toJS()).find((o) => o?.kind === "LlamaStackDistribution");
  if (!obj) throw new Error(`${file} has no LlamaStackDistribution`);
  return obj;
}

// ComponentError (jco's wrapper of a `result` error) carries the WIT error value in `payload`.
async function expectErr(promise) {
  try {
    return { ok: await promise };
  } catch (e) {
    if (e && "payload" in e) return { err: e.payload };
    throw e;
  }
}

const { loadEngine } = await import(modulePath);
console.log(`module: ${modulePath.slice(root.length + 1)}`);

// Compile the core modules once.
let t = performance.now();
const engine = await loadEngine((name) => readFile(join(playground, "build/transpiled", name)));
console.log(`compile (core modules, once): ${ms(performance.now() - t)}`);

// Cold: the first instance and the first call (V8's baseline compiler, nothing warm yet).
{
  const simpleReq = { name: "simple", spec: (await lsd("deploy/samples/v1alpha2-simple.yaml")).spec };
  const t0 = performance.now();
  const first = await engine.instantiate();
  const t1 = performance.now();
  first.generate(JSON.stringify(simpleReq));
  console.log(`cold: first instantiate ${ms(t1 - t0)}, first generate ${ms(performance.now() - t1)}`);
}

// info()
const info = await engine.info();
console.log(
  `info: ${info.name} ${info.version}; distributions: ${info.distributions.map((d) => d.name).join(", ")}`,
);
if (!info.distributions.some((d) => d.name === "starter")) fail("info() lists no starter distribution");

// generate() against the operator's CLI.
const simple = await lsd("deploy/samples/v1alpha2-simple.yaml");
const request = { name: simple.metadata.name, spec: simple.spec };
const generated = await engine.generate(request);
const targetDir = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/llama-stack-operator/target");
const bin = process.env.LLSD_OPERATOR_BIN ?? join(targetDir, "debug/llama-stack-operator");
const expected = execFileSync(bin, ["generate", "-f", join(root, "deploy/samples/v1alpha2-simple.yaml")], {
  encoding: "utf8",
  stdio: ["ignore", "pipe", "ignore"],
});
if (generated.configYaml === expected) {
  ok(
    `generate(simple): configYaml == operator CLI output (${generated.configYaml.length} bytes, ` +
      `${generated.providerCount} providers, ${generated.resourceCount} resources, ` +
      `${generated.warnings.length} warnings, env ${generated.env.map((e) => e.name).join(",")})`,
  );
} else {
  const a = generated.configYaml.split("\n");
  const b = expected.split("\n");
  const i = a.findIndex((l, n) => l !== b[n]);
  fail(`generate(simple) differs from the CLI at line ${i + 1}:\n  wasm: ${a[i]}\n  cli:  ${b[i]}`);
}

// convert() v1alpha1 -> v1alpha2.
const starter = await lsd("deploy/samples/v1alpha1-starter.yaml");
const conv = await expectErr(engine.convert(starter, "v1alpha2"));
if (conv.err) {
  fail(`convert(v1alpha1-starter) failed: ${JSON.stringify(conv.err)}`);
} else {
  const out = JSON.parse(conv.ok);
  if (out.apiVersion === "llamastack.io/v1alpha2") {
    ok(`convert(v1alpha1-starter): apiVersion ${out.apiVersion}; spec keys ${Object.keys(out.spec).join(",")}`);
  } else {
    fail(`convert: apiVersion is ${out.apiVersion}`);
  }
}

// generate() on an invalid spec: field errors with their paths.
const bad = structuredClone(request);
bad.spec.distribution.name = "nope";
const badRes = await expectErr(engine.generate(bad));
if (badRes.ok) {
  fail('generate with distribution "nope" succeeded');
} else {
  for (const e of badRes.err) console.log(`  field error: ${e.path} [${e.reason}] ${e.message}`);
  if (badRes.err.some((e) => e.path.startsWith("spec.distribution"))) {
    ok("generate(nope): field error at spec.distribution*");
  } else {
    fail(`generate(nope): no error at spec.distribution: ${JSON.stringify(badRes.err)}`);
  }
}

// One instance, many calls. The guest's bump allocator never frees, so memory only grows; the
// results stay right until memory runs out. Report, and check the outputs stay identical.
{
  let memory;
  const instantiateCore = async (module, imports) => {
    const inst = await WebAssembly.instantiate(module, imports);
    if (inst.exports.memory instanceof WebAssembly.Memory && !memory) memory = inst.exports.memory;
    return inst;
  };
  const one = await engine.instantiate(instantiateCore);
  const sizes = [memory.buffer.byteLength];
  const calls = 50;
  let same = 0;
  for (let i = 0; i < calls; i++) {
    if (one.generate(JSON.stringify(request)).configYaml === expected) same++;
    sizes.push(memory.buffer.byteLength);
  }
  const mib = (n) => (n / 1048576).toFixed(1);
  const perCall = (sizes[calls] - sizes[1]) / (calls - 1);
  console.log(
    `reuse: ${calls} generate calls on one instance: ${same}/${calls} identical; memory ` +
      `${mib(sizes[0])} MiB -> ${mib(sizes[1])} MiB after 1 call -> ${mib(sizes[calls])} MiB ` +
      `(~${(perCall / 1024).toFixed(0)} KiB per call, never freed: the 4 GiB wasm32 limit after ` +
      `~${Math.floor(2 ** 32 / perCall)} calls)`,
  );
  if (same !== calls) fail("reusing an instance changed the output");
}

// Timings: a fresh instance per call, as the engine wrapper does.
{
  const inst = [];
  const gen = [];
  const runs = 50;
  for (let i = 0; i < runs; i++) {
    let t0 = performance.now();
    const e = await engine.instantiate();
    const t1 = performance.now();
    e.generate(JSON.stringify(request));
    const t2 = performance.now();
    inst.push(t1 - t0);
    gen.push(t2 - t1);
  }
  console.log(
    `warm (${runs} runs, fresh instance each): instantiate median ${ms(median(inst))} ` +
      `(max ${ms(Math.max(...inst))}), generate median ${ms(median(gen))} (max ${ms(Math.max(...gen))})`,
  );
}

if (failures) {
  console.error(`${failures} failure(s)`);
  process.exit(1);
}
console.log("all ok");

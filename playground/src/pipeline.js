// Editor text -> what the operator would do with it: the steps of `llama-stack-operator
// generate -f` (host/src/cli/generate.rs, input.rs), in the browser, on the same component.
//
//   1. Parse the YAML (several documents allowed: a sample with its Secrets and ConfigMaps).
//   2. Pick the LlamaStackDistribution: the only document, else the one of that kind.
//   3. v1alpha1: convert to v1alpha2 with the built-in engine, as the API server would.
//   4. overrideConfig: the base config is the named ConfigMap's `config.yaml`, when that
//      ConfigMap is in the same text (the operator reads it from the cluster).
//   5. Generate with the plugin that serves the distribution (route.js), else the built-in one.
// Every problem comes back as a field error with its path, and the line where it is written.

import { LineCounter, parseAllDocuments } from "yaml";
import { locate } from "./locate.js";
import { vendorFor } from "./route.js";

export const V1 = "llamastack.io/v1alpha1";
export const V2 = "llamastack.io/v1alpha2";
const KIND = "LlamaStackDistribution";

/** The text's documents and the LlamaStackDistribution among them (or a problem). */
export function parseInput(text) {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const problems = [];
  for (const d of docs) {
    for (const e of d.errors ?? []) {
      const line = lineCounter.linePos(e.pos[0]).line;
      problems.push({ path: "(yaml)", reason: "InvalidYAML", message: e.message.split("\n")[0], line });
    }
  }
  if (problems.length) return { problems };
  const parsed = [];
  for (const d of docs) {
    let value;
    try {
      value = d.toJS({ maxAliasCount: 100 });
    } catch (e) {
      const line = d.range ? lineCounter.linePos(d.range[0]).line : undefined;
      return { problems: [{ path: "(yaml)", reason: "InvalidYAML", message: String(e.message ?? e), line }] };
    }
    if (value !== null && value !== undefined) parsed.push({ doc: d, value });
  }
  const ours = parsed.length === 1 ? parsed : parsed.filter((p) => p.value?.kind === KIND);
  if (ours.length !== 1) {
    const message =
      ours.length === 0
        ? "no LlamaStackDistribution document in the input"
        : `expected one LlamaStackDistribution document, found ${ours.length}`;
    return { problems: [{ path: "(input)", reason: "NoResource", message }] };
  }
  const { doc, value } = ours[0];
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { problems: [{ path: "(input)", reason: "NoResource", message: "expected a LlamaStackDistribution object" }] };
  }
  const configMaps = new Map();
  for (const p of parsed) {
    if (p.value?.kind === "ConfigMap" && typeof p.value?.metadata?.name === "string") {
      configMaps.set(p.value.metadata.name, p.value.data ?? {});
    }
  }
  return { doc, lineCounter, object: value, configMaps, docs };
}

/** A field error with the line its path is written on (only an exact match when `exactOnly`). */
function located(input, e, exactOnly = false) {
  const where = locate(input.doc, input.lineCounter, e.path);
  return where && (!exactOnly || where.exact) ? { ...e, line: where.line, exact: where.exact } : { ...e };
}

/**
 * Runs the steps above on `input` (parseInput's result). `builtin`: an Engine (engine.js);
 * `vendors`: [{ info, engine, label }]. Returns { object, request, plugin, generated?,
 * problems[], notes[] }.
 */
export async function run(input, builtin, vendors = []) {
  if (input.problems) return { problems: input.problems, notes: [] };
  const at = (e, exactOnly) => located(input, e, exactOnly);
  const notes = [];
  let object = input.object;
  const apiVersion = object.apiVersion;
  if (apiVersion !== undefined && apiVersion !== V1 && apiVersion !== V2) {
    return { problems: [at({ path: "apiVersion", reason: "Invalid", message: `apiVersion ${apiVersion} is not ${V2} or ${V1}` })], notes };
  }
  if (object.kind !== undefined && object.kind !== KIND) {
    return { problems: [at({ path: "kind", reason: "Invalid", message: `kind is ${object.kind}, expected ${KIND}` })], notes };
  }
  if (apiVersion === V1) {
    const conv = await settle(builtin.convert(object, "v1alpha2"));
    if (conv.error) return { problems: convertProblems(conv.error).map((e) => at(e)), notes };
    object = JSON.parse(conv.value);
    notes.push("v1alpha1 input: converted to v1alpha2 by the built-in engine first, as the API server does; error paths refer to the converted object");
  }
  // A file without `spec` is taken as a bare spec, as the CLI does.
  const request = "spec" in object ? { name: object.metadata?.name, spec: object.spec } : { spec: object };
  const cmName = request.spec?.overrideConfig?.configMapName;
  if (typeof cmName === "string") {
    const data = input.configMaps.get(cmName);
    if (data && typeof data["config.yaml"] === "string") {
      request.baseConfig = { yaml: data["config.yaml"], source: "override-config" };
      notes.push(`base config: config.yaml of ConfigMap ${cmName} in this text`);
    } else {
      notes.push(
        `spec.overrideConfig names ConfigMap ${cmName}: add it to this text (a --- document with data."config.yaml") to generate as the operator would with it`,
      );
    }
  }
  const vendor = vendorFor(request.spec, vendors);
  const engine = vendor ? vendor.engine : builtin;
  const plugin = vendor ? { ...vendor.info, vendor: true, label: vendor.label } : { ...(await builtin.cachedInfo()), vendor: false };
  const gen = await settle(engine.generate(request));
  if (gen.error) {
    // Paths of a converted v1alpha1 object do not all exist in the v1alpha1 text.
    return { object, request, plugin, problems: fieldErrors(gen.error).map((e) => at(e, apiVersion === V1)), notes };
  }
  return { object, request, plugin, generated: gen.value, problems: [], notes };
}

/** The object in the other API version (v1alpha1 <-> v1alpha2), by the built-in engine. */
export async function convertOther(input, builtin) {
  if (input.problems) return { problems: input.problems };
  const from = input.object.apiVersion === V1 ? "v1alpha1" : "v1alpha2";
  const to = from === "v1alpha1" ? "v1alpha2" : "v1alpha1";
  const object = { apiVersion: `llamastack.io/${from}`, kind: KIND, ...input.object };
  const conv = await settle(builtin.convert(object, to));
  if (conv.error) {
    return { from, to, problems: convertProblems(conv.error).map((e) => located(input, e)) };
  }
  return { from, to, object: JSON.parse(conv.value), problems: [] };
}

async function settle(p) {
  try {
    return { value: await p };
  } catch (e) {
    // jco's ComponentError carries a WIT `result`'s error in `payload`; anything else (a trap,
    // a broken plugin) is reported as it is.
    if (e && typeof e === "object" && "payload" in e) return { error: e.payload };
    return { error: [{ path: "(plugin)", reason: "PluginFailed", message: String(e?.message ?? e) }] };
  }
}

function fieldErrors(payload) {
  return Array.isArray(payload) ? payload : [{ path: "(plugin)", reason: "PluginFailed", message: String(payload) }];
}

function convertProblems(payload) {
  if (payload?.tag === "invalid") return payload.val;
  if (payload?.tag === "unsupported") return [{ path: "(convert)", reason: "Unsupported", message: payload.val }];
  return fieldErrors(payload);
}

// The playground page: editor text -> pipeline.js (the operator's steps, on its own component)
// -> config.yaml, secrets, warnings, problems at their lines; plus the convert view, examples,
// the distribution picker, a vendor plugin from disk and the shareable link.

import { isMap, stringify } from "yaml";
import { loadEngine } from "./engine.js";
import { convertOther, parseInput, run } from "./pipeline.js";
import { decodeShare, encodeShare } from "./share.js";
import { distributionOf } from "./route.js";
import samples from "../build/samples.js";

// Set by build.sh (esbuild --define): the sha256 of the component this page runs, the digest
// the operator logs for its built-in plugin ("plugin loaded plugin=builtin digest=...").
/* global ENGINE_SHA256 */
const engineSha256 = typeof ENGINE_SHA256 === "string" ? ENGINE_SHA256 : "unknown";

const $ = (id) => document.getElementById(id);
const ui = {
  editor: $("editor"),
  gutter: $("gutter"),
  example: $("example"),
  distribution: $("distribution"),
  pluginFile: $("plugin-file"),
  pluginUnload: $("plugin-unload"),
  pluginStatus: $("plugin-status"),
  share: $("share"),
  shareUrl: $("share-url"),
  status: $("status"),
  config: $("config"),
  problemsBox: $("problems-box"),
  problems: $("problems"),
  notes: $("notes"),
  warnings: $("warnings"),
  env: document.querySelector("#env tbody"),
  derived: document.querySelector("#derived tbody"),
  resolved: $("resolved"),
  convertStatus: $("convert-status"),
  converted: $("converted"),
  useConverted: $("use-converted"),
  engineInfo: $("engine-info"),
};

// What tests and curious users can read: timings since navigation start, and run counts.
const metrics = { engineReadyMs: null, firstOutputMs: null, runs: 0, lastRunMs: null, lastText: null, busy: false };
window.playground = metrics;

let builtin = null;
let vendors = [];
let convertedText = null;

// ---- editor -------------------------------------------------------------------------------

function renderGutter(errorLines = new Map()) {
  const n = ui.editor.value.split("\n").length;
  const frag = document.createDocumentFragment();
  for (let i = 1; i <= n; i++) {
    const s = document.createElement("span");
    s.textContent = String(i);
    s.dataset.line = String(i);
    if (errorLines.has(i)) {
      s.className = "err";
      s.title = errorLines.get(i);
    }
    frag.append(s);
  }
  ui.gutter.replaceChildren(frag);
  ui.gutter.scrollTop = ui.editor.scrollTop;
}

function setText(text) {
  ui.editor.value = text;
  renderGutter();
  schedule(0);
}

function goToLine(line) {
  const lines = ui.editor.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((a, l) => a + l.length + 1, 0);
  ui.editor.focus();
  ui.editor.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
  const lineHeight = parseFloat(getComputedStyle(ui.editor).lineHeight) || 19;
  ui.editor.scrollTop = Math.max(0, (line - 4) * lineHeight);
}

// ---- running ------------------------------------------------------------------------------

let timer = null;
let running = false;
let again = false;

function schedule(delay = 150) {
  clearTimeout(timer);
  timer = setTimeout(update, delay);
}

// One run at a time; edits during a run start one more run after it.
async function update() {
  if (!builtin) return;
  if (running) {
    again = true;
    return;
  }
  running = true;
  metrics.busy = true;
  try {
    const text = ui.editor.value;
    const t0 = performance.now();
    const input = parseInput(text);
    const result = await run(input, builtin, vendors);
    const conv = await convertOther(input, builtin);
    metrics.lastRunMs = performance.now() - t0;
    render(result, metrics.lastRunMs);
    renderConvert(conv);
    metrics.runs++;
    metrics.lastText = text;
    ui.status.dataset.runs = String(metrics.runs);
    if (metrics.firstOutputMs === null && result.generated) {
      metrics.firstOutputMs = performance.now();
      document.body.dataset.firstOutputMs = metrics.firstOutputMs.toFixed(1);
    }
    remember(text);
  } catch (e) {
    ui.status.dataset.state = "errors";
    ui.status.textContent = `The engine failed: ${e?.message ?? e}`;
    console.error(e);
  } finally {
    running = false;
    if (again) {
      again = false;
      schedule(0);
    } else {
      metrics.busy = false;
    }
  }
}

function render(result, ms) {
  const errorLines = new Map();
  ui.problems.replaceChildren(
    ...result.problems.map((p) => {
      const li = document.createElement("li");
      li.className = "problem";
      li.dataset.path = p.path;
      if (p.reason) li.dataset.reason = p.reason;
      const path = document.createElement("code");
      path.className = "path";
      path.textContent = p.path;
      const reason = document.createElement("span");
      reason.className = "reason";
      reason.textContent = p.reason ?? "";
      const msg = document.createElement("span");
      msg.className = "message";
      msg.textContent = p.message;
      li.append(path, reason, msg);
      if (p.line) {
        li.dataset.line = String(p.line);
        const where = document.createElement("span");
        where.className = "line";
        where.textContent = p.exact === false ? `near line ${p.line}` : `line ${p.line}`;
        li.prepend(where);
        li.addEventListener("click", () => goToLine(p.line));
        const prev = errorLines.get(p.line);
        errorLines.set(p.line, prev ? `${prev}\n${p.path}: ${p.message}` : `${p.path}: ${p.message}`);
      }
      return li;
    }),
  );
  ui.problemsBox.hidden = result.problems.length === 0;
  ui.notes.replaceChildren(...result.notes.map((n) => Object.assign(document.createElement("li"), { textContent: n })));
  renderGutter(errorLines);
  syncPicker(result.request?.spec);

  const g = result.generated;
  if (!g) {
    ui.status.dataset.state = "errors";
    const n = result.problems.length;
    ui.status.textContent = `${n} problem${n === 1 ? "" : "s"}: nothing generated (the output below is the last good one)`;
    ui.config.classList.add("stale");
    return;
  }
  ui.config.classList.remove("stale");
  ui.config.textContent = g.configYaml;
  ui.status.dataset.state = "ok";
  const plugin = result.plugin;
  ui.status.textContent =
    `${g.providerCount} providers, ${g.resourceCount} resources, config version ${g.configVersion}, ` +
    `${g.env.length} env vars from Secrets, ${g.warnings.length} warning${g.warnings.length === 1 ? "" : "s"} · ` +
    `sha256 ${g.contentHash.slice(0, 12)}… · ${plugin.vendor ? "vendor plugin" : "built-in plugin"} ` +
    `${plugin.name} ${plugin.version} · ${ms.toFixed(1)} ms`;
  ui.warnings.replaceChildren(
    ...(g.warnings.length ? g.warnings : ["none"]).map((w) =>
      Object.assign(document.createElement("li"), { textContent: w, className: g.warnings.length ? "warning" : "none" }),
    ),
  );
  ui.env.replaceChildren(...g.env.map((e) => row([e.name, e.secretName, e.secretKey])));
  ui.derived.replaceChildren(...g.derivedSecrets.map((d) => row([d.name, d.sourceSecret, d.sourceKey, d.format])));
  const d = g.distribution;
  const facts = [
    ["name", d.name ?? "—"],
    ["image", d.image ?? "—"],
    ["llama-stack", d.llamaStackVersion ?? "—"],
    ["config source", d.configSource],
    ["base config sha256", d.baseConfigHash],
    ["config.yaml sha256", g.contentHash],
    ["plugin", `${plugin.name} ${plugin.version}${plugin.vendor ? ` (vendor: ${plugin.label})` : " (built-in)"}`],
  ];
  ui.resolved.replaceChildren(
    ...facts.flatMap(([k, v]) => [
      Object.assign(document.createElement("dt"), { textContent: k }),
      Object.assign(document.createElement("dd"), { textContent: v }),
    ]),
  );
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.append(Object.assign(document.createElement("td"), { textContent: c }));
  return tr;
}

function renderConvert(conv) {
  if (conv.problems.length) {
    convertedText = null;
    ui.converted.textContent = "";
    ui.convertStatus.dataset.state = "errors";
    ui.convertStatus.textContent = conv.to
      ? `Cannot convert ${conv.from} to ${conv.to}: ${conv.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`
      : "Fix the input first.";
  } else {
    convertedText = stringify(conv.object, { lineWidth: 0 });
    ui.converted.textContent = convertedText;
    ui.convertStatus.dataset.state = "ok";
    ui.convertStatus.dataset.to = conv.to;
    ui.convertStatus.textContent = `The input as llamastack.io/${conv.to}, converted by the built-in engine (what the API server's conversion webhook returns).`;
  }
  ui.useConverted.disabled = convertedText === null;
}

// ---- distribution picker ------------------------------------------------------------------

async function fillPicker() {
  const info = await builtin.cachedInfo();
  const groups = [{ label: `built-in: ${info.name} ${info.version}`, info }, ...vendors.map((v) => ({ label: `vendor: ${v.info.name} ${v.info.version}`, info: v.info }))];
  const other = new Option("(other, or an image)", "");
  const opts = [other];
  for (const g of groups) {
    const og = document.createElement("optgroup");
    og.label = g.label;
    for (const d of g.info.distributions) {
      const o = new Option(d.name, d.name);
      o.title = `${d.description} (${d.image}, llama-stack ${d.llamaStackVersion})`;
      og.append(o);
    }
    opts.push(og);
  }
  ui.distribution.replaceChildren(...opts);
}

function syncPicker(spec) {
  const { name } = distributionOf(spec);
  const known = [...ui.distribution.options].some((o) => o.value === name && name);
  ui.distribution.value = known ? name : "";
}

/** The text with spec.distribution set to `{name}`: the value edited in place when there is one. */
function withDistribution(text, name) {
  const input = parseInput(text);
  if (input.problems) return null;
  const { doc } = input;
  const node = doc.getIn(["spec", "distribution", "name"], true);
  if (node?.range) return text.slice(0, node.range[0]) + name + text.slice(node.range[1]);
  const dist = doc.getIn(["spec", "distribution"], true);
  if (isMap(dist)) {
    dist.set("name", name);
    dist.delete("image");
  } else {
    doc.setIn(["spec", "distribution"], doc.createNode({ name }));
  }
  return input.docs.map((d) => d.toString()).join("");
}

// ---- sharing ------------------------------------------------------------------------------

let lastFragment = "";

async function remember(text) {
  try {
    const fragment = await encodeShare(text);
    if (fragment !== lastFragment) {
      lastFragment = fragment;
      history.replaceState(null, "", `#${fragment}`);
    }
  } catch (e) {
    console.warn("could not encode the link", e);
  }
}

async function fromFragment() {
  if (!location.hash || location.hash.slice(1) === lastFragment) return null;
  try {
    return await decodeShare(location.hash);
  } catch (e) {
    ui.pluginStatus.dataset.state = "error";
    ui.pluginStatus.textContent = `The link's input could not be read (${e?.message ?? e}); showing an example instead.`;
    return null;
  }
}

// ---- vendor plugin ------------------------------------------------------------------------

async function loadPluginFile(file) {
  ui.pluginStatus.dataset.state = "loading";
  ui.pluginStatus.textContent = `Transpiling ${file.name} in the page…`;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const t0 = performance.now();
    const { loadVendor } = await import("./vendor.js");
    const v = await loadVendor(bytes, file.name);
    const ms = performance.now() - t0;
    vendors = [v];
    ui.pluginStatus.dataset.state = "vendor";
    ui.pluginStatus.dataset.plugin = v.info.name;
    ui.pluginStatus.textContent =
      `Vendor plugin ${v.info.name} ${v.info.version} from ${file.name} (sha256 ${v.sha256.slice(0, 12)}…, ` +
      `loaded in ${ms.toFixed(0)} ms) serves ${v.info.distributions.map((d) => d.name).join(", ") || "no names"}` +
      `${v.info.imageRepositories.length ? ` and images under ${v.info.imageRepositories.join(", ")}` : ""}. ` +
      `Other distributions still use the built-in plugin, as in the operator.`;
    ui.pluginUnload.hidden = false;
  } catch (e) {
    vendors = [];
    ui.pluginStatus.dataset.state = "error";
    ui.pluginStatus.textContent = `Could not load ${file.name}: ${e?.message ?? e}`;
  }
  await fillPicker();
  schedule(0);
}

// ---- wiring -------------------------------------------------------------------------------

function selectTab(name) {
  for (const b of document.querySelectorAll("[data-tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const p of document.querySelectorAll("[data-panel]")) p.hidden = p.dataset.panel !== name;
}

function wire() {
  ui.editor.addEventListener("input", () => {
    const s = samples.find((x) => x.file === ui.example.value);
    if (s && s.text !== ui.editor.value) ui.example.value = "";
    renderGutter();
    schedule();
  });
  ui.editor.addEventListener("scroll", () => (ui.gutter.scrollTop = ui.editor.scrollTop));
  ui.editor.addEventListener("keydown", (e) => {
    // Tab indents (two spaces) instead of leaving the editor.
    if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      ui.editor.setRangeText("  ", ui.editor.selectionStart, ui.editor.selectionEnd, "end");
      ui.editor.dispatchEvent(new Event("input"));
    }
  });
  for (const b of document.querySelectorAll("[data-tab]")) b.addEventListener("click", () => selectTab(b.dataset.tab));
  ui.example.addEventListener("change", () => {
    const s = samples.find((x) => x.file === ui.example.value);
    if (s) setText(s.text);
  });
  ui.distribution.addEventListener("change", () => {
    if (!ui.distribution.value) return;
    const text = withDistribution(ui.editor.value, ui.distribution.value);
    if (text !== null) setText(text);
  });
  ui.pluginFile.addEventListener("change", () => {
    const f = ui.pluginFile.files?.[0];
    if (f) loadPluginFile(f);
  });
  ui.pluginUnload.addEventListener("click", async () => {
    vendors = [];
    ui.pluginFile.value = "";
    ui.pluginUnload.hidden = true;
    ui.pluginStatus.dataset.state = "builtin";
    ui.pluginStatus.textContent = "";
    await fillPicker();
    schedule(0);
  });
  ui.share.addEventListener("click", async () => {
    ui.shareUrl.value = "";
    await remember(ui.editor.value);
    ui.shareUrl.hidden = false;
    ui.shareUrl.value = location.href;
    ui.shareUrl.select();
    try {
      await navigator.clipboard.writeText(location.href);
      ui.share.textContent = "Link copied";
    } catch {
      ui.share.textContent = "Copy the link below";
    }
  });
  ui.useConverted.addEventListener("click", () => {
    if (convertedText !== null) {
      setText(convertedText);
      selectTab("config");
    }
  });
  window.addEventListener("hashchange", async () => {
    const text = await fromFragment();
    if (text !== null) setText(text);
  });
}

async function main() {
  ui.example.append(new Option("(choose an example)", ""));
  for (const s of samples) ui.example.append(new Option(s.file, s.file));
  wire();
  const shared = await fromFragment();
  ui.editor.value = shared ?? samples[0].text;
  ui.example.value = shared === null ? samples[0].file : "";
  renderGutter();
  try {
    builtin = await loadEngine();
    const info = await builtin.cachedInfo();
    metrics.engineReadyMs = performance.now();
    ui.engineInfo.textContent =
      `Engine: the operator's built-in plugin ${info.name} ${info.version} (component sha256 ${engineSha256}), ` +
      `${info.distributions.length} distributions, transpiled by jco; running in your browser.`;
    await fillPicker();
  } catch (e) {
    ui.status.dataset.state = "errors";
    ui.status.textContent = `The config engine did not load: ${e?.message ?? e}`;
    console.error(e);
    return;
  }
  await update();
}

main();

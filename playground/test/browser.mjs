// The playground page in headless Chromium (Debian's chromium, driven by playwright-core),
// served by `llama-stack-operator playground`, checked against `llama-stack-operator generate`
// and `convert` on the same input. Issue 10's acceptance:
//
//   - a CR typed into the editor gives the config.yaml the CLI prints, byte for byte; so does
//     every sample in deploy/samples (or the same field errors, where the CLI refuses it);
//   - an invalid CR shows its error at the field path, on the line where the field is written;
//   - the convert view equals `convert`; a vendor plugin .wasm loads from disk and generates what
//     `generate --plugin` prints; a shared link restores the input;
//   - a screenshot is written; page weight (bytes transferred) and time to first output are
//     printed, for the note.
//
//   node test/browser.mjs      (after ./build.sh; exits 1 on any failure)
//
// Environment: LLSD_OPERATOR_BIN (default $CARGO_TARGET_DIR/debug/llama-stack-operator),
// LLSD_ACME_PLUGIN (the acme vendor plugin component, built by `make playground-tests`),
// CHROMIUM (default /usr/bin/chromium), LLSD_PLAYGROUND_RESULTS (default test-results/).

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { acme, bin, chromiumPath, launch, playground, root, serve, settled } from "./harness.mjs";

const results = process.env.LLSD_PLAYGROUND_RESULTS ?? join(playground, "test-results");
const tmp = mkdtempSync(join(tmpdir(), "llsd-playground-"));

for (const [what, path] of [["the operator binary", bin], ["Chromium", chromiumPath], ["the acme plugin", acme], ["the page", join(playground, "dist/index.html")]]) {
  try {
    statSync(path);
  } catch {
    console.error(`FAIL: ${what} is missing at ${path} (make playground-tests builds and installs everything)`);
    process.exit(1);
  }
}

let failures = 0;
const fail = (msg) => {
  failures++;
  console.error(`FAIL: ${msg}`);
};
const ok = (msg) => console.log(`ok: ${msg}`);
const check = (cond, msg, detail = "") => (cond ? ok(msg) : fail(detail ? `${msg}\n${detail}` : msg));

/** The first differing line of two texts, for a readable failure. */
function diff(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  const i = x.findIndex((l, n) => l !== y[n]);
  return i < 0 && x.length === y.length ? "" : `  first difference at line ${i + 1}:\n    page: ${JSON.stringify(x[i])}\n    cli:  ${JSON.stringify(y[i])}`;
}

// ---- the CLI, for the expected answers --------------------------------------------------

let n = 0;
function cli(args, input) {
  const file = join(tmp, `input-${n++}.yaml`);
  writeFileSync(file, input);
  try {
    const stdout = execFileSync(bin, [...args, "-f", file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { code: 0, stdout };
  } catch (e) {
    return { code: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

/** What `generate` prints for `text`: with --base-config when the text carries the override. */
function cliGenerate(text, extra = []) {
  const docs = parseAllDocuments(text).map((d) => d.toJS());
  const cr = docs.find((d) => d?.kind === "LlamaStackDistribution");
  // v1alpha2 overrideConfig, or v1alpha1 server.userConfig (converted to it).
  const cmName = cr?.spec?.overrideConfig?.configMapName ?? cr?.spec?.server?.userConfig?.configMapName;
  const cm = docs.find((d) => d?.kind === "ConfigMap" && d?.metadata?.name === cmName);
  if (cm) {
    const base = join(tmp, `base-${n++}.yaml`);
    writeFileSync(base, cm.data["config.yaml"]);
    extra = [...extra, "--base-config", base];
  }
  return cli(["generate", ...extra], text);
}

// ---- the page -------------------------------------------------------------------------------

async function pageState(page) {
  return page.evaluate(() => ({
    state: document.getElementById("status").dataset.state,
    status: document.getElementById("status").textContent,
    config: document.getElementById("config").textContent,
    problems: [...document.querySelectorAll("#problems li")].map((li) => ({
      path: li.dataset.path,
      reason: li.dataset.reason,
      line: li.dataset.line ? Number(li.dataset.line) : undefined,
      message: li.querySelector(".message").textContent,
    })),
    errorLines: [...document.querySelectorAll("#gutter span.err")].map((s) => Number(s.dataset.line)),
    env: [...document.querySelectorAll("#env tbody tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
    warnings: [...document.querySelectorAll("#warnings li.warning")].map((li) => li.textContent),
  }));
}

async function setEditor(page, text) {
  await page.locator("#editor").fill(text);
  await settled(page);
}

/** The page's answer for `text` against the CLI's: same config.yaml, or the same field errors. */
async function compareWithCli(page, label, text, extra = []) {
  const want = cliGenerate(text, extra);
  const got = await pageState(page);
  if (want.code === 0) {
    if (got.state === "ok" && got.config === want.stdout) {
      ok(`${label}: config.yaml == \`generate\` (${want.stdout.length} bytes)`);
    } else {
      fail(`${label}: page (${got.state}) differs from \`generate\`\n${diff(got.config, want.stdout)}\n  problems: ${JSON.stringify(got.problems)}`);
    }
    return got;
  }
  // The CLI prints `path: message` per field error (exit 1).
  const cliErrors = want.stderr.split("\n").filter((l) => l && !l.startsWith("warning: ")).sort();
  const pageErrors = got.problems.map((p) => `${p.path}: ${p.message}`).sort();
  check(
    got.state === "errors" && JSON.stringify(cliErrors) === JSON.stringify(pageErrors),
    `${label}: refused with the CLI's field errors (${pageErrors.length}: ${got.problems.map((p) => p.path).join(", ")})`,
    `  page: ${JSON.stringify(pageErrors)}\n  cli:  ${JSON.stringify(cliErrors)}`,
  );
  return got;
}

const TYPED = `apiVersion: llamastack.io/v1alpha2
kind: LlamaStackDistribution
metadata:
  name: typed
spec:
  distribution:
    name: starter
  providers:
    inference:
      - provider: vllm
        endpoint: http://vllm.models.svc:8000/v1
  resources:
    models:
      - name: meta-llama/Llama-3.1-8B-Instruct
`;

const browser = await launch();
const server = await serve();
console.log(`page: ${server.url} (llama-stack-operator playground), browser: Chromium ${browser.version()}`);
const pageErrors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && pageErrors.push(`console.error: ${m.text()}`));
  const transferred = new Map();
  page.on("requestfinished", async (req) => {
    if (req.url().startsWith("blob:") || req.url().startsWith("data:")) return;
    const sizes = await req.sizes().catch(() => null);
    const res = await req.response();
    if (sizes && res) {
      transferred.set(new URL(req.url()).pathname, {
        body: sizes.responseBodySize,
        headers: sizes.responseHeadersSize,
        encoding: (await res.allHeaders())["content-encoding"] ?? "identity",
        type: (await res.allHeaders())["content-type"],
      });
    }
  });

  // 1. Cold load: the first sample's output, timed; what crossed the wire.
  await page.goto(server.url);
  await settled(page);
  const metrics = await page.evaluate(() => ({ ...window.playground }));
  const simple = readFileSync(join(root, "deploy/samples/v1alpha2-simple.yaml"), "utf8");
  check((await page.inputValue("#editor")) === simple, "the page opens on deploy/samples/v1alpha2-simple.yaml");
  await compareWithCli(page, "first output (simple sample)", simple);
  await page.waitForTimeout(200); // let requestfinished handlers settle
  let total = 0;
  console.log("page weight, cold load (bytes transferred: body + headers):");
  for (const [path, s] of [...transferred].sort()) {
    total += s.body + s.headers;
    console.log(`  ${path.padEnd(28)} ${String(s.body).padStart(9)} + ${String(s.headers).padStart(4)}  ${s.encoding.padEnd(8)} ${s.type}`);
  }
  console.log(`  total: ${total} bytes in ${transferred.size} requests`);
  console.log(
    `time to first generated output: ${metrics.firstOutputMs.toFixed(0)} ms after navigation start ` +
      `(engine ready ${metrics.engineReadyMs.toFixed(0)} ms; first run ${metrics.lastRunMs.toFixed(1)} ms)`,
  );
  check(transferred.get("/engine.core.wasm")?.type === "application/wasm", "the core wasm is served as application/wasm (streaming compile)");
  check(![...transferred.keys()].some((p) => p.includes("bindgen") || p.includes("vendor-")), "the vendor-plugin bindgen is not loaded until a plugin is picked");

  // 2. Type a CR: keystrokes into the editor, the live output follows.
  await page.locator("#editor").fill("");
  await page.locator("#editor").pressSequentially(TYPED.trimEnd(), { delay: 0 });
  await page.keyboard.press("Enter");
  await settled(page);
  check((await page.inputValue("#editor")) === TYPED, "the typed text is in the editor as typed");
  const typed = await compareWithCli(page, "typed CR", TYPED);
  // Counts and warnings, against the CLI's JSON output for the same text.
  const json = JSON.parse(cli(["generate", "-o", "json"], TYPED).stdout);
  check(
    typed.status.startsWith(`${json.providerCount} providers, ${json.resourceCount} resources, config version ${json.configVersion},`),
    `the status line gives generate's counts (${typed.status})`,
  );
  check(
    JSON.stringify(typed.warnings) === JSON.stringify(json.warnings),
    `the warnings are generate's (${json.warnings.length})`,
    `  page: ${JSON.stringify(typed.warnings)}\n  cli:  ${JSON.stringify(json.warnings)}`,
  );

  // 3. Invalid CRs: the error at its path and at its line.
  const nope = TYPED.replace("name: starter", "name: nope");
  await setEditor(page, nope);
  const bad = await compareWithCli(page, "unknown distribution", nope);
  const nopeLine = nope.split("\n").findIndex((l) => l.includes("name: nope")) + 1;
  const at = bad.problems.find((p) => p.path === "spec.distribution.name");
  check(at?.line === nopeLine && bad.errorLines.includes(nopeLine), `spec.distribution.name is shown at line ${nopeLine}, marked in the gutter`, JSON.stringify(bad));
  check(bad.config === typed.config, "the last good config.yaml stays on screen while the input is invalid");

  const badPort = TYPED.replace("spec:\n", "spec:\n  networking:\n    port: 99999\n");
  await setEditor(page, badPort);
  const port = await compareWithCli(page, "port out of range", badPort);
  const portLine = badPort.split("\n").findIndex((l) => l.includes("99999")) + 1;
  check(port.problems.some((p) => p.path === "spec.networking.port" && p.line === portLine), `spec.networking.port is shown at line ${portLine}`, JSON.stringify(port.problems));

  const broken = TYPED.replace("  providers:\n", "  providers: [\n");
  await setEditor(page, broken);
  const yamlErr = await pageState(page);
  check(yamlErr.state === "errors" && yamlErr.problems.some((p) => p.path === "(yaml)" && p.line), `broken YAML is reported with a line (${JSON.stringify(yamlErr.problems[0])})`);

  // 4. Every sample, from the examples menu.
  const samples = readdirSync(join(root, "deploy/samples")).filter((f) => f.endsWith(".yaml")).sort();
  const options = await page.$$eval("#example option", (os) => os.map((o) => o.value).filter(Boolean));
  check(JSON.stringify([...options].sort()) === JSON.stringify(samples), `the examples menu lists every sample (${options.length})`);
  for (const file of samples) {
    await page.selectOption("#example", file);
    await settled(page);
    const text = readFileSync(join(root, "deploy/samples", file), "utf8");
    check((await page.inputValue("#editor")) === text, `${file}: loaded from the menu`);
    const got = await compareWithCli(page, file, text);
    if (file === "v1alpha2-simple.yaml") {
      check(
        JSON.stringify(got.env) === JSON.stringify([["LLSD_VLLM_API_KEY", "simple-vllm-auth", "token"]]),
        `${file}: the secret env list names the Secret and key only (${JSON.stringify(got.env)})`,
      );
      const secretValue = "fake-vllm-token-replace-me";
      const shown = await page.evaluate(() => document.querySelector("main section:last-child").textContent);
      check(!shown.includes(secretValue), `${file}: the Secret's value appears nowhere in the output`);
    }
  }

  // 5. Convert view, v1alpha1 -> v1alpha2 and back, against `convert`.
  for (const [file, to] of [["v1alpha1-starter.yaml", "v1alpha2"], ["v1alpha2-full.yaml", "v1alpha1"]]) {
    await page.selectOption("#example", file);
    await settled(page);
    await page.click('[data-tab="convert"]');
    const shown = await page.textContent("#converted");
    const text = readFileSync(join(root, "deploy/samples", file), "utf8");
    const want = cli(["convert", "--to", to], text);
    const same = want.code === 0 && JSON.stringify(parse(shown)) === JSON.stringify(parse(want.stdout));
    check(same, `${file}: the convert view equals \`convert --to ${to}\``, `  page: ${shown.slice(0, 300)}\n  cli: ${String(want.stdout ?? want.stderr).slice(0, 300)}`);
  }
  await page.selectOption("#example", "v1alpha1-starter.yaml");
  await settled(page);
  const fromV1 = (await pageState(page)).config;
  await page.click("#use-converted");
  await settled(page);
  const v2text = await page.inputValue("#editor");
  check(parse(v2text).apiVersion === "llamastack.io/v1alpha2", "\"Edit this version\" puts the v1alpha2 object in the editor");
  check((await pageState(page)).config === fromV1, "the converted object generates the same config.yaml as the v1alpha1 one");

  // 6. The distribution picker rewrites spec.distribution.name in place.
  await setEditor(page, TYPED);
  await page.selectOption("#distribution", "remote-vllm");
  await settled(page);
  const picked = await page.inputValue("#editor");
  check(picked === TYPED.replace("name: starter", "name: remote-vllm"), "picking remote-vllm edits only the distribution name");
  await compareWithCli(page, "picked remote-vllm", picked);

  // 7. A vendor plugin from disk.
  const vendorStart = transferred.size;
  await page.setInputFiles("#plugin-file", acme);
  await page.waitForSelector('#plugin-status[data-state="vendor"], #plugin-status[data-state="error"]', { timeout: 60_000 });
  const status = await page.textContent("#plugin-status");
  check((await page.getAttribute("#plugin-status", "data-state")) === "vendor", `vendor plugin loaded: ${status}`);
  const acmeDists = await page.$$eval('#distribution optgroup[label^="vendor"] option', (os) => os.map((o) => o.value));
  check(acmeDists.includes("acme-enterprise"), `the picker offers the vendor's distributions (${acmeDists.join(", ")})`);
  await page.selectOption("#distribution", "acme-enterprise");
  await settled(page);
  const acmeText = await page.inputValue("#editor");
  const acmeOut = await compareWithCli(page, "acme-enterprise through the vendor plugin", acmeText, ["--plugin", acme]);
  check(acmeOut.status.includes("vendor plugin"), `the status names the vendor plugin (${acmeOut.status})`);
  await setEditor(page, TYPED);
  check((await pageState(page)).status.includes("built-in plugin"), "starter still goes to the built-in plugin while a vendor plugin is loaded");
  let vendorBytes = 0;
  for (const [path, s] of [...transferred].slice(vendorStart)) vendorBytes += s.body + s.headers, console.log(`  vendor load: ${path} ${s.body} (${s.encoding})`);
  console.log(`page weight of the vendor-plugin loader (on demand): ${vendorBytes} bytes`);

  const notAPlugin = join(tmp, "not-a-plugin.wasm");
  writeFileSync(notAPlugin, readFileSync(join(playground, "dist/engine.core3.wasm")));
  await page.setInputFiles("#plugin-file", notAPlugin);
  await page.waitForSelector('#plugin-status[data-state="error"]', { timeout: 60_000 });
  ok(`a core module that is not a component is refused: ${await page.textContent("#plugin-status")}`);

  // 8. The shareable link restores the input in a new tab.
  await page.click("#plugin-unload");
  await setEditor(page, nope);
  await page.click("#share");
  await page.waitForFunction(() => document.getElementById("share-url").value !== "");
  const link = await page.inputValue("#share-url");
  check(link.startsWith(server.url) && link.includes("#cr="), `the share link encodes the input (${link.length} characters)`);
  const second = await context.newPage();
  second.on("pageerror", (e) => pageErrors.push(`pageerror (shared tab): ${e.message}`));
  await second.goto(link);
  await settled(second);
  check((await second.inputValue("#editor")) === nope, "the shared link opens with the same input");
  check((await pageState(second)).problems.some((p) => p.path === "spec.distribution.name" && p.line === nopeLine), "and the same error at the same line");
  await second.close();

  // 9. Screenshot: the simple sample with the details tab, and an error state.
  mkdirSync(results, { recursive: true });
  await page.selectOption("#example", "v1alpha2-simple.yaml");
  await settled(page);
  await page.click('[data-tab="config"]');
  const shot = join(results, "playground.png");
  await page.screenshot({ path: shot, fullPage: true });
  await setEditor(page, nope);
  const shotErr = join(results, "playground-error.png");
  await page.screenshot({ path: shotErr, fullPage: true });
  for (const f of [shot, shotErr]) {
    const png = readFileSync(f);
    check(png.subarray(1, 4).toString() === "PNG" && png.length > 20_000, `screenshot ${f} (${png.length} bytes)`);
  }

  check(pageErrors.length === 0, "no page errors or console errors", pageErrors.join("\n"));
} finally {
  await browser.close();
  server.child.kill("SIGTERM");
}

if (failures) {
  console.error(`${failures} failure(s)`);
  process.exit(1);
}
console.log("all ok");

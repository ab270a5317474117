// Playground benchmark (make bench-playground; not part of make test): what a user waits for.
//
//   - cold loads: a fresh browser context each time (empty cache), served by
//     `llama-stack-operator playground` (gzip); time from navigation start to the first
//     config.yaml on screen, and bytes transferred;
//   - edits: the time of one run (parse, generate on a fresh instance, convert view) after
//     a one-character edit of the simple sample, over many edits;
//   - the vendor-plugin loader: time from picking the acme .wasm to its distributions listed.
//
//   node test/bench.mjs [cold-loads=10] [edits=60]
//
// Same environment variables as test/browser.mjs.

import { acme, launch, serve, settled } from "./harness.mjs";

const coldLoads = Number(process.argv[2] ?? 10);
const edits = Number(process.argv[3] ?? 60);

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
const fmt = (xs) => `p50 ${pct(xs, 50).toFixed(1)} ms, p90 ${pct(xs, 90).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (n=${xs.length})`;

const { child: server, url } = await serve();
const browser = await launch();

try {
  console.log(`Chromium ${browser.version()}, ${url}`);
  const first = [];
  let bytes = 0;
  for (let i = 0; i < coldLoads; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const sizes = [];
    page.on("requestfinished", (req) => sizes.push(req.sizes().then((s) => s.responseBodySize + s.responseHeadersSize).catch(() => 0)));
    await page.goto(url);
    await page.waitForFunction(() => window.playground?.firstOutputMs !== null, null, { timeout: 30_000 });
    first.push(await page.evaluate(() => window.playground.firstOutputMs));
    bytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
    await context.close();
  }
  console.log(`cold load -> first config.yaml on screen: ${fmt(first)}; ${bytes} bytes transferred`);

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  await settled(page);
  const base = await page.inputValue("#editor");
  const runs = [];
  for (let i = 0; i < edits; i++) {
    await page.locator("#editor").fill(`${base}# edit ${i}\n`);
    await settled(page);
    runs.push(await page.evaluate(() => window.playground.lastRunMs));
  }
  console.log(`one edit -> output updated (generate + convert view, fresh instances): ${fmt(runs)}`);

  const t0 = Date.now();
  await page.setInputFiles("#plugin-file", acme);
  await page.waitForSelector('#plugin-status[data-state="vendor"]', { timeout: 60_000 });
  console.log(`vendor plugin picked -> loaded (bindgen fetched, transpiled, compiled, info()): ${Date.now() - t0} ms`);
} finally {
  await browser.close();
  server.kill("SIGTERM");
}

// What test/browser.mjs and test/bench.mjs share: paths, the page served by
// `llama-stack-operator playground`, Debian's Chromium, and "the page has caught up".

import { spawn } from "node:child_process";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const playground = join(dirname(fileURLToPath(import.meta.url)), "..");
export const root = join(playground, "..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/llama-stack-operator/target");
export const bin = process.env.LLSD_OPERATOR_BIN ?? join(targetDir, "debug/llama-stack-operator");
export const acme =
  process.env.LLSD_ACME_PLUGIN ?? join(targetDir, "test-plugins/wasm32-wasip2/release/acme_llama_stack_plugin.wasm");
export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** `llama-stack-operator playground --port 0` on dist/: { child, url }. */
export async function serve() {
  // For debugging against a server already running (make never sets it).
  if (process.env.LLSD_PLAYGROUND_URL) return { child: { kill() {} }, url: process.env.LLSD_PLAYGROUND_URL };
  const child = spawn(bin, ["playground", "--dir", join(playground, "dist"), "--port", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/at (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`llama-stack-operator playground exited ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`llama-stack-operator playground printed no URL in 10 s: ${out}`)), 10_000);
  });
  return { child, url };
}

/** Headless Debian Chromium. */
export function launch() {
  return chromium.launch({
    executablePath: chromiumPath,
    // As the environment notes say: without the background-networking flags Chromium keeps
    // trying to reach Google's hosts, which this machine's network refuses.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Waits until the page has run on exactly what the editor holds now. */
export async function settled(page) {
  await page.waitForFunction(
    () => window.playground && !window.playground.busy && window.playground.lastText === document.getElementById("editor").value,
    null,
    { timeout: 30_000 },
  );
}

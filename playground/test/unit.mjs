// Unit tests of the page's pure modules (node --test test/unit.mjs): field path -> line,
// the share link's encoding, and which plugin answers a spec.

import { test } from "node:test";
import assert from "node:assert/strict";
import { LineCounter, parseDocument } from "yaml";
import { locate, parsePath } from "../src/locate.js";
import { decodeShare, encodeShare } from "../src/share.js";
import { servesRepository, vendorFor } from "../src/route.js";

test("paths split into keys and indexes", () => {
  assert.deepEqual(parsePath("spec.providers.inference[1].apiKey"), ["spec", "providers", "inference", 1, "apiKey"]);
  assert.deepEqual(parsePath("spec.env[FOO]"), ["spec", "env", "FOO"]);
  assert.deepEqual(parsePath("spec"), ["spec"]);
});

const TEXT = `# comment
spec:
  distribution:
    name: nope
  providers:
    inference:
      - provider: vllm
      - provider: ollama
        apiKey: x
`;

function doc(text) {
  const lc = new LineCounter();
  return [parseDocument(text, { lineCounter: lc }), lc];
}

test("a path is found at the line of its key or list item", () => {
  const [d, lc] = doc(TEXT);
  assert.deepEqual(locate(d, lc, "spec.distribution.name"), { line: 4, exact: true });
  assert.deepEqual(locate(d, lc, "spec.providers.inference[1]"), { line: 8, exact: true });
  assert.deepEqual(locate(d, lc, "spec.providers.inference[1].apiKey"), { line: 9, exact: true });
});

test("a missing field points at its deepest present parent", () => {
  const [d, lc] = doc(TEXT);
  assert.deepEqual(locate(d, lc, "spec.distribution.image"), { line: 3, exact: false });
  assert.deepEqual(locate(d, lc, "spec.providers.inference[5].id"), { line: 6, exact: false });
  assert.equal(locate(d, lc, "status.phase"), null);
});

test("the share link round-trips any text, and refuses damaged data", async () => {
  for (const text of [TEXT, "", "ü ✓ 日本\n".repeat(500)]) {
    const f = await encodeShare(text);
    assert.match(f, /^cr=[A-Za-z0-9_-]*$/);
    assert.equal(await decodeShare(`#${f}`), text);
  }
  assert.ok((await encodeShare(TEXT.repeat(20))).length < TEXT.repeat(20).length / 3, "compressed");
  assert.equal(await decodeShare("#other=1"), null);
  await assert.rejects(decodeShare("#cr=!!!"));
  await assert.rejects(decodeShare("#cr=AAAA"));
});

test("a vendor serves its names and image repositories; the rest go to the built-in plugin", () => {
  const acme = { info: { distributions: [{ name: "acme-enterprise" }], imageRepositories: ["quay.io/acme"] } };
  assert.equal(vendorFor({ distribution: { name: "acme-enterprise" } }, [acme]), acme);
  assert.equal(vendorFor({ distribution: "acme-enterprise" }, [acme]), acme);
  assert.equal(vendorFor({ distribution: { image: "quay.io/acme/stack:1.0" } }, [acme]), acme);
  assert.equal(vendorFor({ distribution: { name: "starter" } }, [acme]), null);
  assert.equal(vendorFor({}, [acme]), null);
  assert.ok(servesRepository("localhost:5000/acme", "localhost:5000/acme/x@sha256:ab"));
  assert.ok(!servesRepository("quay.io/acme", "quay.io/acmecorp/x:1"));
  assert.ok(!servesRepository("localhost:5000/acme", "localhost:5000/other:acme"));
});

// The shareable URL: the editor's text, deflated (CompressionStream "deflate-raw", built into
// browsers and Node 18+) and base64url-encoded into the fragment, `#cr=...`. The fragment never
// reaches a server, so sharing a CR sends nothing anywhere but to whoever gets the link.

const PREFIX = "cr=";

export async function encodeShare(text) {
  const bytes = await pipe(new TextEncoder().encode(text), new CompressionStream("deflate-raw"));
  return PREFIX + toBase64Url(bytes);
}

/** The text in a fragment made by encodeShare (with or without the leading '#'), or null. */
export async function decodeShare(fragment) {
  const f = fragment.startsWith("#") ? fragment.slice(1) : fragment;
  const part = f.split("&").find((p) => p.startsWith(PREFIX));
  if (!part) return null;
  const bytes = fromBase64Url(part.slice(PREFIX.length));
  const out = await pipe(bytes, new DecompressionStream("deflate-raw"));
  return new TextDecoder("utf-8", { fatal: true }).decode(out);
}

async function pipe(bytes, transform) {
  const stream = new Blob([bytes]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function toBase64Url(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("the link's data is not base64url");
  const b = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

// Field paths (`spec.providers.inference[0].apiKey`, as the engine reports them) -> the line of
// the editor's text where that field is written. The engine knows paths, not lines; the `yaml`
// package keeps every node's source range, so the page can point at the line.

import { isMap, isSeq } from "yaml";

/** `spec.a[0].b` -> ["spec", "a", 0, "b"]. A bracket holding a non-number stays a string key. */
export function parsePath(path) {
  const out = [];
  const re = /([^.[\]]+)|\[([^\]]*)\]/g;
  for (const m of path.matchAll(re)) {
    if (m[1] !== undefined) out.push(m[1]);
    else out.push(/^\d+$/.test(m[2]) ? Number(m[2]) : m[2]);
  }
  return out;
}

/**
 * Where `path` is written in `doc` (a yaml Document parsed with `lineCounter`).
 * Returns { line, exact } (1-based line of the deepest node of the path that exists: the key of
 * a map entry, the item of a list), or null when not even the first segment is there.
 * `exact` is false when the field itself is absent (a missing required field points at its
 * parent, where it should be added).
 */
export function locate(doc, lineCounter, path) {
  const segments = parsePath(path);
  let node = doc.contents;
  let found = null;
  let depth = 0;
  for (const seg of segments) {
    let next = null;
    let at = null;
    if (isMap(node) && typeof seg === "string") {
      const pair = node.items.find((p) => keyOf(p) === seg);
      if (pair) {
        next = pair.value;
        at = pair.key?.range?.[0] ?? pair.value?.range?.[0];
      }
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      next = node.items[seg];
      at = next?.range?.[0];
    }
    if (at === null || at === undefined) break;
    found = at;
    node = next;
    depth++;
  }
  if (found === null) return null;
  return { line: lineCounter.linePos(found).line, exact: depth === segments.length };
}

function keyOf(pair) {
  const k = pair.key;
  if (k === null || k === undefined) return undefined;
  return typeof k === "object" && "value" in k ? String(k.value) : String(k);
}

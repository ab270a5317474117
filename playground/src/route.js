// Which plugin answers a spec, as the operator decides (host/src/plugin/registry.rs,
// `for_request`): the first vendor plugin that serves the distribution's name or the image's
// repository, else the built-in one.

/** { name, image } of spec.distribution (a string is the short form of `{name}`). */
export function distributionOf(spec) {
  const d = spec?.distribution;
  if (typeof d === "string") return { name: d, image: undefined };
  if (d && typeof d === "object") {
    return {
      name: typeof d.name === "string" ? d.name : undefined,
      image: typeof d.image === "string" ? d.image : undefined,
    };
  }
  return { name: undefined, image: undefined };
}

/** `plugins`: [{ info, ... }] vendor plugins in order. Returns the one to use, or null (built-in). */
export function vendorFor(spec, plugins) {
  const { name, image } = distributionOf(spec);
  return (
    plugins.find(
      (p) =>
        (name !== undefined && p.info.distributions.some((d) => d.name === name)) ||
        (image !== undefined && p.info.imageRepositories.some((r) => servesRepository(r, image))),
    ) ?? null
  );
}

/** `quay.io/acme` serves `quay.io/acme/stack:1.0` and `quay.io/acme@sha256:...`. */
export function servesRepository(repo, image) {
  const withoutDigest = image.split("@")[0];
  // A tag is a ':' after the last '/'; a registry port is a ':' before it.
  const i = withoutDigest.lastIndexOf(":");
  const repository =
    i >= 0 && !withoutDigest.slice(i + 1).includes("/") ? withoutDigest.slice(0, i) : withoutDigest;
  const r = repo.replace(/\/+$/, "");
  return repository === r || repository.startsWith(`${r}/`);
}

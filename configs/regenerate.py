#!/usr/bin/env python3.12
"""Regenerate configs/ (distribution list, base run configs, provider catalogs) from pinned PyPI wheels.

Decisions D1 and D2 (shared/design/decisions.md). Usage:

    python3.12 configs/regenerate.py            # rewrite the committed files in configs/
    python3.12 configs/regenerate.py --check    # regenerate into a temp dir, diff, exit 1 on drift
    python3.12 configs/regenerate.py --out DIR  # write somewhere else

What it does, per pinned llama-stack release (RELEASES below):
  1. `pip download --no-deps llama-stack==X` into $CACHE/wheels and checks the wheel's sha256.
  2. Copies each distribution's default run config byte-for-byte out of the wheel zip
     (llama_stack/distributions/<name>/config.yaml, or run.yaml / llama_stack/templates/... in
     older releases) to configs/<name>/config.yaml, and checks it against the wheel's RECORD hash.
  3. Creates (once, cached by requirement hash) a venv $CACHE/regen/venv-llama-stack-X with exactly
     that release installed and runs configs/extract_catalog.py in it, which IMPORTS the release's
     own provider registry (get_provider_registry()) and each provider's pydantic config class.
     Output: configs/catalogs/llama-stack-X.json (compact, embedded by the Rust engine) and
     configs/catalogs/llama-stack-X.schemas.json (full JSON schema per config class, not embedded).
  4. Writes configs/distributions.json.

Catalog derivation rules (implemented in extract_catalog.py):
  * apis: the keys of the release's provider registry (the providable APIs), Api enum values
    (config.yaml snake_case spelling), sorted.
  * fields: every YAML key the config class accepts: each field's alias / validation alias, plus
    the python field name when pydantic accepts it (no alias, or populate_by_name /
    validate_by_name set on the class). Sorted.
  * required: the accepted key (alias first) of each field pydantic marks as required. Sorted.
  * endpointField: the first of `base_url`, `url`, `endpoint` that the class accepts; else the
    first accepted key (alphabetically) ending in `_url`; else null.
  * apiKeyField: the alias of a field named `auth_credential` (e.g. `api_key`, or `api_token` for
    remote::vllm; a provider that re-declares auth_credential WITHOUT an alias, e.g. ollama's
    `exclude=True` override, takes no credential through it and falls through); else
    `api_key` if accepted; else `api_token` if accepted (our addition: 0.2.x remote::vllm has a
    plain `api_token` field and no auth_credential); else the first accepted key ending in
    `_api_key`; else null.
  * apiDependencies / optionalApiDependencies: spec.api_dependencies / optional_api_dependencies,
    Api enum values, sorted.
  * toolGroups: [spec.toolgroup_id] when the release's spec has that attribute set. In 0.7.3,
    llama_stack/core/stack.py:auto_register_tool_groups() registers exactly that id for every
    enabled tool_runtime provider (tavily/brave/bing -> builtin::websearch, wolfram-alpha ->
    builtin::wolfram_alpha, inline::file-search -> builtin::file_search). Releases whose specs have
    no toolgroup_id auto-register nothing (their configs list tool_groups explicitly): [].
  * deprecationError / deprecationWarning: the spec's fields, or null.
  * configVersion: LLAMA_STACK_RUN_CONFIG_VERSION of the release.
  * routingTables: {routing-table API: router API} from builtin_automatically_routed_apis()
    (e.g. models -> inference). apiDependencies may name these (read: the router API needs a
    provider) or internal APIs such as prompts/conversations (always present, no provider needed).

Python 3.12 + stdlib only; everything else goes into throwaway venvs under
$LLSD_CACHE_DIR (default $HOME/.cache/llama-stack-operator/).
"""

from __future__ import annotations

import argparse
import base64
import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("LLSD_CACHE_DIR", Path.home() / ".cache" / "llama-stack-operator"))

# Pinned releases. `wheel_sha256` is the sha256 of the llama-stack wheel file from PyPI;
# `requirements` is what goes into the extraction venv (companion packages pinned to the same
# release where the release depends on them unpinned, mcp 1.x because mcp 2.x renamed McpError, and
# pydantic pinned because the generated JSON schemas depend on its version).
RELEASES: dict[str, dict] = {
    "0.7.3": {
        "wheel_sha256": "c7b3e07a6f45a5db0a7d8779c5008b347db5b1b33fce71078e8904590bf71263",
        "requirements": ["llama-stack==0.7.3", "llama-stack-api==0.7.3", "mcp==1.30.0", "pydantic==2.14.4"],
    },
    "0.4.7": {
        "wheel_sha256": "b2da50e8de8cec1af9dd60766dccd339553ed7ad25e36ffb0bc573bda1e280ed",
        "requirements": ["llama-stack==0.4.7", "llama-stack-api==0.4.7", "mcp==1.30.0", "pydantic==2.14.4"],
    },
    "0.2.14": {
        "wheel_sha256": "a1323260aa64bbcaba8ee6913819d2cf724012cdb8502b54f57c9bc6d1e2cebf",
        "requirements": ["llama-stack==0.2.14", "llama-stack-client==0.2.14", "pydantic==2.14.4"],
    },
}

# D2. remote-vllm: last release shipping llama_stack/templates/remote-vllm/ is 0.2.14 (0.2.15 dropped
# it). meta-reference-gpu: last release shipping llama_stack/distributions/meta-reference-gpu/ is
# 0.4.7 (0.5.0 dropped it). Found by inspecting the wheels of the releases listed by
# `pip index versions llama-stack`. Descriptions are the template's own `description=` text
# (postgres-demo ships no template module in 0.7.3; its line is ours).
DISTRIBUTIONS: list[dict] = [
    {"name": "starter", "version": "0.7.3",
     "description": "Quick start template for running Llama Stack with several popular providers. "
                    "This distribution is intended for CPU-only environments."},
    {"name": "postgres-demo", "version": "0.7.3",
     "description": "vLLM inference with PostgreSQL-backed storage (demo of the postgres KV/SQL backends)"},
    {"name": "nvidia", "version": "0.7.3",
     "description": "Use NVIDIA NIM for running LLM inference, evaluation and safety"},
    {"name": "watsonx", "version": "0.7.3",
     "description": "Use watsonx for running LLM inference"},
    {"name": "oci", "version": "0.7.3",
     "description": "Use Oracle Cloud Infrastructure (OCI) Generative AI for running LLM inference "
                    "with scalable cloud services"},
    {"name": "open-benchmark", "version": "0.7.3",
     "description": "Distribution for running open benchmarks"},
    {"name": "remote-vllm", "version": "0.2.14",
     "description": "Use (an external) vLLM server for running LLM inference"},
    {"name": "meta-reference-gpu", "version": "0.4.7",
     "description": "Use Meta Reference for running LLM inference"},
]

IMAGE = "docker.io/llamastack/distribution-{name}:{version}"
RUN_CONFIG_CANDIDATES = (
    "llama_stack/distributions/{name}/config.yaml",
    "llama_stack/distributions/{name}/run.yaml",
    "llama_stack/templates/{name}/config.yaml",
    "llama_stack/templates/{name}/run.yaml",
)


def log(msg: str) -> None:
    print(f"[regenerate] {msg}", file=sys.stderr, flush=True)


def find_python312() -> str:
    if sys.version_info[:2] == (3, 12):
        return sys.executable
    home = Path.home()
    cands = [shutil.which("python3.12"), *sorted(Path("/root/.pyenv/versions").glob("3.12.*/bin/python3.12")),
             *sorted((home / ".pyenv/versions").glob("3.12.*/bin/python3.12"))]
    for cand in cands:
        # a pyenv shim may exist on PATH without a 3.12 selected: check that it really runs
        if cand and subprocess.run([str(cand), "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                                   capture_output=True).returncode == 0:
            return str(cand)
    sys.exit("ERROR: python3.12 not found (llama-stack needs Python >= 3.12)")


def sha256_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def fetch_wheel(version: str) -> Path:
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    whl = wheels / f"llama_stack-{version}-py3-none-any.whl"
    if not whl.exists():
        log(f"downloading llama-stack=={version} wheel")
        subprocess.run(
            [find_python312(), "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "-d", str(wheels), f"llama-stack=={version}"],
            check=True,
        )
    got = sha256_file(whl)
    want = RELEASES[version]["wheel_sha256"]
    if got != want:
        sys.exit(f"ERROR: {whl.name} sha256 {got} != pinned {want}")
    return whl


def record_hashes(zf: zipfile.ZipFile) -> dict[str, str]:
    rec = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
    out = {}
    for line in zf.read(rec).decode().splitlines():
        parts = line.rsplit(",", 2)
        if len(parts) == 3 and parts[1].startswith("sha256="):
            out[parts[0]] = parts[1][len("sha256="):]
    return out


def run_config_from_wheel(whl: Path, name: str) -> tuple[str, bytes]:
    with zipfile.ZipFile(whl) as zf:
        names = set(zf.namelist())
        for pat in RUN_CONFIG_CANDIDATES:
            path = pat.format(name=name)
            if path in names:
                data = zf.read(path)
                want = record_hashes(zf).get(path)
                got = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                if want != got:
                    sys.exit(f"ERROR: {whl.name}:{path} does not match the wheel RECORD")
                return path, data
    sys.exit(f"ERROR: {whl.name} has no run config for distribution {name}")


def ensure_venv(version: str) -> Path:
    reqs = RELEASES[version]["requirements"]
    stamp_val = hashlib.sha256(json.dumps(reqs).encode()).hexdigest()
    venv = CACHE / "regen" / f"venv-llama-stack-{version}"
    stamp = venv / ".llsd-stamp"
    py = venv / "bin" / "python"
    if stamp.exists() and stamp.read_text().strip() == stamp_val and py.exists():
        return py
    if venv.exists():
        shutil.rmtree(venv)
    log(f"creating venv {venv} and installing {' '.join(reqs)} (takes a few minutes)")
    subprocess.run([find_python312(), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *reqs], check=True)
    stamp.write_text(stamp_val + "\n")
    return py


def write_catalog(catalog: dict, path: Path) -> None:
    """Compact JSON, one provider per line (small for embedding, still readable in diffs)."""
    d = lambda o: json.dumps(o, separators=(",", ":"), ensure_ascii=False)  # noqa: E731
    lines = ["{" + f'"llamaStackVersion":{d(catalog["llamaStackVersion"])},'
             f'"configVersion":{d(catalog["configVersion"])},"apis":{d(catalog["apis"])},'
             f'"routingTables":{d(catalog["routingTables"])},',
             '"providers":{']
    apis = sorted(catalog["providers"])
    for i, api in enumerate(apis):
        lines.append(f"{d(api)}:{{")
        provs = sorted(catalog["providers"][api])
        for j, pt in enumerate(provs):
            comma = "," if j < len(provs) - 1 else ""
            lines.append(f"{d(pt)}:{d(catalog['providers'][api][pt])}{comma}")
        lines.append("}" + ("," if i < len(apis) - 1 else ""))
    lines.append("}}")
    path.write_text("\n".join(lines) + "\n")


def extract_catalog(version: str, out_dir: Path) -> None:
    py = ensure_venv(version)
    with tempfile.TemporaryDirectory() as td:
        cat_tmp, sch_tmp = Path(td) / "c.json", Path(td) / "s.json"
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
        env["LLAMA_STACK_LOGGING"] = "all=error"
        log(f"extracting provider catalog of llama-stack {version}")
        r = subprocess.run([str(py), str(HERE / "extract_catalog.py"), str(cat_tmp), str(sch_tmp)],
                           env=env, cwd=td)
        if r.returncode != 0:
            sys.exit(f"ERROR: catalog extraction for {version} failed")
        catalog = json.loads(cat_tmp.read_text())
        if catalog["llamaStackVersion"] != version:
            sys.exit(f"ERROR: venv has llama-stack {catalog['llamaStackVersion']}, wanted {version}")
        schemas = json.loads(sch_tmp.read_text())
    (out_dir / "catalogs").mkdir(parents=True, exist_ok=True)
    write_catalog(catalog, out_dir / "catalogs" / f"llama-stack-{version}.json")
    (out_dir / "catalogs" / f"llama-stack-{version}.schemas.json").write_text(
        json.dumps(schemas, indent=1, sort_keys=True) + "\n")


def generate(out_dir: Path) -> list[Path]:
    """Write every generated file under out_dir; return their paths relative to out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    versions = sorted({d["version"] for d in DISTRIBUTIONS}, key=lambda v: tuple(int(x) for x in v.split(".")))
    wheels = {v: fetch_wheel(v) for v in versions}
    entries = []
    for dist in sorted(DISTRIBUTIONS, key=lambda d: d["name"]):
        name, version = dist["name"], dist["version"]
        src, data = run_config_from_wheel(wheels[version], name)
        log(f"{name}: {wheels[version].name}:{src}")
        (out_dir / name).mkdir(exist_ok=True)
        (out_dir / name / "config.yaml").write_bytes(data)
        written.append(Path(name) / "config.yaml")
        entries.append({
            "name": name,
            "image": IMAGE.format(name=name, version=version),
            "llamaStackVersion": version,
            "catalog": f"llama-stack-{version}",
            "description": dist["description"],
        })
    (out_dir / "distributions.json").write_text(json.dumps({"distributions": entries}, indent=2) + "\n")
    written.append(Path("distributions.json"))
    for v in versions:
        extract_catalog(v, out_dir)
        written += [Path("catalogs") / f"llama-stack-{v}.json", Path("catalogs") / f"llama-stack-{v}.schemas.json"]
    return written


def check() -> int:
    with tempfile.TemporaryDirectory() as td:
        files = generate(Path(td))
        drift = 0
        for rel in files:
            new, old = Path(td) / rel, HERE / rel
            if not old.exists():
                print(f"DRIFT: {rel} missing in configs/")
                drift += 1
            elif new.read_bytes() != old.read_bytes():
                drift += 1
                print(f"DRIFT: {rel} differs")
                diff = difflib.unified_diff(old.read_text().splitlines(), new.read_text().splitlines(),
                                            f"committed/{rel}", f"regenerated/{rel}", lineterm="", n=1)
                for i, line in enumerate(diff):
                    if i >= 40:
                        print("  ... (diff truncated)")
                        break
                    print("  " + line[:200])
    if drift:
        print(f"{drift} file(s) drifted; run: python3.12 configs/regenerate.py")
        return 1
    print(f"OK: {len(files)} generated files match")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and diff; exit 1 on drift")
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: configs/)")
    args = ap.parse_args()
    if args.check:
        return check()
    for rel in generate(args.out):
        print(args.out / rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())

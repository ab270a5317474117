"""Every sample in deploy/samples goes through the operator CLI (`generate -o json`) and the
generated config.yaml is validated by the real llama-stack 0.7.3 code (issue 2: the CLI's output
for a vllm + apiKey + two models + postgres + disabled-API CR is accepted; issue 9: every sample).

A sample is a multi-document file that `kubectl apply -f` takes on its own: the
LlamaStackDistribution plus the Secrets, ConfigMaps and ServiceAccounts it names. The CLI reads
one document, so the LlamaStackDistribution is picked out here; v1alpha1 samples are converted
with `convert --to v1alpha2` first, as the API server does through the operator's webhook.
What the cluster supplies at reconcile time comes from the same file or a fixture:
  * overrideConfig: the named ConfigMap's config.yaml, passed as `--base-config`;
  * externalProviders: tests/python/fixtures/sample-<name>/provider-metadata.yaml (what the
    operator reads from each provider image), passed as `--provider-metadata`, with a stand-in
    package on sys.path for each provider's module, as the install init container provides;
  * the pod's env: the generated env refs (dummy secrets) and workload.overrides.env.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from test_golden_validate import install_external_providers
from validate_config import validate

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = ROOT / "deploy" / "samples"
SAMPLES = sorted(SAMPLES_DIR.glob("*.yaml"))
V1ALPHA2_SAMPLES = [s for s in SAMPLES if s.name.startswith("v1alpha2-")]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DUMMY_SECRET = "dummy-secret"
KIND = "LlamaStackDistribution"


def operator_bin() -> str:
    path = os.environ.get("LLSD_OPERATOR_BIN")
    if not path:
        pytest.fail("LLSD_OPERATOR_BIN is not set: run through `make test` (or tests/python/run-tests.sh)")
    return path


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([operator_bin(), *args], capture_output=True, text=True, timeout=60)


@dataclass
class Sample:
    path: Path
    docs: list[dict]
    cr: dict                      # the LlamaStackDistribution as v1alpha2
    cr_file: Path                 # ... written alone, for the CLI
    args: list[str] = field(default_factory=list)   # --base-config / --provider-metadata
    metadata_dir: Path | None = None

    def doc(self, kind: str, name: str) -> dict | None:
        return next((d for d in self.docs if d.get("kind") == kind and d["metadata"]["name"] == name), None)


def load(sample: Path, tmp_path: Path) -> Sample:
    docs = [d for d in yaml.safe_load_all(sample.read_text()) if d]
    crs = [d for d in docs if d.get("kind") == KIND]
    assert len(crs) == 1, f"{sample.name}: expected one {KIND} document, found {len(crs)}"
    cr = crs[0]
    cr_file = tmp_path / "cr.yaml"
    cr_file.write_text(yaml.safe_dump(cr, sort_keys=False))
    if cr["apiVersion"] == "llamastack.io/v1alpha1":
        res = run(["convert", "--to", "v1alpha2", "-o", "json", "-f", str(cr_file)])
        assert res.returncode == 0, f"convert failed for {sample.name}:\n{res.stderr}"
        cr = json.loads(res.stdout)
        cr_file.write_text(yaml.safe_dump(cr, sort_keys=False))
    assert cr["apiVersion"] == "llamastack.io/v1alpha2", cr["apiVersion"]
    s = Sample(sample, docs, cr, cr_file)
    spec = cr["spec"]
    if "overrideConfig" in spec:
        name = spec["overrideConfig"]["configMapName"]
        cm = s.doc("ConfigMap", name)
        assert cm is not None, f"{sample.name}: overrideConfig names ConfigMap {name}, which the file lacks"
        base = tmp_path / "base-config.yaml"
        base.write_text(cm["data"]["config.yaml"])
        s.args += ["--base-config", str(base)]
    if "externalProviders" in spec:
        s.metadata_dir = FIXTURES / f"sample-{sample.stem.split('-', 1)[1]}"
        meta = s.metadata_dir / "provider-metadata.yaml"
        assert meta.is_file(), f"{sample.name} has externalProviders: {meta} must say what their images carry"
        listed = {(m["providerId"], m["image"]) for m in yaml.safe_load(meta.read_text())}
        wanted = {(p["providerId"], p["image"]) for ps in spec["externalProviders"].values() for p in ps}
        assert listed == wanted, f"{meta} describes {sorted(listed)}, the sample uses {sorted(wanted)}"
        s.args += ["--provider-metadata", str(meta)]
    return s


def generate(s: Sample) -> dict:
    res = run(["generate", "-o", "json", "-f", str(s.cr_file), *s.args])
    assert res.returncode == 0, f"generate failed for {s.path.name}:\n{res.stderr}"
    return json.loads(res.stdout)


def pod_env(s: Sample, out: dict) -> dict[str, str]:
    """What the server container's environment holds for the config's ${env.*} references."""
    env = {e["name"]: DUMMY_SECRET for e in out["env"]}
    for e in s.cr["spec"].get("workload", {}).get("overrides", {}).get("env", []):
        env[e["name"]] = e.get("value", DUMMY_SECRET)
    return env


def test_samples_exist():
    assert V1ALPHA2_SAMPLES, "deploy/samples has no v1alpha2 sample"
    assert any(s.name.startswith("v1alpha1-") for s in SAMPLES), "deploy/samples has no v1alpha1 sample"


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.stem for s in SAMPLES])
def test_sample_generates_a_valid_config(sample: Path, tmp_path: Path):
    s = load(sample, tmp_path)
    if s.metadata_dir is not None:
        install_external_providers(s.metadata_dir, tmp_path / "site-packages")
    out = generate(s)
    for key in ("configYaml", "env", "contentHash", "providerCount", "resourceCount", "configVersion", "warnings"):
        assert key in out, f"generate -o json lacks {key}"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(out["configYaml"])
    errors, warnings = validate(cfg, pod_env(s, out))
    assert not errors, f"llama-stack 0.7.3 rejects the config generated from {sample.name}:\n" + "\n".join(errors)
    # NFR-003: secrets travel as env references only.
    doc = yaml.safe_load(out["configYaml"])
    for e in out["env"]:
        assert f"${{env.{e['name']}}}" in out["configYaml"], f"{e['name']} is not referenced by the config"
    assert doc["version"] == out["configVersion"]


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.stem for s in SAMPLES])
def test_sample_applies_on_its_own(sample: Path, tmp_path: Path):
    """Every Secret key and ConfigMap the CR names is a document of the same file, with the key."""
    s = load(sample, tmp_path)
    spec = s.cr["spec"]
    wanted: list[tuple[str, str, str | None]] = []   # (kind, name, key)

    def refs(v, path=""):
        if isinstance(v, dict):
            if "secretKeyRef" in v:
                wanted.append(("Secret", v["secretKeyRef"]["name"], v["secretKeyRef"]["key"]))
            for k, x in v.items():
                refs(x, f"{path}.{k}")
        elif isinstance(v, list):
            for x in v:
                refs(x, path)

    refs(spec)
    if "secretRef" in spec.get("storage", {}).get("sql", {}):
        wanted.append(("Secret", spec["storage"]["sql"]["secretRef"]["name"], None))
    if "overrideConfig" in spec:
        wanted.append(("ConfigMap", spec["overrideConfig"]["configMapName"], "config.yaml"))
    bundle = spec.get("networking", {}).get("tls", {}).get("caBundle")
    if bundle:
        for key in bundle.get("configMapKeys", ["ca-bundle.crt"]):
            wanted.append(("ConfigMap", bundle["configMapName"], key))
    sa = spec.get("workload", {}).get("overrides", {}).get("serviceAccountName")
    if sa:
        wanted.append(("ServiceAccount", sa, None))
    for kind, name, key in wanted:
        d = s.doc(kind, name)
        assert d is not None, f"{sample.name}: the {KIND} needs {kind} {name}, which the file lacks"
        if key is not None:
            data = {**d.get("data", {}), **d.get("stringData", {})}
            assert key in data, f"{sample.name}: {kind} {name} lacks key {key}"
    for d in s.docs:
        assert "namespace" not in d["metadata"], f"{sample.name}: {d['kind']} {d['metadata']['name']} pins a namespace"


def test_sample_object_names_are_distinct():
    """Every sample can be applied into one namespace next to the others."""
    seen: dict[tuple[str, str], str] = {}
    for sample in SAMPLES:
        for d in yaml.safe_load_all(sample.read_text()):
            if not d:
                continue
            kind = "LlamaStackDistribution" if d["kind"] == KIND else d["kind"]
            key = (kind, d["metadata"]["name"])
            assert key not in seen, f"{kind} {key[1]} is in both {seen[key]} and {sample.name}"
            seen[key] = sample.name


def sample_out(name: str, tmp_path: Path) -> tuple[Sample, dict, dict]:
    s = load(SAMPLES_DIR / name, tmp_path)
    out = generate(s)
    return s, out, yaml.safe_load(out["configYaml"])


def test_postgres_sample_shape(tmp_path: Path):
    """The issue's acceptance CR: vllm + apiKey, two models, postgres SQL storage, a disabled API."""
    _, out, doc = sample_out("v1alpha2-postgres.yaml", tmp_path)
    names = {e["name"] for e in out["env"]}
    assert "LLSD_VLLM_API_KEY" in names
    assert {f"LLSD_STORAGE_SQL_{f}" for f in ("HOST", "PORT", "DB", "USER", "PASSWORD")} <= names
    assert all(e["secretName"] == "team-chat-storage-sql" for e in out["env"] if e["name"].startswith("LLSD_STORAGE_SQL_"))
    assert doc["storage"]["backends"]["sql_default"]["type"] == "sql_postgres"
    assert "eval" not in doc["apis"] and "eval" not in doc["providers"]
    models = {m["model_id"]: m for m in doc["registered_resources"]["models"]}
    assert set(models) == {"meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"}
    assert {m["provider_id"] for m in models.values()} == {"vllm"}
    assert doc["providers"]["inference"] == [{
        "provider_id": "vllm", "provider_type": "remote::vllm",
        "config": {"base_url": "http://vllm.models.svc:8000/v1", "max_tokens": "${env.VLLM_MAX_TOKENS:=4096}",
                   "network": {"tls": {"verify": "${env.VLLM_TLS_VERIFY:=true}"}},
                   "api_token": "${env.LLSD_VLLM_API_KEY}"}}]


def test_multi_provider_sample_routes_models(tmp_path: Path):
    _, out, doc = sample_out("v1alpha2-multi-provider.yaml", tmp_path)
    types = {p["provider_id"]: p["provider_type"] for p in doc["providers"]["inference"]}
    assert types == {"vllm-local": "remote::vllm", "openai": "remote::openai"}
    routes = {m["model_id"]: m["provider_id"] for m in doc["registered_resources"]["models"]}
    assert routes == {"meta-llama/Llama-3.1-8B-Instruct": "vllm-local",
                      "meta-llama/Llama-3.3-70B-Instruct": "vllm-local", "gpt-4o-mini": "openai"}
    assert {e["name"]: e["secretName"] for e in out["env"]} == {
        "LLSD_VLLM_LOCAL_API_KEY": "multi-vllm-auth", "LLSD_OPENAI_API_KEY": "multi-openai-auth"}


def test_override_sample_runs_the_configmap(tmp_path: Path):
    s, out, doc = sample_out("v1alpha2-override.yaml", tmp_path)
    assert out["distribution"]["configSource"] == "override-config"
    base = yaml.safe_load(s.doc("ConfigMap", "override-llama-config")["data"]["config.yaml"])
    assert doc["server"]["port"] == 8080, "networking.port applies to the override too"
    assert {k: v for k, v in doc.items() if k != "server"} == {k: v for k, v in base.items() if k != "server"}
    assert out["env"] == [], "overrideConfig has no generated secret env: the sample maps its own"


def test_external_provider_sample_merges_the_provider(tmp_path: Path):
    _, _, doc = sample_out("v1alpha2-external-provider.yaml", tmp_path)
    entry = next(p for p in doc["providers"]["inference"] if p["provider_id"] == "acme-infer")
    assert entry["provider_type"] == "remote::acme-infer" and entry["module"] == "acme_infer", entry
    assert entry["config"]["api_key"] == "${env.ACME_API_KEY}", entry


def test_external_provider_sample_needs_its_metadata(tmp_path: Path):
    """Without what the image carries the CLI refuses, naming the field and the image (the
    operator reads it from the registry; tests/support/tests/samples.rs checks that path)."""
    s = load(SAMPLES_DIR / "v1alpha2-external-provider.yaml", tmp_path)
    res = run(["generate", "-f", str(s.cr_file)])
    assert res.returncode == 1
    assert "spec.externalProviders.inference[0]" in res.stderr
    assert "quay.io/acme/acme-infer-provider:1.2.0" in res.stderr


def test_full_sample_shape(tmp_path: Path):
    _, out, doc = sample_out("v1alpha2-full.yaml", tmp_path)
    p = doc["providers"]
    assert {x["provider_id"] for x in p["inference"]} == {"vllm-main", "sentence-transformers"}
    assert [x["provider_type"] for x in p["vector_io"]] == ["remote::pgvector"]
    assert [x["provider_type"] for x in p["tool_runtime"]] == ["remote::tavily-search"]
    assert [x["provider_type"] for x in p["safety"]] == ["inline::llama-guard"]
    assert "eval" not in doc["apis"]
    assert doc["storage"]["backends"]["kv_default"]["type"] == "kv_redis"
    assert doc["storage"]["backends"]["sql_default"]["type"] == "sql_postgres"
    assert doc["server"]["workers"] == 2
    assert doc["safety"]["default_shield_id"] == "meta-llama/Llama-Guard-3-8B"
    env = {e["name"]: (e["secretName"], e["secretKey"]) for e in out["env"]}
    assert env["LLSD_VLLM_MAIN_API_KEY"] == ("full-vllm-auth", "token")
    assert env["LLSD_PGVECTOR_PASSWORD"] == ("full-pgvector", "password")
    assert env["LLSD_STORAGE_SQL_DB"] == ("full-db-app", "dbname")
    assert env["LLSD_TAVILY_SEARCH_API_KEY"] == ("full-tavily", "api-key")

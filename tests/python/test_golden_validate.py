"""Validate generated configs with the real llama-stack 0.7.3 code (D1: the config must start the server).

Cases are directories holding `config.yaml` AND `cr.yaml`:
  * tests/golden/<case>/          -- the operator's golden corpus (test_golden_case)
  * tests/python/fixtures/<case>/ -- our own development cases (test_fixture_case)

For each case, cr.yaml's spec.distribution.name is looked up in configs/distributions.json; only
distributions whose llamaStackVersion is 0.7.3 are eligible (older releases' configs cannot be
checked with 0.7.3 code). The environment is: every `env[].name` of generated.json set to a dummy
non-numeric secret, plus validate-env.json if present. A case with an `expect-invalid` file must be
rejected; every other case must validate without errors. Zero eligible golden cases is a failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from validate_config import validate

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GOLDEN = REPO / "tests" / "golden"
FIXTURES = HERE / "fixtures"
DISTRIBUTIONS = REPO / "configs" / "distributions.json"
VERSION = "0.7.3"
DUMMY_SECRET = "dummy-secret"


def _distributions() -> dict[str, dict]:
    return {d["name"]: d for d in json.loads(DISTRIBUTIONS.read_text())["distributions"]}


def _distribution_name(cr_path: Path) -> str | None:
    for doc in yaml.safe_load_all(cr_path.read_text()):
        if isinstance(doc, dict) and doc.get("kind", "LlamaStackDistribution") == "LlamaStackDistribution":
            dist = ((doc.get("spec") or {}).get("distribution")) or {}
            # D4 short form: `distribution: starter`.
            return dist if isinstance(dist, str) else dist.get("name")
    return None


def collect(root: Path) -> tuple[list, list[str]]:
    """(eligible cases as pytest params, notes about cases left out)."""
    cases, notes = [], []
    if not root.is_dir():
        return cases, [f"{root} does not exist"]
    dists = _distributions()
    for case in sorted(p for p in root.iterdir() if p.is_dir()):
        if not ((case / "config.yaml").is_file() and (case / "cr.yaml").is_file()):
            continue
        name = _distribution_name(case / "cr.yaml")
        if name is None:
            notes.append(f"{case.name}: cr.yaml has no spec.distribution.name")
            continue
        if name in dists and dists[name]["llamaStackVersion"] != VERSION:
            notes.append(f"{case.name}: distribution {name} is llama-stack {dists[name]['llamaStackVersion']}")
            continue
        # an unknown name stays eligible and fails in the test with a clear message
        cases.append(pytest.param(case, name, id=case.name))
    return cases, notes


def case_env(case: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    gen = case / "generated.json"
    if gen.is_file():
        for item in json.loads(gen.read_text()).get("env", []):
            env[item["name"]] = DUMMY_SECRET
    extra = case / "validate-env.json"
    if extra.is_file():
        env.update({k: str(v) for k, v in json.loads(extra.read_text()).items()})
    return env


PROVIDER_TEMPLATE = """\
# Stand-in for an external provider package, as the install init container would put it on
# PYTHONPATH (D16): the server imports <module>.provider and calls get_provider_spec().
from pydantic import BaseModel, ConfigDict
from llama_stack_api import Api, {cls}


class Config(BaseModel):
    model_config = ConfigDict(extra="allow")


def get_provider_spec():
    return {cls}(api=Api("{api}"), provider_type="{ptype}", {extra}module="{module}",
                 config_class="{module}.provider.Config", pip_packages=[])
"""


def install_external_providers(case: Path, site: Path) -> None:
    """Writes one importable package per provider-metadata.yaml entry into `site`."""
    meta = case / "provider-metadata.yaml"
    if not meta.is_file():
        return
    for m in yaml.safe_load(meta.read_text()) or []:
        kind, _, name = m["providerType"].partition("::")
        cls, extra = ("RemoteProviderSpec", f'adapter_type="{name}", ') if kind == "remote" else ("InlineProviderSpec", "")
        pkg = site / m["packageName"].split("==")[0]
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "provider.py").write_text(PROVIDER_TEMPLATE.format(
            cls=cls, api=m["api"], ptype=m["providerType"], extra=extra, module=m["packageName"]))
    sys.path.insert(0, str(site))


def check_case(case: Path, dist_name: str, site: Path | None = None) -> None:
    if site is not None:
        install_external_providers(case, site)
    dists = _distributions()
    assert dist_name in dists, (
        f"{case.name}: cr.yaml names distribution '{dist_name}', which configs/distributions.json "
        f"does not list (known: {', '.join(sorted(dists))})")
    errors, warnings = validate(case / "config.yaml", case_env(case))
    report = "\n".join([f"  ERROR: {e}" for e in errors] + [f"  WARN: {w}" for w in warnings])
    if (case / "expect-invalid").exists():
        assert errors, f"{case.name}: expected llama-stack {VERSION} to reject config.yaml, but it is valid\n{report}"
    else:
        assert not errors, f"{case.name}: llama-stack {VERSION} rejects config.yaml:\n{report}"


GOLDEN_CASES, GOLDEN_NOTES = collect(GOLDEN)
FIXTURE_CASES, FIXTURE_NOTES = collect(FIXTURES)


@pytest.mark.parametrize(
    "case,dist_name",
    GOLDEN_CASES or [pytest.param(None, None, id="no-eligible-golden-case")],
)
def test_golden_case(case, dist_name, tmp_path):
    if case is None:
        pytest.fail(
            f"no eligible golden case under {GOLDEN} (a directory with config.yaml and cr.yaml whose "
            f"distribution is llama-stack {VERSION}); left out: {GOLDEN_NOTES or 'nothing'}")
    check_case(case, dist_name, tmp_path / "site-packages")


@pytest.mark.parametrize("case,dist_name", FIXTURE_CASES)
def test_fixture_case(case, dist_name):
    check_case(case, dist_name)


def test_fixture_cases_present():
    names = {p.id for p in FIXTURE_CASES}
    assert {"starter-shipped", "vllm-url-instead-of-base-url"} <= names, FIXTURE_NOTES


def test_url_instead_of_base_url_reason():
    """The vllm `url:` case must be rejected for the right reason (empty base_url), not by accident."""
    case = FIXTURES / "vllm-url-instead-of-base-url"
    errors, warnings = validate(case / "config.yaml", case_env(case))
    assert any("base_url is empty" in e for e in errors), errors
    assert any(".config.url" in w for w in warnings), warnings


def test_env_is_exact():
    """validate() sees exactly the env it is given: an unset ${env.X} fails even if the process has X."""
    import os

    case = FIXTURES / "vllm-minimal"
    os.environ["LLSD_VLLM_API_KEY"] = "from-the-process"
    try:
        errors, _ = validate(case / "config.yaml", {})
    finally:
        del os.environ["LLSD_VLLM_API_KEY"]
    assert any("LLSD_VLLM_API_KEY" in e for e in errors), errors
    assert os.environ.get("LLSD_VLLM_API_KEY") is None

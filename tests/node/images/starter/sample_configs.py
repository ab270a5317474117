#!/usr/bin/env python3
"""Writes the config.yaml that the operator generates for each file of deploy/samples, as
tests/python/test_samples.py does (run with the tests/python venv's python: it needs PyYAML):

    sample_configs.py OPERATOR_BIN OUT_DIR

The LlamaStackDistribution document is picked out of each multi-document sample; v1alpha1 is
converted with `convert --to v1alpha2`; an overrideConfig's ConfigMap becomes --base-config;
externalProviders take tests/python/fixtures/sample-<name>/provider-metadata.yaml. Prints the
written paths, one a line.
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[4]
SAMPLES = ROOT / "deploy" / "samples"
FIXTURES = ROOT / "tests" / "python" / "fixtures"
KIND = "LlamaStackDistribution"


def run(op, args):
    res = subprocess.run([op, *args], capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        sys.exit(f"sample_configs: {' '.join(args)} failed:\n{res.stderr}")
    return res.stdout


def main():
    op, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for sample in sorted(SAMPLES.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(sample.read_text()) if d]
        (cr,) = [d for d in docs if d.get("kind") == KIND]
        cr_file = out / f"{sample.stem}.cr.yaml"
        cr_file.write_text(yaml.safe_dump(cr, sort_keys=False))
        if cr["apiVersion"] == "llamastack.io/v1alpha1":
            cr = json.loads(run(op, ["convert", "--to", "v1alpha2", "-o", "json", "-f", str(cr_file)]))
            cr_file.write_text(yaml.safe_dump(cr, sort_keys=False))
        args = []
        spec = cr["spec"]
        if "overrideConfig" in spec:
            name = spec["overrideConfig"]["configMapName"]
            (cm,) = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == name]
            base = out / f"{sample.stem}.base-config.yaml"
            base.write_text(cm["data"]["config.yaml"])
            args += ["--base-config", str(base)]
        if "externalProviders" in spec:
            meta = FIXTURES / f"sample-{sample.stem.split('-', 1)[1]}" / "provider-metadata.yaml"
            args += ["--provider-metadata", str(meta)]
        generated = json.loads(run(op, ["generate", "-o", "json", "-f", str(cr_file), *args]))
        cfg = out / f"{sample.stem}.config.yaml"
        cfg.write_text(generated["configYaml"])
        print(cfg)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Validate llama-stack run configs with the real llama-stack 0.7.3 code, many files per process.

Library use (importing llama-stack costs ~5 s, so do it once and call validate() per file):

    from validate_config import validate
    errors, warnings = validate("config.yaml", {"VLLM_URL": "http://127.0.0.1:8000/v1"})

CLI use:

    python validate_config.py CONFIG.yaml [CONFIG2.yaml ...] [--env KEY=VALUE ...]

Exit 0 when every file is valid, 1 otherwise. Each file is checked with os.environ set to exactly
the given env (plus PATH and HOME), restored afterwards.

The checks follow what the server does at startup (`llama stack run` -> create_app() -> resolver):
  1. yaml.safe_load, then llama_stack.core.stack.replace_env_vars() (the server's ${env.X},
     ${env.X:=d}, ${env.X:+v} substitution, dropping entries whose id resolves empty) and
     StackConfig(**cast_distro_name_to_string(...)) -- the top-level pydantic model.
  2. Every `apis` entry and every `providers` key is an Api of this release.
  3. Every enabled provider's provider_type exists in get_provider_registry() for its API, is not
     deprecated-with-error, and its config validates against the provider's own config class.
  4. API dependencies (spec.api_dependencies) have an enabled provider.
  5. Registered models/shields reference an enabled provider; embedding models have
     metadata.embedding_dimension; remote::vllm has a non-empty base_url.
Warnings: keys pydantic silently drops (models use extra="ignore"), deprecations, resources
without provider_id (skipped at startup), version other than 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings as _warnings
from typing import Iterator

import yaml

_KEEP_ENV = ("PATH", "HOME")
_LOADED = False


def _load() -> None:
    """Import llama-stack once (slow) with its logging quiet."""
    global _LOADED
    if _LOADED:
        return
    os.environ.setdefault("LLAMA_STACK_LOGGING", "all=error")
    from llama_stack.log import setup_logging

    setup_logging()
    _LOADED = True


@contextlib.contextmanager
def _exact_env(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update({k: saved[k] for k in _KEEP_ENV if k in saved})
        os.environ["LLAMA_STACK_LOGGING"] = "all=error"
        os.environ.update({k: str(v) for k, v in env.items()})
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _ignored_keys(model_cls, data, path: str) -> list[str]:
    """Keys of `data` that `model_cls` (a pydantic model, extra='ignore') would silently drop."""
    from pydantic import BaseModel

    if not isinstance(data, dict) or not (isinstance(model_cls, type) and issubclass(model_cls, BaseModel)):
        return []
    fields = model_cls.model_fields
    accepted = set(fields)
    for f in fields.values():
        if f.alias:
            accepted.add(f.alias)
        if isinstance(f.validation_alias, str):
            accepted.add(f.validation_alias)
        elif f.validation_alias is not None:
            accepted.update(c for c in getattr(f.validation_alias, "choices", []) if isinstance(c, str))
    return [f"{path}.{k}" if path else str(k) for k in data if k not in accepted]


def _enabled(p) -> bool:
    return bool(p.provider_id) and p.provider_id != "__disabled__"


def _check(raw: dict, errors: list[str], warns: list[str]) -> None:
    from llama_stack.core.datatypes import RegisteredResources, ServerConfig, StackConfig
    from llama_stack.core.distribution import builtin_automatically_routed_apis, get_provider_registry
    from llama_stack.core.stack import cast_distro_name_to_string, replace_env_vars
    from llama_stack.core.utils.dynamic import instantiate_class_type
    from llama_stack_api import Api

    # 1. the server's own parse path
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            resolved = replace_env_vars(raw)
            cfg = StackConfig(**cast_distro_name_to_string(resolved))
        except Exception as e:  # EnvVarError, pydantic.ValidationError, ValueError
            errors.append(f"{type(e).__name__}: {e}")
            return
    for w in caught:
        if issubclass(w.category, DeprecationWarning) and str(w.message) != "deprecated":
            warns.append(f"deprecation: {w.message}")

    ignored = _ignored_keys(StackConfig, resolved, "")
    ignored += _ignored_keys(RegisteredResources, resolved.get("registered_resources"), "registered_resources")
    ignored += _ignored_keys(ServerConfig, resolved.get("server"), "server")
    warns += [f"unknown key ignored by the server: {k}" for k in ignored]
    if cfg.version != 2:
        warns.append(f"version is {cfg.version}; llama-stack 0.7.3 writes 2 (the value is not checked)")

    # 2. API names
    valid_apis = {a.value for a in Api}
    for a in cfg.apis:
        if a not in valid_apis:
            errors.append(f"apis: '{a}' is not an API of llama-stack 0.7.3")

    # 3. providers against the registry and their config classes
    registry = get_provider_registry(cfg)
    enabled: dict[str, set[str]] = {}
    specs: list[tuple[str, object, object]] = []
    for api_str, providers in cfg.providers.items():
        try:
            api = Api(api_str)
        except ValueError:
            errors.append(f"providers.{api_str}: not an API of llama-stack 0.7.3")
            continue
        if api not in registry:
            errors.append(f"providers.{api_str}: automatically provided and cannot be overridden")
            continue
        seen: set[str] = set()
        for i, p in enumerate(providers):
            where = f"providers.{api_str}[{i}] ({p.provider_type})"
            if not _enabled(p):
                continue
            if p.provider_id in seen:
                errors.append(f"{where}: duplicate provider_id '{p.provider_id}' (the later entry wins silently)")
            seen.add(p.provider_id)
            enabled.setdefault(api_str, set()).add(p.provider_id)
            spec = registry[api].get(p.provider_type)
            if spec is None:
                errors.append(f"{where}: provider_type not available for API '{api_str}' "
                              f"(available: {', '.join(sorted(registry[api]))})")
                continue
            specs.append((api_str, p, spec))
            if spec.deprecation_error:
                errors.append(f"{where}: {spec.deprecation_error}")
            try:
                cls = instantiate_class_type(spec.config_class)
                pcfg = dict(p.config or {})
                if "vector_stores_config" in cls.model_fields and cfg.vector_stores is not None:
                    pcfg["vector_stores_config"] = cfg.vector_stores
                with _warnings.catch_warnings():
                    _warnings.simplefilter("ignore")
                    pobj = cls(**pcfg)
            except Exception as e:
                errors.append(f"{where}: config invalid: {e}")
                continue
            # remote::vllm parses without base_url, but its initialize() refuses to start
            if p.provider_type == "remote::vllm" and not getattr(pobj, "base_url", None):
                errors.append(f"{where}: base_url is empty; the server refuses to start")
            warns += [f"unknown provider config key ignored: {k}"
                      for k in _ignored_keys(cls, p.config, where + ".config")]

    # 4. API dependencies (the resolver raises "required dependency ... is not available")
    table_to_router = {x.routing_table_api.value: x.router_api.value for x in builtin_automatically_routed_apis()}
    providable = {a.value for a in registry}
    for api_str, p, spec in specs:
        needs = {table_to_router.get(d.value, d.value) for d in (spec.api_dependencies or [])}
        for need in sorted(needs):
            if need in providable and not enabled.get(need):
                errors.append(f"providers.{api_str} '{p.provider_id}' ({p.provider_type}) needs an enabled '{need}' provider")

    # 5. registered resources
    rr = cfg.registered_resources
    for kind, api_str in (("models", "inference"), ("shields", "safety")):
        ids = enabled.get(api_str, set())
        for m in getattr(rr, kind):
            if not m.provider_id:
                warns.append(f"registered_resources.{kind}: entry without provider_id is skipped at startup")
            elif m.provider_id not in ids:
                errors.append(f"registered_resources.{kind}: provider_id '{m.provider_id}' is not an enabled {api_str} provider")
    for m in rr.models:
        if m.model_type and m.model_type.value == "embedding" and "embedding_dimension" not in (m.metadata or {}):
            errors.append(f"registered_resources.models: embedding model '{m.model_id}' needs metadata.embedding_dimension")


def validate(config_path: str | os.PathLike, env: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Validate one run config with os.environ set to exactly `env` (+PATH/HOME). Returns (errors, warnings)."""
    _load()
    errors: list[str] = []
    warns: list[str] = []
    try:
        with open(config_path) as f:
            raw = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        return [f"cannot read YAML: {e}"], []
    if not isinstance(raw, dict):
        return ["top level is not a mapping"], []
    with _exact_env(env or {}):
        _check(raw, errors, warns)
    return errors, warns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Validate llama-stack 0.7.3 run configs with the real code.")
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for ${env.KEY} substitution")
    args = ap.parse_args(argv)
    env = dict(kv.partition("=")[::2] for kv in args.env)
    bad = 0
    for path in args.configs:
        errors, warns = validate(path, env)
        for w in warns:
            print(f"{path}: WARN: {w}")
        for e in errors:
            print(f"{path}: ERROR: {e}")
        print(f"{path}: {'INVALID' if errors else 'VALID'}")
        bad += bool(errors)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

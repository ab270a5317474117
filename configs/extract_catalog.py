"""Provider catalog extractor. Runs INSIDE a venv that has exactly one llama-stack release installed.

Invoked by configs/regenerate.py as:  <venv>/bin/python extract_catalog.py OUT_CATALOG.json OUT_SCHEMAS.json
It imports that release's own provider registry and config classes; nothing here is hard-coded per
provider except where a comment says so. The derivation rules are documented in regenerate.py.

Works across the layouts of the releases we pin:
  * 0.2.x : llama_stack.distribution.distribution.get_provider_registry(), Api in llama_stack.providers.datatypes
  * 0.3+  : llama_stack.core.distribution.get_provider_registry()
  * 0.4+  : Api / specs in the companion package llama_stack_api
"""

import importlib
import json
import os
import sys
import warnings

os.environ.setdefault("LLAMA_STACK_LOGGING", "all=error")
warnings.simplefilter("ignore")

ENDPOINT_CANDIDATES = ("base_url", "url", "endpoint")


def _import_first(candidates):
    last = None
    for mod, attr in candidates:
        try:
            return getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:  # try the next layout
            last = e
    raise RuntimeError(f"none of {candidates} importable: {last}")


def _version():
    from importlib.metadata import version

    return version("llama-stack")


get_provider_registry = _import_first(
    [
        ("llama_stack.core.distribution", "get_provider_registry"),
        ("llama_stack.distribution.distribution", "get_provider_registry"),
    ]
)
instantiate_class_type = _import_first(
    [
        ("llama_stack.core.utils.dynamic", "instantiate_class_type"),
        ("llama_stack.distribution.utils.dynamic", "instantiate_class_type"),
    ]
)
RUN_CONFIG_VERSION = _import_first(
    [
        ("llama_stack.core.datatypes", "LLAMA_STACK_RUN_CONFIG_VERSION"),
        ("llama_stack.distribution.datatypes", "LLAMA_STACK_RUN_CONFIG_VERSION"),
    ]
)


def _accepts_field_name(cls, name, field):
    """True when pydantic accepts the python field name as input key although an alias exists."""
    cfg = getattr(cls, "model_config", {}) or {}
    return bool(cfg.get("populate_by_name") or cfg.get("validate_by_name"))


def _input_keys(cls, name, field):
    """The YAML keys that feed one pydantic field, in the order: alias(es) first, then the name."""
    keys = []
    va = field.validation_alias
    if isinstance(va, str):
        keys.append(va)
    elif va is not None and hasattr(va, "choices"):  # AliasChoices
        for c in va.choices:
            if isinstance(c, str):
                keys.append(c)
            elif hasattr(c, "path") and len(c.path) == 1 and isinstance(c.path[0], str):
                keys.append(c.path[0])
    if field.alias and field.alias not in keys:
        keys.append(field.alias)
    if not keys or _accepts_field_name(cls, name, field):
        keys.append(name)
    return keys


def describe(spec):
    cls = instantiate_class_type(spec.config_class)
    fields = {}  # python name -> list of yaml keys
    required = []
    for name, f in cls.model_fields.items():
        keys = _input_keys(cls, name, f)
        fields[name] = keys
        if f.is_required():
            required.append(keys[0])
    all_keys = sorted({k for ks in fields.values() for k in ks})

    endpoint = next((c for c in ENDPOINT_CANDIDATES if c in all_keys), None)
    if endpoint is None:
        endpoint = next((k for k in all_keys if k.endswith("_url")), None)

    cred = cls.model_fields.get("auth_credential")
    cred_alias = None
    if cred is not None and fields["auth_credential"][0] != "auth_credential":
        cred_alias = fields["auth_credential"][0]
    if cred_alias:
        # the shared remote-inference credential, spelled by its alias (api_key, api_token, ...);
        # providers that re-declare auth_credential without an alias (exclude=True: ollama, tgi,
        # vertexai) do not take a credential through it and fall through to the next rules.
        api_key = cred_alias
    elif "api_key" in all_keys:
        api_key = "api_key"
    elif "api_token" in all_keys:  # 0.2.x remote::vllm / databricks / runpod: a plain api_token field
        api_key = "api_token"
    else:
        api_key = next((k for k in all_keys if k.endswith("_api_key")), None)

    # Tool groups: 0.7.x declares them on the spec (ProviderSpec.toolgroup_id) and
    # llama_stack/core/stack.py:auto_register_tool_groups() registers exactly that id for every
    # enabled tool_runtime provider. Releases without the attribute register no tool group
    # automatically (they list them under the config's tool_groups instead), hence [].
    tg = getattr(spec, "toolgroup_id", None)

    def api_names(lst):
        return sorted({a.value if hasattr(a, "value") else str(a) for a in (lst or [])})

    entry = {
        "endpointField": endpoint,
        "apiKeyField": api_key,
        "fields": all_keys,
        "required": sorted(required),
        "apiDependencies": api_names(getattr(spec, "api_dependencies", None)),
        "optionalApiDependencies": api_names(getattr(spec, "optional_api_dependencies", None)),
        "toolGroups": [tg] if tg else [],
        "deprecationError": getattr(spec, "deprecation_error", None) or None,
        "deprecationWarning": getattr(spec, "deprecation_warning", None) or None,
    }
    try:
        schema = cls.model_json_schema()
    except Exception as e:  # a config type pydantic cannot express in JSON schema
        schema = {"x-schema-error": f"{type(e).__name__}: {e}"}
    return entry, schema


def main():
    out_catalog, out_schemas = sys.argv[1], sys.argv[2]
    try:
        registry = get_provider_registry(None)
    except TypeError:  # older signature without the config argument
        registry = get_provider_registry()

    apis = sorted(a.value for a in registry)
    providers, schemas, failures = {}, {}, []
    for api in sorted(registry, key=lambda a: a.value):
        for ptype in sorted(registry[api]):
            spec = registry[api][ptype]
            try:
                entry, schema = describe(spec)
            except Exception as e:
                failures.append(f"{api.value} {ptype}: {type(e).__name__}: {e}")
                continue
            providers.setdefault(api.value, {})[ptype] = entry
            schemas.setdefault(api.value, {})[ptype] = schema

    # Dependencies may name routing-table APIs (models, datasets, tool_groups, ...), which are
    # served by the router API they belong to, and internal APIs (prompts, conversations, ...),
    # which are always present. routingTables maps the former to their router API.
    routing = {}
    try:
        auto = _import_first(
            [
                ("llama_stack.core.distribution", "builtin_automatically_routed_apis"),
                ("llama_stack.distribution.distribution", "builtin_automatically_routed_apis"),
            ]
        )
        routing = {x.routing_table_api.value: x.router_api.value for x in auto()}
    except RuntimeError:
        pass

    catalog = {
        "llamaStackVersion": _version(),
        "configVersion": int(RUN_CONFIG_VERSION),
        "apis": apis,
        "routingTables": dict(sorted(routing.items())),
        "providers": providers,
    }
    with open(out_catalog, "w") as f:
        json.dump(catalog, f)
    with open(out_schemas, "w") as f:
        json.dump(schemas, f)
    for msg in failures:
        print("EXTRACT-FAILED:", msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

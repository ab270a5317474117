//! `spec.providers` -> `providers:` (FR-030..036, D1, D6, D7).

use super::Context;
use super::secrets::env_name;
use crate::catalog::{Catalog, ProviderInfo};
use crate::error::{Reason, list};
use crate::spec::{ProviderList, ProviderSpec, Spec};
use crate::yaml::{self, key};
use serde_yaml::{Mapping, Value};

pub fn apply(cx: &mut Context<'_>) {
    check_unique_ids(cx);
    for plist in &cx.spec.providers {
        apply_list(cx, plist);
    }
}

/// FR-072 / D7 on effective ids, which CEL cannot see.
fn check_unique_ids(cx: &mut Context<'_>) {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for p in cx.spec.providers.iter().flat_map(|l| &l.items) {
        let id = Spec::effective_id(p);
        if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
            let field = if p.id.is_some() { "id" } else { "provider" };
            cx.d.error(
                format!("{}.{field}", p.path),
                Reason::Duplicate,
                format!(
                    "provider id \"{id}\" is already used by {first}; provider ids must be unique across all provider \
                     types (FR-072): set a distinct id"
                ),
            );
        } else {
            seen.push((id, &p.path));
        }
    }
}

fn apply_list(cx: &mut Context<'_>, plist: &ProviderList) {
    let api = plist.api.config_name();
    let path = format!("spec.providers.{}", plist.api.field());
    if let Some(cat) = cx.catalog
        && !cat.has_api(api)
    {
        let hint = if api == "telemetry" {
            " (telemetry was removed from llama-stack; configure OpenTelemetry with OTEL_* variables in \
                 spec.workload.overrides.env)"
        } else {
            ""
        };
        cx.d.error(
            &path,
            Reason::NotSupported,
            format!(
                "the {api} API does not exist in llama-stack {}{hint}; its APIs are: {}",
                cat.llama_stack_version,
                list(cat.apis)
            ),
        );
        return;
    }
    // Taken, not cloned: the list is replaced below, in place, so API order is kept. An
    // embedded base left it empty in the working copy; its entries are built on their own.
    let taken: Vec<Value> = match cx.doc.get_mut("providers").and_then(|p| p.get_mut(api)) {
        Some(Value::Sequence(seq)) => std::mem::take(seq),
        _ => Vec::new(),
    };
    let base_entries = match cx.embedded {
        Some(dist) => dist.base_providers(api),
        None => std::borrow::Cow::Owned(taken),
    };
    let base_entries: &[Value] = &base_entries;
    let mut entries: Vec<(String, Value)> = Vec::new();
    for p in &plist.items {
        if let Some(entry) = expand_one(cx, api, p, base_entries) {
            entries.push(entry);
        }
    }
    // Output order is by id, so reordering the CR's list changes nothing (NFR-001).
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let providers = yaml::ensure_map(&mut cx.doc, "providers");
    providers.insert(
        key(api),
        Value::Sequence(entries.into_iter().map(|(_, v)| v).collect()),
    );
    ensure_api_listed(&mut cx.doc, api);
}

/// An API that gains providers must be served: add it to a non-empty `apis` list.
pub fn ensure_api_listed(doc: &mut Mapping, api: &str) {
    if let Some(Value::Sequence(apis)) = doc.get_mut("apis")
        && !apis.is_empty()
        && !apis.iter().any(|a| a.as_str() == Some(api))
    {
        apis.push(key(api));
    }
}

/// D1: bare names resolve through the catalog; `x::y` is taken as written.
pub fn resolve_type(
    catalog: Option<&Catalog>,
    api: &str,
    provider: &str,
    path: &str,
    cx_d: &mut crate::error::Diagnostics,
) -> Option<String> {
    let Some(cat) = catalog else {
        return Some(if provider.contains("::") {
            provider.to_string()
        } else {
            format!("remote::{provider}")
        });
    };
    let candidates: Vec<String> = if provider.contains("::") {
        vec![provider.to_string()]
    } else {
        vec![format!("remote::{provider}"), format!("inline::{provider}")]
    };
    if let Some(found) = candidates
        .into_iter()
        .find(|t| cat.provider(api, t).is_some())
    {
        return Some(found);
    }
    let mut msg = format!(
        "provider \"{provider}\" is not available for the {api} API in llama-stack {}; available: {}",
        cat.llama_stack_version,
        list(cat.types_of(api))
    );
    if let Some(other) = cat.providers.iter().find_map(|(other_api, types)| {
        let hit = types.iter().any(|(t, _)| {
            t.rsplit("::").next() == Some(provider.rsplit("::").next().unwrap_or(provider))
        });
        (hit && *other_api != api).then_some(other_api)
    }) {
        msg.push_str(&format!(
            " (\"{provider}\" is a provider of the {other} API)"
        ));
    }
    cx_d.error(format!("{path}.provider"), Reason::NotSupported, msg);
    None
}

fn expand_one(
    cx: &mut Context<'_>,
    api: &str,
    p: &ProviderSpec,
    base: &[Value],
) -> Option<(String, Value)> {
    let ptype = resolve_type(cx.catalog, api, &p.provider, &p.path, &mut cx.d)?;
    let info: Option<&ProviderInfo> = cx.catalog.and_then(|c| c.provider(api, &ptype));
    if let Some(info) = info {
        if let Some(err) = &info.deprecation_error {
            cx.d.error(
                format!("{}.provider", p.path),
                Reason::NotSupported,
                format!("{ptype} is deprecated: {err}"),
            );
            return None;
        }
        if let Some(w) = &info.deprecation_warning {
            cx.d.warn(format!("{}.provider: {ptype} is deprecated: {w}", p.path));
        }
    }
    let id = Spec::effective_id(p);
    // D6: a base provider of the same type lends its non-secret config as the starting point.
    let mut config = base
        .iter()
        .find(|e| yaml::str_of(e, "provider_type") == Some(ptype.as_str()))
        .and_then(|e| e.get("config"))
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    let (endpoint_field, api_key_field) = match info {
        Some(i) => (
            i.endpoint_field.map(str::to_string),
            i.api_key_field.map(str::to_string),
        ),
        // No catalog (a direct image or an overrideConfig base): the base entry of the same
        // type shows the names its release reads; the contract's url/api_key are the guess.
        None => {
            let mut pick = |names: [&str; 2], guess: &str, what: &str, set: bool| match names
                .iter()
                .find(|n| config.contains_key(**n))
            {
                Some(n) => n.to_string(),
                None => {
                    if set {
                        cx.d.warn(format!(
                            "{}: no provider catalog is known for this base config, so {what} is written as \
                             config.{guess}; check that {ptype} reads {guess} (llama-stack ignores unknown keys)",
                            p.path
                        ));
                    }
                    guess.to_string()
                }
            };
            let e = pick(["base_url", "url"], "url", "endpoint", p.endpoint.is_some());
            let k = pick(
                ["api_token", "api_key"],
                "api_key",
                "apiKey",
                p.api_key.is_some(),
            );
            (Some(e), Some(k))
        }
    };
    if let Some(f) = &api_key_field {
        yaml::remove(&mut config, f);
    }

    if let Some(endpoint) = &p.endpoint {
        match &endpoint_field {
            Some(f) => {
                if (f == "base_url" || f == "url") && !looks_like_url(endpoint) {
                    cx.d.error(
                        format!("{}.endpoint", p.path),
                        Reason::Invalid,
                        format!("\"{endpoint}\" is not a URL: write it with its scheme, e.g. http://vllm:8000/v1"),
                    );
                }
                config.insert(key(f), key(endpoint));
            }
            None => cx.d.error(
                format!("{}.endpoint", p.path),
                Reason::NotSupported,
                format!("{ptype} takes no endpoint; remove endpoint (provider-specific options go in settings)"),
            ),
        }
    }
    if let Some(r) = &p.api_key {
        match &api_key_field {
            Some(f) => {
                let name = env_name(&id, "API_KEY");
                let value = cx.secret_env(name, r, &format!("{}.apiKey", p.path));
                config.insert(key(f), key(&value));
            }
            None => cx.d.error(
                format!("{}.apiKey", p.path),
                Reason::NotSupported,
                format!(
                    "{ptype} takes no API key; remove apiKey (other credentials go in secretRefs under the config \
                     field's name)"
                ),
            ),
        }
    }
    for (field, r) in &p.secret_refs {
        let path = format!("{}.secretRefs.{field}", p.path);
        warn_undeclared(cx, info, &ptype, &path, field);
        let name = env_name(&id, field);
        let value = cx.secret_env(name, r, &path);
        config.insert(key(field), key(&value));
    }
    for (k, v) in &p.settings {
        if holds_secret_ref(v) {
            cx.d.warn(format!(
                "{}.settings.{k} holds a secretKeyRef, which is passed to llama-stack verbatim (settings are never \
                 resolved, E10); read Secrets with apiKey or secretRefs.{k}",
                p.path
            ));
        }
    }
    if !p.settings.is_empty() {
        for k in p.settings.keys() {
            warn_undeclared(cx, info, &ptype, &format!("{}.settings.{k}", p.path), k);
        }
        let over: Mapping = p
            .settings
            .iter()
            .map(|(k, v)| (key(k), yaml::from_json(v)))
            .collect();
        let mut merged = Value::Mapping(config);
        yaml::merge(&mut merged, Value::Mapping(over));
        config = match merged {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        };
    }
    if let (Some(f), true) = (&endpoint_field, info.is_some())
        && (f == "base_url" || f == "url")
        && ptype.starts_with("remote::")
        && !yaml::has_value(config.get(f.as_str()))
    {
        cx.d.warn(format!(
                "{}: {ptype} has no {f}; the server will not reach it until spec.providers.{}.endpoint is set",
                p.path,
                p.path.split('.').nth(2).unwrap_or(api)
            ));
    }
    let mut entry = Mapping::new();
    entry.insert(key("provider_id"), key(&id));
    entry.insert(key("provider_type"), key(&ptype));
    if !config.is_empty() {
        entry.insert(key("config"), Value::Mapping(config));
    }
    Some((id, Value::Mapping(entry)))
}

/// D1: llama-stack drops unknown keys silently, so say so before it does.
fn warn_undeclared(
    cx: &mut Context<'_>,
    info: Option<&ProviderInfo>,
    ptype: &str,
    path: &str,
    field: &str,
) {
    if let Some(info) = info
        && !info.fields.is_empty()
        && !info.fields.contains(&field)
    {
        cx.d.warn(format!(
                "{path}: {ptype} does not declare \"{field}\"; llama-stack ignores unknown keys silently (known: {})",
                list(info.fields)
            ));
    }
}

fn holds_secret_ref(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => {
            m.contains_key("secretKeyRef") || m.values().any(holds_secret_ref)
        }
        serde_json::Value::Array(a) => a.iter().any(holds_secret_ref),
        _ => false,
    }
}

fn looks_like_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains(char::is_whitespace)
        }
        // Values from env substitution are the user's business.
        None => s.starts_with("${env."),
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_url;

    #[test]
    fn urls() {
        assert!(looks_like_url("http://vllm:8000/v1"));
        assert!(looks_like_url("https://x"));
        assert!(looks_like_url("${env.VLLM_URL}"));
        assert!(!looks_like_url("vllm:8000"));
        assert!(!looks_like_url("http://"));
    }
}

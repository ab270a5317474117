//! JSON -> [`Spec`], collecting every error with its path.

use super::*;
use crate::error::{Diagnostics, Reason, list};
use serde_json::Map;

const SPEC_KEYS: [&str; 9] = [
    "distribution",
    "providers",
    "resources",
    "storage",
    "disabled",
    "networking",
    "workload",
    "externalProviders",
    "overrideConfig",
];
const PROVIDER_KEYS: [&str; 6] = [
    "id",
    "provider",
    "endpoint",
    "apiKey",
    "secretRefs",
    "settings",
];
const MODEL_KEYS: [&str; 5] = [
    "name",
    "provider",
    "contextLength",
    "modelType",
    "quantization",
];
const EXTERNAL_KEYS: [&str; 4] = ["providerId", "image", "imagePullPolicy", "config"];

/// Parses `spec` (the object under `.spec` of a LlamaStackDistribution).
pub fn parse_spec(spec: &Json, d: &mut Diagnostics) -> Spec {
    let mut out = Spec::default();
    let Some(root) = object(spec, "spec", d) else {
        return out;
    };
    unknown_keys(root, "spec", &SPEC_KEYS, d);

    match root.get("distribution") {
        None | Some(Json::Null) => d.error(
            "spec.distribution",
            Reason::Required,
            "spec.distribution is required: set distribution.name (e.g. name: starter) or distribution.image",
        ),
        Some(v) => out.distribution = distribution(v, d),
    }
    if let Some(v) = present(root, "providers") {
        out.has_providers = true;
        out.providers = providers(v, d);
    }
    if let Some(v) = present(root, "resources") {
        out.has_resources = true;
        out.resources = Some(resources(v, d));
    }
    if let Some(v) = present(root, "storage") {
        out.has_storage = true;
        out.storage = Some(storage(v, d));
    }
    if let Some(v) = present(root, "disabled") {
        out.has_disabled = true;
        out.disabled = string_list(v, "spec.disabled", d);
    }
    if let Some(v) = present(root, "networking") {
        out.networking = networking(v, d);
    }
    if let Some(v) = present(root, "workload") {
        out.workers = workers(v, d);
    }
    if let Some(v) = present(root, "externalProviders") {
        out.external_providers = external_providers(v, d);
    }
    if let Some(v) = present(root, "overrideConfig") {
        let path = "spec.overrideConfig";
        if let Some(m) = object(v, path, d) {
            unknown_keys(m, path, &["configMapName"], d);
            out.override_config = required_string(m, path, "configMapName", d);
        }
    }
    exclusivity(&out, d);
    out
}

fn present<'a>(m: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    m.get(key).filter(|v| !v.is_null())
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

fn object<'a>(v: &'a Json, path: &str, d: &mut Diagnostics) -> Option<&'a Map<String, Json>> {
    match v {
        Json::Object(m) => Some(m),
        other => {
            d.error(
                path,
                Reason::Invalid,
                format!("must be an object, not {}", type_name(other)),
            );
            None
        }
    }
}

/// Same word up to case, or one a prefix of the other within two letters (`resource`).
fn similar(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == b
        || (a.len().abs_diff(b.len()) <= 2
            && !b.is_empty()
            && (a.starts_with(&b) || b.starts_with(&a)))
}

fn unknown_keys(m: &Map<String, Json>, path: &str, allowed: &[&str], d: &mut Diagnostics) {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            let hint = allowed
                .iter()
                .find(|a| similar(a, k))
                .map(|a| format!(" (did you mean {a}?)"));
            d.error(
                format!("{path}.{k}"),
                Reason::UnknownField,
                format!(
                    "unknown field \"{k}\"{}; allowed fields: {}",
                    hint.unwrap_or_default(),
                    list(allowed)
                ),
            );
        }
    }
}

fn string_at(v: &Json, path: &str, d: &mut Diagnostics) -> Option<String> {
    string_in(v, || path.to_string(), d)
}

/// `path` is only built when there is an error to report.
fn string_in(v: &Json, path: impl Fn() -> String, d: &mut Diagnostics) -> Option<String> {
    match v {
        Json::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Json::String(_) => {
            d.error(path(), Reason::Required, "must not be empty");
            None
        }
        other => {
            d.error(
                path(),
                Reason::Invalid,
                format!("must be a string, not {}", type_name(other)),
            );
            None
        }
    }
}

fn optional_string(
    m: &Map<String, Json>,
    path: &str,
    key: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    present(m, key).and_then(|v| string_in(v, || format!("{path}.{key}"), d))
}

fn required_string(
    m: &Map<String, Json>,
    path: &str,
    key: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    match present(m, key) {
        Some(v) => string_in(v, || format!("{path}.{key}"), d),
        None => {
            d.error(
                format!("{path}.{key}"),
                Reason::Required,
                format!("{key} is required"),
            );
            None
        }
    }
}

fn string_list(v: &Json, path: &str, d: &mut Diagnostics) -> Vec<Named> {
    let Json::Array(items) = v else {
        d.error(
            path,
            Reason::Invalid,
            format!("must be a list of strings, not {}", type_name(v)),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let p = format!("{path}[{i}]");
            string_at(item, &p, d).map(|name| Named { path: p, name })
        })
        .collect()
}

fn distribution(v: &Json, d: &mut Diagnostics) -> DistributionRef {
    let path = "spec.distribution";
    // Short form: `distribution: starter`.
    if let Json::String(s) = v {
        return DistributionRef {
            name: Some(s.clone()),
            image: None,
        };
    }
    let Some(m) = object(v, path, d) else {
        return DistributionRef::default();
    };
    unknown_keys(m, path, &["name", "image"], d);
    let name = optional_string(m, path, "name", d);
    let image = optional_string(m, path, "image", d);
    match (&name, &image) {
        (Some(_), Some(_)) => d.error(
            path,
            Reason::Conflict,
            "set either distribution.name or distribution.image, not both (FR-002): use name for a distribution \
             the operator knows, image for a custom build",
        ),
        (None, None) if !m.contains_key("name") && !m.contains_key("image") => d.error(
            path,
            Reason::Required,
            "one of distribution.name or distribution.image is required (e.g. name: starter)",
        ),
        _ => {}
    }
    DistributionRef { name, image }
}

fn secret_ref(v: &Json, path: &str, d: &mut Diagnostics) -> Option<SecretRef> {
    let m = object(v, path, d)?;
    if !m.contains_key("secretKeyRef") && (m.contains_key("name") || m.contains_key("key")) {
        d.error(
            path,
            Reason::Invalid,
            "a secret reference is written {secretKeyRef: {name: <secret>, key: <key>}} (D5); wrap name and key in secretKeyRef",
        );
        return None;
    }
    unknown_keys(m, path, &["secretKeyRef"], d);
    let inner_path = format!("{path}.secretKeyRef");
    let Some(inner) = present(m, "secretKeyRef") else {
        d.error(
            &inner_path,
            Reason::Required,
            "secretKeyRef is required: {secretKeyRef: {name: <secret>, key: <key>}}",
        );
        return None;
    };
    let inner = object(inner, &inner_path, d)?;
    unknown_keys(inner, &inner_path, &["name", "key"], d);
    let name = required_string(inner, &inner_path, "name", d);
    let key = required_string(inner, &inner_path, "key", d);
    Some(SecretRef {
        name: name?,
        key: key?,
    })
}

fn providers(v: &Json, d: &mut Diagnostics) -> Vec<ProviderList> {
    let path = "spec.providers";
    let Some(m) = object(v, path, d) else {
        return Vec::new();
    };
    let fields: Vec<&str> = ProviderApi::ALL.iter().map(|a| a.field()).collect();
    unknown_keys(m, path, &fields, d);
    let mut out = Vec::new();
    for api in ProviderApi::ALL {
        let Some(v) = present(m, api.field()) else {
            continue;
        };
        let lpath = format!("{path}.{}", api.field());
        // D4: a single object is accepted where a list is expected.
        let items: Vec<&Json> = match v {
            Json::Array(a) => a.iter().collect(),
            Json::Object(_) => vec![v],
            other => {
                d.error(
                    &lpath,
                    Reason::Invalid,
                    format!("must be a list of providers, not {}", type_name(other)),
                );
                continue;
            }
        };
        let single = matches!(v, Json::Object(_));
        let many = items.len() > 1;
        let parsed = items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let p = if single {
                    lpath.clone()
                } else {
                    format!("{lpath}[{i}]")
                };
                provider(item, &p, many, api, d)
            })
            .collect();
        out.push(ProviderList { api, items: parsed });
    }
    out
}

fn provider(
    v: &Json,
    path: &str,
    many: bool,
    api: ProviderApi,
    d: &mut Diagnostics,
) -> Option<ProviderSpec> {
    let m = object(v, path, d)?;
    unknown_keys(m, path, &PROVIDER_KEYS, d);
    let id = optional_string(m, path, "id", d);
    if let Some(id) = &id {
        if !valid_id(id) {
            d.error(
                format!("{path}.id"),
                Reason::Invalid,
                format!(
                    "\"{id}\" is not a valid provider id: use letters, digits, '-' and '_', starting with a letter or \
                     digit (it becomes part of environment variable names)"
                ),
            );
        }
    } else if many {
        d.error(
            format!("{path}.id"),
            Reason::Required,
            format!(
                "id is required when spec.providers.{} lists more than one provider (FR-034): give each a unique id, \
                 e.g. id: {}-1",
                api.field(),
                present(m, "provider").and_then(Json::as_str).unwrap_or("provider")
            ),
        );
    }
    let provider = required_string(m, path, "provider", d);
    let endpoint = optional_string(m, path, "endpoint", d);
    let api_key = present(m, "apiKey").and_then(|v| secret_ref(v, &format!("{path}.apiKey"), d));
    let mut secret_refs = BTreeMap::new();
    if let Some(v) = present(m, "secretRefs") {
        let sp = format!("{path}.secretRefs");
        if let Some(sm) = object(v, &sp, d) {
            for (k, v) in sm {
                let kp = format!("{sp}.{k}");
                if !valid_id(k) {
                    d.error(
                        &kp,
                        Reason::Invalid,
                        format!("\"{k}\" is not a valid config field name for a secret reference"),
                    );
                    continue;
                }
                if let Some(r) = secret_ref(v, &kp, d) {
                    secret_refs.insert(k.clone(), r);
                }
            }
        }
    }
    let mut settings = BTreeMap::new();
    if let Some(v) = present(m, "settings")
        && let Some(sm) = object(v, &format!("{path}.settings"), d)
    {
        settings = sm.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    Some(ProviderSpec {
        path: path.to_string(),
        id,
        provider: provider?,
        endpoint,
        api_key,
        secret_refs,
        settings,
    })
}

/// Provider ids and secret field names end up in env var names (FR-032).
fn valid_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn resources(v: &Json, d: &mut Diagnostics) -> Resources {
    let path = "spec.resources";
    let mut out = Resources::default();
    let Some(m) = object(v, path, d) else {
        return out;
    };
    unknown_keys(m, path, &["models", "tools", "shields"], d);
    if let Some(v) = present(m, "models") {
        let mp = format!("{path}.models");
        match v {
            Json::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(model) = model(item, &format!("{mp}[{i}]"), d) {
                        out.models.push(model);
                    }
                }
            }
            other => d.error(
                mp,
                Reason::Invalid,
                format!("must be a list of models, not {}", type_name(other)),
            ),
        }
    }
    if let Some(v) = present(m, "tools") {
        out.tools = string_list(v, &format!("{path}.tools"), d);
    }
    if let Some(v) = present(m, "shields") {
        out.shields = string_list(v, &format!("{path}.shields"), d);
    }
    out
}

fn model(v: &Json, path: &str, d: &mut Diagnostics) -> Option<ModelSpec> {
    // D4: a bare string is the model name.
    if let Json::String(_) = v {
        let name = string_at(v, path, d)?;
        return Some(ModelSpec {
            path: path.to_string(),
            name,
            provider: None,
            context_length: None,
            model_type: None,
            quantization: None,
        });
    }
    let m = object(v, path, d)?;
    unknown_keys(m, path, &MODEL_KEYS, d);
    let name = required_string(m, path, "name", d);
    let provider = optional_string(m, path, "provider", d);
    let context_length = match present(m, "contextLength") {
        None => None,
        Some(Json::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => n.as_u64(),
        Some(other) => {
            d.error(
                format!("{path}.contextLength"),
                Reason::Invalid,
                format!("must be a positive integer (tokens), not {other}"),
            );
            None
        }
    };
    let model_type = optional_string(m, path, "modelType", d);
    let quantization = optional_string(m, path, "quantization", d);
    Some(ModelSpec {
        path: path.to_string(),
        name: name?,
        provider,
        context_length,
        model_type,
        quantization,
    })
}

/// An enum field: absent means the first option (the default).
fn choice<T: Copy>(
    m: &Map<String, Json>,
    path: &str,
    key: &str,
    options: &[(&str, T)],
    rule: &str,
    d: &mut Diagnostics,
) -> T {
    let value = optional_string(m, path, key, d);
    let Some(value) = value else {
        return options[0].1;
    };
    match options.iter().find(|(name, _)| *name == value) {
        Some((_, t)) => *t,
        None => {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            d.error(
                format!("{path}.{key}"),
                Reason::NotSupported,
                format!(
                    "unsupported {key} \"{value}\": use {} ({rule})",
                    names.join(" or ")
                ),
            );
            options[0].1
        }
    }
}

fn storage(v: &Json, d: &mut Diagnostics) -> Storage {
    let path = "spec.storage";
    let mut out = Storage::default();
    let Some(m) = object(v, path, d) else {
        return out;
    };
    unknown_keys(m, path, &["kv", "sql"], d);
    if let Some(v) = present(m, "kv") {
        let kp = format!("{path}.kv");
        if let Some(km) = object(v, &kp, d) {
            unknown_keys(km, &kp, &["type", "endpoint", "password"], d);
            let kind = choice(
                km,
                &kp,
                "type",
                &[("sqlite", KvType::Sqlite), ("redis", KvType::Redis)],
                "FR-050",
                d,
            );
            let endpoint = optional_string(km, &kp, "endpoint", d);
            let password =
                present(km, "password").and_then(|v| secret_ref(v, &format!("{kp}.password"), d));
            out.kv = Some(KvStorage {
                kind,
                endpoint,
                password,
            });
        }
    }
    if let Some(v) = present(m, "sql") {
        let sp = format!("{path}.sql");
        if let Some(sm) = object(v, &sp, d) {
            unknown_keys(sm, &sp, &["type", "connectionString", "secretRef"], d);
            let kind = choice(
                sm,
                &sp,
                "type",
                &[("sqlite", SqlType::Sqlite), ("postgres", SqlType::Postgres)],
                "FR-051",
                d,
            );
            let connection_string = present(sm, "connectionString")
                .and_then(|v| secret_ref(v, &format!("{sp}.connectionString"), d));
            let secret_ref = match present(sm, "secretRef") {
                None => None,
                Some(v) => {
                    let rp = format!("{sp}.secretRef");
                    object(v, &rp, d).and_then(|rm| {
                        unknown_keys(rm, &rp, &["name"], d);
                        required_string(rm, &rp, "name", d)
                    })
                }
            };
            out.sql = Some(SqlStorage {
                kind,
                connection_string,
                secret_ref,
            });
        }
    }
    out
}

fn networking(v: &Json, d: &mut Diagnostics) -> Networking {
    let path = "spec.networking";
    let mut out = Networking::default();
    let Some(m) = object(v, path, d) else {
        return out;
    };
    unknown_keys(m, path, &["port", "tls", "expose", "allowedFrom"], d);
    if let Some(p) = present(m, "port") {
        match p.as_u64() {
            Some(n) if (1024..=65535).contains(&n) => out.port = u16::try_from(n).ok(),
            _ => d.error(
                format!("{path}.port"),
                Reason::Invalid,
                format!("port must be an integer from 1024 to 65535 (llama-stack refuses lower ports), not {p}"),
            ),
        }
    }
    if let Some(t) = present(m, "tls") {
        let tp = format!("{path}.tls");
        if let Some(tm) = object(t, &tp, d) {
            unknown_keys(tm, &tp, &["enabled", "secretName", "caBundle"], d);
            let enabled = match present(tm, "enabled") {
                None => false,
                Some(Json::Bool(b)) => *b,
                Some(other) => {
                    d.error(
                        format!("{tp}.enabled"),
                        Reason::Invalid,
                        format!("must be true or false, not {other}"),
                    );
                    false
                }
            };
            let secret_name = optional_string(tm, &tp, "secretName", d);
            if enabled && secret_name.is_none() {
                d.error(
                    format!("{tp}.secretName"),
                    Reason::Required,
                    "secretName is required when tls.enabled is true (FR-079): name a kubernetes.io/tls Secret",
                );
            }
            out.tls = Some(Tls {
                enabled,
                secret_name,
            });
        }
    }
    if let Some(e) = present(m, "expose") {
        // D4: `expose: true|false` is accepted; an object is the typed form.
        if !matches!(e, Json::Bool(_) | Json::Object(_)) {
            d.error(
                format!("{path}.expose"),
                Reason::Invalid,
                format!(
                    "expose must be an object like {{enabled: true, hostname: ...}}, not {}",
                    type_name(e)
                ),
            );
        }
    }
    out
}

fn workers(v: &Json, d: &mut Diagnostics) -> Option<u32> {
    let path = "spec.workload";
    let m = object(v, path, d)?;
    let w = present(m, "workers")?;
    match w.as_u64() {
        Some(n) if n >= 1 => u32::try_from(n).ok(),
        _ => {
            d.error(
                format!("{path}.workers"),
                Reason::Invalid,
                format!("workers must be an integer >= 1, not {w}"),
            );
            None
        }
    }
}

fn external_providers(v: &Json, d: &mut Diagnostics) -> Vec<ExternalRef> {
    let path = "spec.externalProviders";
    let mut out = Vec::new();
    let Some(m) = object(v, path, d) else {
        return out;
    };
    for (section, list) in m {
        let sp = format!("{path}.{section}");
        let Some(api) = Api::from_field(section) else {
            d.error(
                &sp,
                Reason::UnknownField,
                format!(
                    "unknown API section \"{section}\"; allowed: {}",
                    list_fields()
                ),
            );
            continue;
        };
        let Json::Array(items) = list else {
            d.error(
                &sp,
                Reason::Invalid,
                format!(
                    "must be a list of external providers, not {}",
                    type_name(list)
                ),
            );
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{sp}[{i}]");
            let Some(im) = object(item, &ip, d) else {
                continue;
            };
            unknown_keys(im, &ip, &EXTERNAL_KEYS, d);
            let provider_id = required_string(im, &ip, "providerId", d);
            let image = required_string(im, &ip, "image", d);
            if let Some(pp) = present(im, "imagePullPolicy")
                && !matches!(pp.as_str(), Some("Always" | "Never" | "IfNotPresent"))
            {
                d.error(
                    format!("{ip}.imagePullPolicy"),
                    Reason::NotSupported,
                    format!("imagePullPolicy must be Always, Never or IfNotPresent, not {pp}"),
                );
            }
            let config = present(im, "config").cloned();
            if let Some(c) = &config
                && !c.is_object()
            {
                d.error(
                    format!("{ip}.config"),
                    Reason::Invalid,
                    "config must be an object (the provider's config section)",
                );
            }
            if let (Some(provider_id), Some(image)) = (provider_id, image) {
                if !valid_id(&provider_id) {
                    d.error(
                        format!("{ip}.providerId"),
                        Reason::Invalid,
                        format!("\"{provider_id}\" is not a valid provider id"),
                    );
                }
                out.push(ExternalRef {
                    path: ip,
                    api,
                    provider_id,
                    image,
                    config,
                });
            }
        }
    }
    out
}

fn list_fields() -> String {
    list(Api::fields())
}

/// FR-013 / FR-070: overrideConfig replaces generation entirely.
fn exclusivity(s: &Spec, d: &mut Diagnostics) {
    if s.override_config.is_none() {
        return;
    }
    for (set, field) in [
        (s.has_providers, "providers"),
        (s.has_resources, "resources"),
        (s.has_storage, "storage"),
        (s.has_disabled, "disabled"),
    ] {
        if set {
            d.error(
                format!("spec.{field}"),
                Reason::Conflict,
                format!(
                    "spec.{field} and spec.overrideConfig are mutually exclusive (FR-013): overrideConfig supplies the \
                     whole config.yaml, so remove spec.{field} or remove spec.overrideConfig"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Json) -> (Spec, Diagnostics) {
        let mut d = Diagnostics::default();
        let s = parse_spec(&v, &mut d);
        (s, d)
    }

    #[test]
    fn short_forms_are_accepted() {
        let (s, d) = parse(json!({
            "distribution": {"name": "starter"},
            "providers": {"inference": {"provider": "vllm", "endpoint": "http://v:8000/v1"}},
            "resources": {"models": ["m1", {"name": "m2", "provider": "vllm"}]},
            "networking": {"expose": true}
        }));
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(s.providers[0].items[0].path, "spec.providers.inference");
        assert_eq!(s.resources.unwrap().models.len(), 2);
    }

    #[test]
    fn errors_are_collected_with_paths() {
        let (_, d) = parse(json!({
            "distribution": {"name": "starter", "image": "x"},
            "providers": {"inference": [{"provider": "vllm"}, {"provider": "ollama", "apiKey": {"name": "s", "key": "k"}}],
                          "agents": []},
            "storage": {"kv": {"type": "etcd"}},
            "networking": {"port": 80, "tls": {"enabled": true}},
            "overrideConfig": {"configMapName": "cm"}
        }));
        let paths: Vec<&str> = d.errors.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "spec.distribution",
            "spec.providers.agents",
            "spec.providers.inference[0].id",
            "spec.providers.inference[1].id",
            "spec.providers.inference[1].apiKey",
            "spec.storage.kv.type",
            "spec.networking.port",
            "spec.networking.tls.secretName",
            "spec.providers",
            "spec.storage",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
    }

    #[test]
    fn unknown_field_suggests_spelling() {
        let (_, d) = parse(json!({"distribution": {"name": "starter"},
            "providers": {"inference": [{"provider": "vllm", "apikey": {}}]}}));
        assert_eq!(d.errors.len(), 1);
        assert!(
            d.errors[0].message.contains("did you mean apiKey?"),
            "{}",
            d.errors[0].message
        );
    }

    #[test]
    fn effective_id_strips_prefix() {
        let (s, _) = parse(json!({"distribution": "starter",
            "providers": {"safety": [{"provider": "inline::llama-guard"}]}}));
        assert_eq!(Spec::effective_id(&s.providers[0].items[0]), "llama-guard");
    }

    #[test]
    fn wrong_types_are_reported() {
        let (_, d) = parse(
            json!({"distribution": {"name": 3}, "providers": {"inference": "vllm"},
            "resources": {"models": "m", "tools": [1]}, "disabled": "eval",
            "workload": {"workers": 0}, "externalProviders": {"inference": [{"providerId": "x"}], "foo": []}}),
        );
        let paths: Vec<&str> = d.errors.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "spec.distribution.name",
            "spec.providers.inference",
            "spec.resources.models",
            "spec.resources.tools[0]",
            "spec.disabled",
            "spec.workload.workers",
            "spec.externalProviders.inference[0].image",
            "spec.externalProviders.foo",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
    }
}

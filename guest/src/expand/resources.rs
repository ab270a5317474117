//! `spec.resources` -> registered resources (FR-040..044, E5, E11, E12): additive.

use super::Context;
use super::refs::provider_ids;
use crate::catalog::Catalog;
use crate::error::{Reason, list};
use crate::spec::{ModelSpec, Spec};
use crate::yaml::{self, IdForm, key};
use serde_yaml::{Mapping, Value};

/// E11 / E12, byte for byte.
pub const TOOLS_NEED_PROVIDER: &str =
    "resources.tools requires at least one toolRuntime provider to be configured";
pub const SHIELDS_NEED_PROVIDER: &str =
    "resources.shields requires at least one safety provider to be configured";

const MODEL_TYPES: [&str; 3] = ["llm", "embedding", "rerank"];

pub fn apply(cx: &mut Context<'_>) {
    let Some(res) = &cx.spec.resources else {
        return;
    };
    models(cx, &res.models);
    shields(cx, &res.shields);
    tools(cx, &res.tools);
}

/// The CR's own ids for an API, in list order.
fn user_ids(spec: &Spec, api: &str) -> Vec<String> {
    spec.providers
        .iter()
        .filter(|l| l.api.config_name() == api)
        .flat_map(|l| l.items.iter().map(Spec::effective_id))
        .collect()
}

/// FR-040 / FR-044 default: the CR's first provider of the API, else the base config's only
/// (or first, for shields) unconditional one.
fn default_provider(cx: &Context<'_>, api: &str, only_if_single: bool) -> Option<String> {
    if let Some(first) = user_ids(cx.spec, api).into_iter().next() {
        return Some(first);
    }
    let literal: Vec<String> = provider_ids(&cx.doc, api)
        .into_iter()
        .filter_map(|f| match f {
            IdForm::Literal(s) => Some(s),
            IdForm::Conditional(..) => None,
        })
        .collect();
    match literal.as_slice() {
        [one] => Some(one.clone()),
        [first, ..] if !only_if_single => Some(first.clone()),
        _ => None,
    }
}

fn models(cx: &mut Context<'_>, models: &[ModelSpec]) {
    if models.is_empty() {
        return;
    }
    let forms = provider_ids(&cx.doc, "inference");
    let available: Vec<String> = forms.iter().map(|f| f.id().to_string()).collect();
    let default = default_provider(cx, "inference", true);
    let mut out: Vec<((String, String), Value)> = Vec::new();
    for m in models {
        let provider = match (&m.provider, &default) {
            (Some(p), _) => {
                if !available.contains(p) {
                    cx.d.error(
                        format!("{}.provider", m.path),
                        Reason::NotFound,
                        format!(
                            "provider \"{p}\" is not an inference provider of this config; available inference \
                             provider ids: {}",
                            list(&available)
                        ),
                    );
                    continue;
                }
                if let Some(IdForm::Conditional(_, var)) = forms.iter().find(|f| f.id() == p) {
                    cx.d.warn(format!(
                        "{}.provider: inference provider \"{p}\" only exists when env {var} is set (the base config \
                         writes ${{env.{var}:+{p}}}); set {var} in spec.workload.overrides.env or declare the provider \
                         in spec.providers.inference",
                        m.path
                    ));
                }
                p.clone()
            }
            (None, Some(p)) => p.clone(),
            (None, None) => {
                cx.d.error(
                    format!("{}.provider", m.path),
                    Reason::Required,
                    format!(
                        "no default inference provider: spec.providers.inference is empty and the base config has \
                         {}; set provider to one of: {}",
                        if forms.is_empty() { "none" } else { "several or only conditional ones" },
                        list(forms.iter().map(|f| match f {
                            IdForm::Literal(id) => id.clone(),
                            IdForm::Conditional(id, var) => format!("{id} (only when env {var} is set)"),
                        }))
                    ),
                );
                continue;
            }
        };
        let model_type = m.model_type.clone().unwrap_or_else(|| "llm".to_string());
        if !MODEL_TYPES.contains(&model_type.as_str()) {
            cx.d.error(
                format!("{}.modelType", m.path),
                Reason::NotSupported,
                format!(
                    "unsupported modelType \"{model_type}\": use one of {}",
                    list(MODEL_TYPES)
                ),
            );
            continue;
        }
        if model_type == "embedding" {
            cx.d.error(
                format!("{}.modelType", m.path),
                Reason::NotSupported,
                "llama-stack requires metadata.embedding_dimension for embedding models, which \
                 spec.resources.models cannot carry; register embedding models through overrideConfig",
            );
            continue;
        }
        if out.iter().any(|((n, p), _)| *n == m.name && *p == provider) {
            cx.d.error(
                format!("{}.name", m.path),
                Reason::Duplicate,
                format!(
                    "model \"{}\" is listed twice for provider \"{provider}\"",
                    m.name
                ),
            );
            continue;
        }
        let mut e = Mapping::new();
        e.insert(key("model_id"), key(&m.name));
        e.insert(key("provider_id"), key(&provider));
        e.insert(key("model_type"), key(&model_type));
        let mut meta = Mapping::new();
        if let Some(n) = m.context_length {
            meta.insert(key("context_length"), Value::Number(n.into()));
        }
        if let Some(q) = &m.quantization {
            meta.insert(key("quantization"), key(q));
        }
        if !meta.is_empty() {
            e.insert(key("metadata"), Value::Mapping(meta));
        }
        out.push(((m.name.clone(), provider), Value::Mapping(e)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let list = yaml::ensure_seq(cx.resources_mut(), "models");
    // Additive, but the CR wins over a base entry with the same identity.
    list.retain(|b| {
        !out.iter().any(|((n, p), _)| {
            yaml::str_of(b, "model_id") == Some(n) && yaml::str_of(b, "provider_id") == Some(p)
        })
    });
    list.extend(out.into_iter().map(|(_, v)| v));
}

/// The served identifier of a registered model named `name`: 0.7.3 serves config-registered
/// models as `<provider_id>/<provider_model_id or model_id>`, and llama-guard calls the model
/// its shield's `provider_shield_id` names (it defaults to the shield id). The pre-0.3 layout
/// served models by `model_id`.
fn guard_model(cx: &Context<'_>, name: &str) -> Option<String> {
    let models = cx.resources()?.get("models")?.as_sequence()?;
    let m = models
        .iter()
        .find(|m| yaml::str_of(m, "model_id") == Some(name))?;
    let pid = yaml::str_of(m, "provider_id").and_then(yaml::id_form)?;
    let served = yaml::str_of(m, "provider_model_id").unwrap_or(name);
    Some(if cx.legacy {
        served.to_string()
    } else {
        format!("{}/{served}", pid.id())
    })
}

fn provider_type_of(cx: &Context<'_>, api: &str, id: &str) -> Option<String> {
    let entries = cx.doc.get("providers")?.get(api)?.as_sequence()?;
    let e = entries
        .iter()
        .find(|e| yaml::provider_id_of(e).is_some_and(|f| f.id() == id))?;
    yaml::str_of(e, "provider_type").map(str::to_string)
}

fn shields(cx: &mut Context<'_>, shields: &[crate::spec::Named]) {
    if shields.is_empty() {
        return;
    }
    let provider = match default_provider(cx, "safety", false) {
        Some(p) => p,
        None => {
            cx.d.error(
                "spec.resources.shields",
                Reason::MissingProviderForResource,
                SHIELDS_NEED_PROVIDER,
            );
            return;
        }
    };
    let mut names: Vec<String> = Vec::new();
    for s in shields {
        if names.contains(&s.name) {
            cx.d.error(
                &s.path,
                Reason::Duplicate,
                format!("shield \"{}\" is listed twice", s.name),
            );
        } else {
            names.push(s.name.clone());
        }
    }
    names.sort();
    let targets: Vec<Option<String>> = names.iter().map(|n| guard_model(cx, n)).collect();
    let provider_type = provider_type_of(cx, "safety", &provider);
    for (n, t) in names.iter().zip(&targets) {
        if t.is_none()
            && provider_type.as_deref() == Some("inline::llama-guard")
            && !n.contains('/')
        {
            cx.d.warn(format!(
                "spec.resources.shields: llama-guard runs the model the shield names, and no model \"{n}\" is \
                 registered in spec.resources.models; register the guard model there, or name the shield by the \
                 model's served id (<provider id>/<model>)"
            ));
        }
    }
    let list = yaml::ensure_seq(cx.resources_mut(), "shields");
    list.retain(|b| {
        !names
            .iter()
            .any(|n| yaml::str_of(b, "shield_id") == Some(n))
    });
    for (n, target) in names.iter().zip(targets) {
        let mut e = Mapping::new();
        e.insert(key("shield_id"), key(n));
        e.insert(key("provider_id"), key(&provider));
        if let Some(t) = target {
            e.insert(key("provider_shield_id"), key(&t));
        }
        list.push(Value::Mapping(e));
    }
    // The default shield must exist once any shield is registered.
    let registered: Vec<String> = list
        .iter()
        .filter(|s| {
            yaml::str_of(s, "provider_id")
                .and_then(yaml::id_form)
                .is_some_and(|f| matches!(f, IdForm::Literal(_)))
        })
        .filter_map(|s| yaml::str_of(s, "shield_id").map(str::to_string))
        .collect();
    if let Some(Value::Mapping(safety)) = cx.doc.get_mut("safety") {
        let current = safety
            .get("default_shield_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(cur) = current.filter(|c| !registered.contains(c)) {
            let new = names[0].clone();
            safety.insert(key("default_shield_id"), key(&new));
            cx.d.warn(format!(
                "safety.default_shield_id was \"{cur}\", which is not registered unconditionally; it is now \"{new}\""
            ));
        }
    }
}

/// Tool groups of releases whose registry does not say which provider serves which group
/// (0.2.x wrote them in `tool_groups:`); read off the 0.2.14 distribution templates.
const LEGACY_TOOL_GROUPS: [(&str, &str); 5] = [
    ("remote::tavily-search", "builtin::websearch"),
    ("remote::brave-search", "builtin::websearch"),
    ("remote::bing-search", "builtin::websearch"),
    ("inline::rag-runtime", "builtin::rag"),
    ("remote::wolfram-alpha", "builtin::wolfram_alpha"),
];

/// True when the release registers tool groups from its toolRuntime providers (0.7.3);
/// older releases (0.2.x, 0.4.x) only register what the config's `tool_groups` lists.
pub fn auto_registers(cat: &Catalog) -> bool {
    cat.providers_of("tool_runtime")
        .iter()
        .any(|(_, i)| !i.tool_groups.is_empty())
}

/// The tool groups a toolRuntime provider type serves in this catalog's release.
pub fn groups_of(cat: &Catalog, provider_type: &str) -> Vec<String> {
    if auto_registers(cat) {
        return cat
            .provider("tool_runtime", provider_type)
            .map(|i| i.tool_groups.iter().map(|g| g.to_string()).collect())
            .unwrap_or_default();
    }
    LEGACY_TOOL_GROUPS
        .iter()
        .filter(|(t, _)| *t == provider_type)
        .map(|(_, g)| g.to_string())
        .collect()
}

/// Tools: llama-stack 0.7.3 registers tool groups from the toolRuntime providers (and ignores
/// `tool_groups`), so a tool is satisfied when a provider serving its group is present; older
/// releases also get the `tool_groups` entry.
fn tools(cx: &mut Context<'_>, tools: &[crate::spec::Named]) {
    if tools.is_empty() {
        return;
    }
    let present: Vec<(String, String)> = cx
        .doc
        .get("providers")
        .and_then(|p| p.get("tool_runtime"))
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|e| {
                    Some((
                        yaml::provider_id_of(e)?.id().to_string(),
                        yaml::str_of(e, "provider_type")?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if present.is_empty() {
        cx.d.error(
            "spec.resources.tools",
            Reason::MissingProviderForResource,
            TOOLS_NEED_PROVIDER,
        );
        return;
    }
    let Some(cat) = cx.catalog else { return };
    let all_types: Vec<String> = cat
        .types_of("tool_runtime")
        .into_iter()
        .map(str::to_string)
        .collect();
    let serving = |group: &str| -> Vec<String> {
        all_types
            .iter()
            .filter(|t| groups_of(cat, t).iter().any(|g| g == group))
            .cloned()
            .collect()
    };
    let mut known: Vec<String> = all_types.iter().flat_map(|t| groups_of(cat, t)).collect();
    known.sort();
    known.dedup();
    let mut wanted: Vec<(String, String)> = Vec::new();
    for t in tools {
        let Some(group) = tool_group(&t.name, &known) else {
            cx.d.error(
                &t.path,
                Reason::NotSupported,
                format!(
                    "unknown tool group \"{}\" for llama-stack {}; known: {} (MCP servers are registered at run time, \
                     not here)",
                    t.name,
                    cat.llama_stack_version,
                    list(&known)
                ),
            );
            continue;
        };
        if group != t.name && !t.name.contains("::") && group != format!("builtin::{}", t.name) {
            cx.d.warn(format!(
                "{}: \"{}\" is served as {group} in llama-stack {}",
                t.path, t.name, cat.llama_stack_version
            ));
        }
        let types = serving(&group);
        match present.iter().find(|(_, ty)| types.contains(ty)) {
            Some((id, _)) => wanted.push((group, id.clone())),
            None => cx.d.error(
                &t.path,
                Reason::MissingProviderForResource,
                format!(
                    "tool group {group} needs one of these toolRuntime providers: {}; the config has: {}",
                    list(&types),
                    list(present.iter().map(|(id, ty)| format!("{id} ({ty})")))
                ),
            ),
        }
    }
    if !auto_registers(cat) && !wanted.is_empty() {
        wanted.sort();
        wanted.dedup_by(|a, b| a.0 == b.0);
        let groups = yaml::ensure_seq(cx.resources_mut(), "tool_groups");
        groups.retain(|g| {
            !wanted
                .iter()
                .any(|(w, _)| yaml::str_of(g, "toolgroup_id") == Some(w))
        });
        for (group, id) in wanted {
            let mut e = Mapping::new();
            e.insert(key("toolgroup_id"), key(&group));
            e.insert(key("provider_id"), key(&id));
            groups.push(Value::Mapping(e));
        }
    }
}

/// `websearch` -> `builtin::websearch`; `rag` and `file-search` -> `builtin::file_search`.
fn tool_group(name: &str, known: &[String]) -> Option<String> {
    let mut candidates = vec![
        name.to_string(),
        format!("builtin::{name}"),
        format!("builtin::{}", name.replace('-', "_")),
    ];
    if matches!(name, "rag" | "builtin::rag") {
        candidates.push("builtin::file_search".to_string());
    }
    candidates.into_iter().find(|c| known.contains(c))
}

#[cfg(test)]
mod tests {
    use super::tool_group;

    #[test]
    fn tool_names() {
        let known = vec![
            "builtin::file_search".to_string(),
            "builtin::websearch".to_string(),
        ];
        assert_eq!(
            tool_group("websearch", &known).as_deref(),
            Some("builtin::websearch")
        );
        assert_eq!(
            tool_group("builtin::websearch", &known).as_deref(),
            Some("builtin::websearch")
        );
        assert_eq!(
            tool_group("rag", &known).as_deref(),
            Some("builtin::file_search")
        );
        assert_eq!(
            tool_group("file-search", &known).as_deref(),
            Some("builtin::file_search")
        );
        assert_eq!(tool_group("wolfram", &known), None);
    }
}

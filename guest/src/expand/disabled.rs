//! `spec.disabled` (FR-009, D8, E4): subtractive.

use super::Context;
use crate::error::{Reason, list};
use crate::spec::Api;
use crate::yaml;
use serde_yaml::Value;

pub fn apply(cx: &mut Context<'_>) {
    let mut done: Vec<Api> = Vec::new();
    for n in &cx.spec.disabled {
        let Some(api) = Api::from_field(&n.name) else {
            let hint = Api::fields()
                .into_iter()
                .find(|f| Api::from_field(f).map(Api::config_name) == Some(n.name.as_str()))
                .map(|f| format!(" (write {f}: the CR uses camelCase)"))
                .unwrap_or_default();
            cx.d.error(
                &n.path,
                Reason::NotSupported,
                format!(
                    "unknown API \"{}\"{hint}; allowed: {}",
                    n.name,
                    list(Api::fields())
                ),
            );
            continue;
        };
        if done.contains(&api) {
            cx.d.warn(format!(
                "{}: {} is listed twice in spec.disabled",
                n.path, n.name
            ));
            continue;
        }
        done.push(api);
        conflicts(cx, api);
        let cfg = api.config_name();
        let known = match cx.catalog {
            Some(c) => c.has_api(cfg),
            None => cx.doc.get("providers").and_then(|p| p.get(cfg)).is_some(),
        };
        if !known {
            cx.d.warn(format!(
                "{}: {} is not an API of {}; nothing to disable",
                n.path, n.name, cx.release
            ));
        }
        if let Some(Value::Mapping(p)) = cx.doc.get_mut("providers") {
            yaml::remove(p, cfg);
        }
        if let Some(Value::Sequence(apis)) = cx.doc.get_mut("apis") {
            apis.retain(|a| a.as_str() != Some(cfg));
        }
    }
}

/// E4 (exact text) for inline providers; the same rule for external ones.
fn conflicts(cx: &mut Context<'_>, api: Api) {
    let field = api.field();
    if cx
        .spec
        .providers
        .iter()
        .any(|l| l.api.api() == api && !l.items.is_empty())
    {
        cx.d.error(
            format!("spec.providers.{field}"),
            Reason::Conflict,
            format!(
                "spec.providers.{field} conflicts with spec.disabled: {field} API is disabled but has providers \
                 configured. Remove the provider configuration or remove '{field}' from the disabled list."
            ),
        );
    }
    for e in cx.spec.external_providers.iter().filter(|e| e.api == api) {
        cx.d.error(
            &e.path,
            Reason::Conflict,
            format!(
                "{} conflicts with spec.disabled: {field} API is disabled but has an external provider configured. \
                 Remove the external provider or remove '{field}' from the disabled list.",
                e.path
            ),
        );
    }
}

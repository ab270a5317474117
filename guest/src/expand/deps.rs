//! D1: API dependencies the server enforces at start-up ("required dependency ... is not
//! available"), checked on the final config. A gap the distribution's own base config
//! already has is the distribution's defect: a warning, so a name-only CR still generates.
//! A gap the CR causes is an error at the field that caused it.

use super::Context;
use crate::catalog::Catalog;
use crate::error::Reason;
use crate::spec::{Api, ProviderApi, Spec};
use crate::yaml::{self, IdForm};
use serde_yaml::{Mapping, Value};

/// (api, provider id, provider type, missing api)
type Gap = (String, String, String, String);

/// Every unconditional provider whose required API has no provider in `doc`.
pub fn gaps(doc: &Mapping, cat: &Catalog) -> Vec<Gap> {
    let mut out = Vec::new();
    let Some(Value::Mapping(providers)) = doc.get("providers") else {
        return out;
    };
    // APIs with at least one enabled entry, computed once.
    let served: Vec<&str> = providers
        .iter()
        .filter(|(_, e)| {
            e.as_sequence()
                .is_some_and(|s| s.iter().any(|p| yaml::provider_id_of(p).is_some()))
        })
        .filter_map(|(k, _)| k.as_str())
        .collect();
    for (api, entries) in providers {
        let (Some(api), Some(entries)) = (api.as_str(), entries.as_sequence()) else {
            continue;
        };
        for e in entries {
            // Conditional base providers stay off unless their env var is set: not our call.
            let Some(IdForm::Literal(id)) = yaml::provider_id_of(e) else {
                continue;
            };
            let Some(ptype) = yaml::str_of(e, "provider_type") else {
                continue;
            };
            let Some(info) = cat.provider(api, ptype) else {
                continue;
            };
            for dep in info.api_dependencies {
                let dep = cat.providable(dep);
                if cat.has_api(dep) && !served.contains(&dep) {
                    out.push((
                        api.to_string(),
                        id.clone(),
                        ptype.to_string(),
                        dep.to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// `base_gaps`: what [`gaps`] finds on the unmodified base config (asked only when needed).
pub fn check(cx: &mut Context<'_>, base_gaps: impl FnOnce(&Catalog) -> Vec<Gap>) {
    let Some(cat) = cx.catalog else { return };
    let found = gaps(&cx.doc, cat);
    if found.is_empty() {
        return;
    }
    let base_gaps = base_gaps(cat);
    for gap in found {
        let (api, id, ptype, dep) = &gap;
        let dep_field = field_of(dep);
        let api_field = field_of(api);
        let what = format!(
            "{api} provider \"{id}\" ({ptype}) needs {} {dep} provider and the config has none",
            article(dep)
        );
        if base_gaps.contains(&gap) {
            // spec.disabled is refused next to overrideConfig: the fix is in the ConfigMap.
            cx.d.warn(if cx.spec.override_config.is_some() {
                format!(
                    "the overrideConfig config.yaml is incomplete: {what}; the server will refuse to start unless \
                     the ConfigMap's config.yaml gets a {dep} provider or loses provider \"{id}\""
                )
            } else {
                format!(
                    "the distribution's base config is incomplete: {what}; the server will refuse to start unless \
                     you add spec.disabled: [{api_field}] or supply a complete config with overrideConfig"
                )
            });
            continue;
        }
        let user = cx
            .spec
            .providers
            .iter()
            .filter(|l| l.api.config_name() == api)
            .flat_map(|l| l.items.iter())
            .find(|p| Spec::effective_id(p) == *id);
        let disabled = cx.spec.disabled.iter().find(|n| n.name == dep_field);
        let can_add = ProviderApi::from_field(&dep_field).is_some();
        let add = if can_add {
            format!("add a provider under spec.providers.{dep_field}")
        } else {
            format!(
                "supply a complete config with overrideConfig (spec.providers has no {dep_field} field)"
            )
        };
        let (path, fix) = match (user, disabled) {
            (Some(p), Some(n)) => (
                format!("{}.provider", p.path),
                format!("remove '{dep_field}' from spec.disabled ({})", n.path),
            ),
            (Some(p), None) => (format!("{}.provider", p.path), add),
            (None, Some(n)) => (
                n.path.clone(),
                format!("keep {dep_field}, or also disable {api_field}"),
            ),
            (None, None) => (
                "spec.disabled".to_string(),
                format!("add {api_field} to spec.disabled, or {add}"),
            ),
        };
        cx.d.error(path, Reason::Conflict, format!("{what}: {fix}"));
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// config name -> CR spelling, for messages.
fn field_of(api: &str) -> String {
    Api::fields()
        .into_iter()
        .find(|f| Api::from_field(f).map(Api::config_name) == Some(api))
        .unwrap_or(api)
        .to_string()
}

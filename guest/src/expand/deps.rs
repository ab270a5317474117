//! D1: API dependencies the server enforces at start-up ("required dependency ... is not
//! available"), checked on the final config.

use super::Context;
use super::refs::provider_ids;
use crate::error::Reason;
use crate::spec::{Api, Spec};
use crate::yaml::{self, IdForm};
use serde_yaml::Value;

pub fn check(cx: &mut Context<'_>) {
    let Some(cat) = cx.catalog else { return };
    let Some(Value::Mapping(providers)) = cx.doc.get("providers") else {
        return;
    };
    let mut problems = Vec::new();
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
            for dep in &info.api_dependencies {
                let dep = cat.routing_tables.get(dep).unwrap_or(dep);
                if cat.has_api(dep) && provider_ids(&cx.doc, dep).is_empty() {
                    problems.push((api.to_string(), id.clone(), ptype.to_string(), dep.clone()));
                }
            }
        }
    }
    for (api, id, ptype, dep) in problems {
        let dep_field = field_of(&dep);
        let api_field = field_of(&api);
        let user = cx
            .spec
            .providers
            .iter()
            .filter(|l| l.api.config_name() == api)
            .flat_map(|l| l.items.iter())
            .find(|p| Spec::effective_id(p) == id);
        let disabled = cx.spec.disabled.iter().find(|n| n.name == dep_field);
        let (path, fix) = match (user, disabled) {
            (Some(p), Some(n)) => (
                format!("{}.provider", p.path),
                format!("remove '{dep_field}' from spec.disabled ({})", n.path),
            ),
            (Some(p), None) => (
                format!("{}.provider", p.path),
                format!("add a provider under spec.providers.{dep_field}"),
            ),
            (None, Some(n)) => (
                n.path.clone(),
                format!("keep {dep_field}, or also disable {api_field}"),
            ),
            (None, None) => (
                "spec.providers".to_string(),
                format!("add a provider under spec.providers.{dep_field}"),
            ),
        };
        cx.d.error(
            path,
            Reason::Conflict,
            format!("{api} provider \"{id}\" ({ptype}) needs a {dep} provider and the config has none: {fix}"),
        );
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

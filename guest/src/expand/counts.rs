//! `providerCount` and `resourceCount` of the final config (D12). Entries that only exist
//! when an env var is set (`${env.X:+id}`) are not counted: the operator does not set them.

use super::Context;
use crate::yaml::{self, IdForm};
use serde_yaml::Value;

pub fn count(cx: &Context<'_>) -> (u32, u32) {
    let literal = |v: &Value| matches!(yaml::provider_id_of(v), Some(IdForm::Literal(_)));
    let mut providers = 0u32;
    let mut groups: Vec<String> = Vec::new();
    if let Some(Value::Mapping(p)) = cx.doc.get("providers") {
        for (api, entries) in p {
            for e in entries
                .as_sequence()
                .into_iter()
                .flatten()
                .filter(|e| literal(e))
            {
                providers += 1;
                if api.as_str() == Some("tool_runtime")
                    && let (Some(cat), Some(t)) = (cx.catalog, yaml::str_of(e, "provider_type"))
                {
                    groups.extend(super::resources::groups_of(cat, t));
                }
            }
        }
    }
    groups.sort();
    groups.dedup();
    let mut resources = groups.len() as u32;
    if let Some(rr) = cx.resources() {
        if cx.legacy {
            // Older releases register tool groups from the config's own list.
            groups = rr
                .get("tool_groups")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter(|e| literal(e))
                .filter_map(|e| yaml::str_of(e, "toolgroup_id").map(str::to_string))
                .collect();
            groups.sort();
            groups.dedup();
            resources = groups.len() as u32;
        }
        for list in ["models", "shields"] {
            let n = rr
                .get(list)
                .and_then(Value::as_sequence)
                .map(|s| s.iter().filter(|e| literal(e)).count());
            resources += n.unwrap_or(0) as u32;
        }
    }
    (providers, resources)
}

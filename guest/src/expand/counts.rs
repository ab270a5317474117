//! `providerCount` and `resourceCount` of the final config (D12). Entries that only exist
//! when an env var is set (`${env.X:+id}`) are not counted: the operator does not set them.

use super::Context;
use super::resources::{auto_registers, groups_of};
use crate::yaml::{self, IdForm};
use serde_yaml::Value;

fn literal(v: &Value) -> bool {
    matches!(yaml::provider_id_of(v), Some(IdForm::Literal(_)))
}

pub fn count(cx: &Context<'_>) -> (u32, u32) {
    let auto = cx.catalog.filter(|c| auto_registers(c));
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
                // 0.7.3 registers tool groups from the toolRuntime providers themselves.
                if let (Some(cat), Some("tool_runtime"), Some(t)) =
                    (auto, api.as_str(), yaml::str_of(e, "provider_type"))
                {
                    groups.extend(groups_of(cat, t));
                }
            }
        }
    }
    let rr = cx.resources();
    if auto.is_none() {
        // Older releases register what the config's own tool_groups list says.
        groups = rr
            .and_then(|r| r.get("tool_groups"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter(|e| literal(e))
            .filter_map(|e| yaml::str_of(e, "toolgroup_id").map(str::to_string))
            .collect();
    }
    groups.sort();
    groups.dedup();
    let mut resources = groups.len() as u32;
    for list in ["models", "shields"] {
        let n = rr
            .and_then(|r| r.get(list))
            .and_then(Value::as_sequence)
            .map(|s| s.iter().filter(|e| literal(e)).count());
        resources += n.unwrap_or(0) as u32;
    }
    (providers, resources)
}

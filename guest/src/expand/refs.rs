//! D6: references in the base config to providers that replacement or `disabled` removed are
//! cleaned (with a warning), never left dangling for the server to trip over.

use super::Context;
use crate::yaml::{self, IdForm};
use serde_yaml::{Mapping, Value};

/// Ids of the providers under `api` (literal and `${env.X:+id}` ones).
pub fn provider_ids(doc: &Mapping, api: &str) -> Vec<IdForm> {
    doc.get("providers")
        .and_then(|p| p.get(api))
        .and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(yaml::provider_id_of).collect())
        .unwrap_or_default()
}

fn has_id(ids: &[IdForm], id: &str) -> bool {
    ids.iter().any(|f| f.id() == id)
}

/// Resource list -> (the API its `provider_id` points into, the entry's id key).
const RESOURCE_APIS: [(&str, &str, &str); 7] = [
    ("models", "inference", "model_id"),
    ("shields", "safety", "shield_id"),
    ("vector_stores", "vector_io", "vector_store_id"),
    ("datasets", "datasetio", "dataset_id"),
    ("scoring_fns", "scoring", "scoring_fn_id"),
    ("benchmarks", "eval", "benchmark_id"),
    ("tool_groups", "tool_runtime", "toolgroup_id"),
];

pub fn clean(cx: &mut Context<'_>) {
    vector_stores(cx);
    resources(cx);
    if provider_ids(&cx.doc, "safety").is_empty() && cx.doc.contains_key("safety") {
        yaml::remove(&mut cx.doc, "safety");
    }
}

fn vector_stores(cx: &mut Context<'_>) {
    if !cx.doc.contains_key("vector_stores") {
        return;
    }
    let vio = provider_ids(&cx.doc, "vector_io");
    if vio.is_empty() {
        yaml::remove(&mut cx.doc, "vector_stores");
        return;
    }
    let inference = provider_ids(&cx.doc, "inference");
    let user_vio: Option<String> = cx
        .spec
        .providers
        .iter()
        .find(|l| l.api.config_name() == "vector_io")
        // The lowest id, not the first: nothing makes vectorIo list order meaningful (NFR-001).
        .and_then(|l| l.items.iter().map(crate::spec::Spec::effective_id).min());
    let mut warnings = Vec::new();
    if let Some(Value::Mapping(vs)) = cx.doc.get_mut("vector_stores") {
        if let Some(id) = vs
            .get("default_provider_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            && !has_id(&vio, &id)
        {
            match &user_vio {
                Some(new) => {
                    vs.insert(yaml::key("default_provider_id"), yaml::key(new));
                    warnings.push(format!(
                            "vector_stores.default_provider_id pointed at \"{id}\", which spec.providers.vectorIo \
                             replaced; it now points at \"{new}\""
                        ));
                }
                None => {
                    yaml::remove(vs, "default_provider_id");
                    warnings.push(format!(
                            "vector_stores.default_provider_id pointed at \"{id}\", which is no longer in the config; removed"
                        ));
                }
            }
        }
        for k in ["default_embedding_model", "default_reranker_model"] {
            let dangling = vs
                .get(k)
                .and_then(|m| yaml::str_of(m, "provider_id"))
                .filter(|id| !has_id(&inference, id))
                .map(str::to_string);
            if let Some(id) = dangling {
                yaml::remove(vs, k);
                warnings.push(format!(
                    "vector_stores.{k} used inference provider \"{id}\", which is no longer in the config; removed"
                ));
            }
        }
    }
    for w in warnings {
        cx.d.warn(w);
    }
}

fn resources(cx: &mut Context<'_>) {
    let ids: Vec<(&str, &str, Vec<IdForm>)> = RESOURCE_APIS
        .iter()
        .map(|(list, api, id_key)| (*list, *id_key, provider_ids(&cx.doc, api)))
        .collect();
    let prefix = if cx.legacy {
        ""
    } else {
        "registered_resources."
    };
    let mut warnings = Vec::new();
    let has_container = cx.legacy || cx.doc.contains_key("registered_resources");
    if has_container {
        let rr = cx.resources_mut();
        for (list, id_key, present) in ids {
            let Some(Value::Sequence(items)) = rr.get_mut(list) else {
                continue;
            };
            items.retain(|item| {
                let Some(pid) = yaml::str_of(item, "provider_id") else { return true };
                let Some(form) = yaml::id_form(pid) else { return true };
                let keep = has_id(&present, form.id());
                if !keep {
                    let name = yaml::str_of(item, id_key).unwrap_or_default();
                    warnings.push(format!(
                        "{prefix}{list}: \"{name}\" used provider \"{}\", which is no longer in the config; removed",
                        form.id()
                    ));
                }
                keep
            });
        }
    }
    for w in warnings {
        cx.d.warn(w);
    }
}

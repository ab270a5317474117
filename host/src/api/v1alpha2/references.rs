//! Which Secret keys a v1alpha2 spec references, with their field paths: the validating
//! webhook looks them up, the controller maps Secret events to the CRs that use them.

use serde_json::Value;

/// Every `{secretKeyRef: {name, key}}` of a spec (as JSON): (path of `.name`, name, key).
pub fn secret_key_refs(spec: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut push = |path: String, v: &Value| {
        if let (Some(n), Some(k)) = (
            v["secretKeyRef"]["name"].as_str(),
            v["secretKeyRef"]["key"].as_str(),
        ) {
            out.push((
                format!("{path}.secretKeyRef.name"),
                n.to_string(),
                k.to_string(),
            ));
        }
    };
    if let Some(providers) = spec["providers"].as_object() {
        for (api, list) in providers {
            for (i, p) in list.as_array().into_iter().flatten().enumerate() {
                push(format!("spec.providers.{api}[{i}].apiKey"), &p["apiKey"]);
                for (field, r) in p["secretRefs"].as_object().into_iter().flatten() {
                    push(format!("spec.providers.{api}[{i}].secretRefs.{field}"), r);
                }
            }
        }
    }
    push(
        "spec.storage.kv.password".into(),
        &spec["storage"]["kv"]["password"],
    );
    push(
        "spec.storage.sql.connectionString".into(),
        &spec["storage"]["sql"]["connectionString"],
    );
    out
}

//! A whole `LlamaStackDistribution` object -> a [`GenerateRequest`]. Shared by the CLI, the
//! golden tests and (later) the component, so they read CR files the same way.

use crate::request::GenerateRequest;
use serde_json::Value as Json;

/// Accepts a `llamastack.io/v1alpha2` object (or a bare spec) and returns a request with its
/// name and spec filled in.
pub fn request_from_object(doc: Json) -> Result<GenerateRequest, String> {
    let Json::Object(mut obj) = doc else {
        return Err("expected a LlamaStackDistribution object".into());
    };
    if let Some(kind) = obj.get("kind").and_then(Json::as_str)
        && kind != "LlamaStackDistribution"
    {
        return Err(format!("kind is {kind}, expected LlamaStackDistribution"));
    }
    match obj.get("apiVersion").and_then(Json::as_str) {
        None | Some("llamastack.io/v1alpha2") => {}
        Some("llamastack.io/v1alpha1") => {
            return Err("llamastack.io/v1alpha1 objects have no generated config (they mount spec.server.userConfig \
                        or the image's own); write the spec as llamastack.io/v1alpha2"
                .into());
        }
        Some(other) => return Err(format!("apiVersion {other} is not llamastack.io/v1alpha2")),
    }
    if !obj.contains_key("spec") {
        return Ok(GenerateRequest {
            spec: Json::Object(obj),
            ..Default::default()
        });
    }
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Json::as_str)
        .map(str::to_string);
    let spec = obj.remove("spec").unwrap_or_default();
    Ok(GenerateRequest {
        name,
        spec,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_and_bare_specs() {
        let r = request_from_object(
            json!({"apiVersion": "llamastack.io/v1alpha2", "kind": "LlamaStackDistribution",
            "metadata": {"name": "a"}, "spec": {"distribution": {"name": "starter"}}}),
        )
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("a"));
        assert!(r.spec.get("distribution").is_some());
        let r = request_from_object(json!({"distribution": {"name": "starter"}})).unwrap();
        assert_eq!(r.name, None);
        assert!(
            request_from_object(json!({"apiVersion": "llamastack.io/v1alpha1", "spec": {}}))
                .is_err()
        );
        assert!(request_from_object(json!({"kind": "Pod"})).is_err());
        assert!(request_from_object(json!({"apiVersion": "v1"})).is_err());
        assert!(request_from_object(json!([1])).is_err());
    }
}

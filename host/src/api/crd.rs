//! The one multi-version CRD (both served, v1alpha2 stored), printed by
//! `llama-stack-operator crds` and committed under `deploy/crd/` (drift-checked by tests).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
    JSONSchemaPropsOrBool, ServiceReference, WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;
use kube::core::crd::merge_crds;

/// The version objects are stored in: the hub of conversion (FR-081).
pub const STORAGE_VERSION: &str = "v1alpha2";
/// Path of the conversion endpoint on the operator's webhook server.
pub const CONVERSION_PATH: &str = "/convert";

#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("failed to merge the CRD versions: {0}")]
    Merge(String),
    #[error("failed to encode the CRD: {0}")]
    Encode(String),
}

/// The CRD with both versions. Conversion is `None` (the API server only rewrites
/// `apiVersion`) until the operator's webhook is configured with
/// [`with_conversion_webhook`]. Under `None` a v1alpha1 object is accepted but read back
/// through the stored v1alpha2 schema, which prunes its fields: v1alpha1 users need the
/// webhook.
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    let mut crd = merge_crds(
        vec![
            super::v1alpha1::LlamaStackDistribution::crd(),
            super::v1alpha2::LlamaStackDistribution::crd(),
        ],
        STORAGE_VERSION,
    )
    .map_err(|e| CrdError::Merge(e.to_string()))?;
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "None".into(),
        webhook: None,
    });
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            unwrap_descriptions(schema);
        }
    }
    Ok(crd)
}

/// Doc comments arrive with their source line breaks; `kubectl explain` wraps text itself,
/// so a break inside a paragraph would show as a ragged line. Paragraph breaks stay.
fn unwrap_descriptions(schema: &mut JSONSchemaProps) {
    if let Some(d) = schema.description.as_mut() {
        *d = d
            .split("\n\n")
            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        unwrap_descriptions(child);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        unwrap_descriptions(items);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
        unwrap_descriptions(extra);
    }
}

/// Points conversion at the operator's webhook Service (path [`CONVERSION_PATH`]).
pub fn with_conversion_webhook(
    crd: CustomResourceDefinition,
    service: ServiceReference,
    ca_bundle: Option<Vec<u8>>,
) -> CustomResourceDefinition {
    with_conversion_client(
        crd,
        WebhookClientConfig {
            service: Some(ServiceReference {
                path: Some(CONVERSION_PATH.into()),
                ..service
            }),
            ca_bundle: ca_bundle.map(k8s_openapi::ByteString),
            url: None,
        },
    )
}

/// Points conversion at any webhook endpoint (a URL for an operator outside the cluster).
pub fn with_conversion_client(
    mut crd: CustomResourceDefinition,
    client: WebhookClientConfig,
) -> CustomResourceDefinition {
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            conversion_review_versions: vec!["v1".into()],
            client_config: Some(client),
        }),
    });
    crd
}

/// The CRD as YAML, as committed under `deploy/crd/`.
pub fn crd_yaml() -> Result<String, CrdError> {
    let crd = crd()?;
    serde_yaml::to_string(&crd).map_err(|e| CrdError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn versions() -> Vec<(String, Value)> {
        let crd = crd().expect("the CRD builds");
        crd.spec
            .versions
            .iter()
            .map(|v| {
                let schema = serde_json::to_value(
                    v.schema
                        .as_ref()
                        .and_then(|s| s.open_api_v3_schema.as_ref())
                        .expect("every version has a schema"),
                )
                .expect("schema encodes");
                (v.name.clone(), schema)
            })
            .collect()
    }

    #[test]
    fn both_versions_served_v1alpha2_stored_with_status_and_short_name() {
        let crd = crd().expect("builds");
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("llamastackdistributions.llamastack.io")
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["llsd".to_string()]));
        let names: Vec<(&str, bool, bool)> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage))
            .collect();
        assert_eq!(names, [("v1alpha2", true, true), ("v1alpha1", true, false)]);
        for v in &crd.spec.versions {
            assert!(
                v.subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some(),
                "{} has the status subresource",
                v.name
            );
        }
        let v2 = &crd.spec.versions[0];
        let cols: Vec<(&str, i32)> = v2
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.priority.unwrap_or(0)))
            .collect();
        assert_eq!(
            cols,
            [
                ("Phase", 0),
                ("Providers", 0),
                ("Available", 0),
                ("Age", 0),
                ("Distribution", 1),
                ("Config", 1),
                ("Server", 1)
            ]
        );
        assert_eq!(
            crd.spec.conversion.as_ref().map(|c| c.strategy.as_str()),
            Some("None")
        );
    }

    #[test]
    fn conversion_webhook_is_one_call_away() {
        let crd = with_conversion_webhook(
            crd().expect("builds"),
            ServiceReference {
                name: "llama-stack-operator-webhook".into(),
                namespace: "llama-stack-operator-system".into(),
                path: None,
                port: Some(443),
            },
            Some(b"PEM".to_vec()),
        );
        let conv = crd.spec.conversion.expect("set");
        assert_eq!(conv.strategy, "Webhook");
        let hook = conv.webhook.expect("webhook");
        assert_eq!(hook.conversion_review_versions, ["v1"]);
        let cc = hook.client_config.expect("client config");
        assert_eq!(
            cc.service.and_then(|s| s.path).as_deref(),
            Some(CONVERSION_PATH)
        );
        assert_eq!(cc.ca_bundle.map(|b| b.0), Some(b"PEM".to_vec()));
    }

    /// What the API server requires of a CRD schema ("structural"): every node typed (or
    /// explicitly free-form / int-or-string), no references, no type inside logic keywords.
    fn structural(path: &str, s: &Value, problems: &mut Vec<String>) {
        let Some(m) = s.as_object() else {
            problems.push(format!("{path}: not an object"));
            return;
        };
        for key in ["$ref", "definitions", "$defs", "$schema"] {
            if m.contains_key(key) {
                problems.push(format!("{path}: has {key}"));
            }
        }
        let free = m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
        let int_or_string = m.get("x-kubernetes-int-or-string") == Some(&json!(true));
        if !m.contains_key("type") && !free && !int_or_string {
            problems.push(format!("{path}: no type"));
        }
        if let Some(t) = m.get("type")
            && !t.is_string()
        {
            problems.push(format!("{path}: type {t} is not a single type"));
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(items)) = m.get(key) {
                for (i, item) in items.iter().enumerate() {
                    if item.get("type").is_some() && !int_or_string {
                        problems.push(format!("{path}.{key}[{i}]: types inside {key}"));
                    }
                }
            }
        }
        if let Some(Value::Object(props)) = m.get("properties") {
            for (k, v) in props {
                structural(&format!("{path}.{k}"), v, problems);
            }
        }
        if let Some(items) = m.get("items") {
            structural(&format!("{path}[]"), items, problems);
        }
        if let Some(ap) = m.get("additionalProperties")
            && ap.is_object()
        {
            structural(&format!("{path}{{}}"), ap, problems);
        }
    }

    #[test]
    fn schemas_are_structural() {
        for (version, schema) in versions() {
            let mut problems = Vec::new();
            structural(&version, &schema, &mut problems);
            assert!(problems.is_empty(), "{version}: {problems:#?}");
        }
    }

    /// Descriptions become `kubectl explain`: every field of ours has one.
    fn described(path: &str, s: &Value, missing: &mut Vec<String>) {
        if let Some(Value::Object(props)) = s.get("properties") {
            for (k, v) in props {
                let p = format!("{path}.{k}");
                if v["description"]
                    .as_str()
                    .is_none_or(|d| d.trim().is_empty())
                {
                    missing.push(p.clone());
                }
                described(&p, v, missing);
            }
        }
        if let Some(items) = s.get("items") {
            described(&format!("{path}[]"), items, missing);
        }
        if let Some(ap) = s.get("additionalProperties") {
            described(&format!("{path}{{}}"), ap, missing);
        }
    }

    #[test]
    fn descriptions_have_no_line_breaks_inside_paragraphs() {
        let yaml = crd_yaml().expect("builds");
        let crd: Value = serde_yaml::from_str(&yaml).expect("parses");
        fn walk(v: &Value, bad: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(d)) = m.get("description")
                        && d.replace("\n\n", "").contains('\n')
                    {
                        bad.push(d.clone());
                    }
                    m.values().for_each(|c| walk(c, bad));
                }
                Value::Array(a) => a.iter().for_each(|c| walk(c, bad)),
                _ => {}
            }
        }
        let mut bad = Vec::new();
        walk(&crd, &mut bad);
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn every_field_has_a_description() {
        for (version, schema) in versions() {
            let mut missing = Vec::new();
            described(
                version.as_str(),
                &schema["properties"]["spec"],
                &mut missing,
            );
            described(
                version.as_str(),
                &schema["properties"]["status"],
                &mut missing,
            );
            assert!(
                missing.is_empty(),
                "{version}: no description on {missing:#?}"
            );
        }
    }

    /// Full manifests of each version survive deserialize + serialize unchanged.
    #[test]
    fn both_versions_round_trip_through_serde() {
        let v2 = json!({
            "apiVersion": "llamastack.io/v1alpha2", "kind": "LlamaStackDistribution",
            "metadata": {"name": "demo", "namespace": "team-a"},
            "spec": {
                "distribution": {"name": "starter"},
                "providers": {"inference": [{"id": "a", "provider": "vllm", "endpoint": "http://a:8000/v1",
                    "apiKey": {"secretKeyRef": {"name": "s", "key": "k"}},
                    "secretRefs": {"password": {"secretKeyRef": {"name": "s", "key": "p"}}},
                    "settings": {"max_tokens": 8192, "nested": {"x": [1, 2]}}}]},
                "resources": {"models": [{"name": "m", "provider": "a", "contextLength": 8192, "modelType": "llm", "quantization": "fp8"}],
                              "tools": ["websearch"], "shields": ["guard"]},
                "storage": {"kv": {"type": "redis", "endpoint": "redis://r:6379", "password": {"secretKeyRef": {"name": "r", "key": "pw"}}},
                            "sql": {"type": "postgres", "secretRef": {"name": "pg"}}},
                "disabled": ["eval"],
                "networking": {"port": 8321, "tls": {"enabled": true, "secretName": "tls", "caBundle": {"configMapName": "ca"}},
                               "expose": {"enabled": true, "hostname": "h.example.com"}, "allowedFrom": {"namespaces": ["x"]}},
                "workload": {"replicas": 2, "workers": 2, "resources": {"requests": {"cpu": "1"}},
                             "autoscaling": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 80},
                             "storage": {"size": "10Gi"}, "podDisruptionBudget": {"minAvailable": "50%"},
                             "overrides": {"serviceAccountName": "sa", "env": [{"name": "A", "value": "1"}], "terminationGracePeriodSeconds": 5}},
                "externalProviders": {"inference": [{"providerId": "ext", "image": "i:1", "imagePullPolicy": "IfNotPresent", "config": {"k": "v"}}]}},
            "status": {"phase": "Ready", "observedGeneration": 2, "availableReplicas": 1,
                       "serviceURL": "http://demo-service.team-a.svc.cluster.local:8321",
                       "resolvedDistribution": {"name": "starter", "image": "img@sha256:abc", "configSource": "embedded", "configHash": "sha256:def"},
                       "configGeneration": {"configMapName": "demo-config-0123abcd", "providerCount": 5, "resourceCount": 2, "configVersion": 2}}
        });
        let typed: crate::api::v1alpha2::LlamaStackDistribution =
            serde_json::from_value(v2.clone()).expect("v1alpha2 parses");
        assert_eq!(serde_json::to_value(&typed).expect("encodes"), v2);

        let v1 = json!({
            "apiVersion": "llamastack.io/v1alpha1", "kind": "LlamaStackDistribution",
            "metadata": {"name": "old"},
            "spec": {"replicas": 1,
                "server": {"distribution": {"name": "starter"},
                    "containerSpec": {"name": "llama-stack", "port": 8321, "env": [{"name": "X", "value": "y"}], "command": ["a"], "args": ["b"]},
                    "workers": 2,
                    "podOverrides": {"serviceAccountName": "sa", "terminationGracePeriodSeconds": 0,
                                     "volumes": [{"name": "v", "emptyDir": {}}], "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
                    "podDisruptionBudget": {"maxUnavailable": 1},
                    "autoscaling": {"minReplicas": 1, "maxReplicas": 5, "targetMemoryUtilizationPercentage": 70},
                    "storage": {"size": "20Gi", "mountPath": "/home/lls/.lls"},
                    "userConfig": {"configMapName": "cfg", "configMapNamespace": "ns"},
                    "tlsConfig": {"caBundle": {"configMapName": "ca", "configMapKeys": ["a.crt"]}}},
                "network": {"exposeRoute": true, "allowedFrom": {"labels": ["team"]}}},
            "status": {"phase": "Ready", "version": {"operatorVersion": "v0.5.0"}, "availableReplicas": 1,
                       "distributionConfig": {"activeDistribution": "starter",
                           "providers": [{"api": "inference", "provider_id": "ollama", "provider_type": "remote::ollama",
                                          "config": {"url": "http://o"}, "health": {"status": "OK", "message": ""}}]}}
        });
        let typed: crate::api::v1alpha1::LlamaStackDistribution =
            serde_json::from_value(v1.clone()).expect("v1alpha1 parses");
        assert_eq!(serde_json::to_value(&typed).expect("encodes"), v1);
    }

    #[test]
    fn cel_rules_are_in_the_schema_where_the_contract_puts_them() {
        let (_, v2) = versions()
            .into_iter()
            .find(|(n, _)| n == "v1alpha2")
            .expect("v1alpha2");
        let rules = |s: &Value| -> Vec<String> {
            s["x-kubernetes-validations"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r["rule"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let spec = &v2["properties"]["spec"];
        // 4 overrideConfig exclusivity + 5 disabled conflicts + one of name/image.
        assert_eq!(rules(spec).len(), 10);
        // 5 per-type id rules + unique ids.
        assert_eq!(rules(&spec["properties"]["providers"]).len(), 6);
        assert_eq!(rules(&spec["properties"]["distribution"]).len(), 1);
        assert_eq!(
            rules(&spec["properties"]["networking"]["properties"]["tls"]).len(),
            1
        );
        assert_eq!(
            rules(&spec["properties"]["storage"]["properties"]["kv"]).len(),
            1
        );
        assert_eq!(
            rules(&spec["properties"]["storage"]["properties"]["sql"]).len(),
            2
        );
        let disabled = &spec["properties"]["disabled"]["items"]["enum"];
        assert!(
            disabled
                .as_array()
                .is_some_and(|a| a.contains(&json!("postTraining")))
        );
    }
}

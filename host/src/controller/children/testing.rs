//! Test fixtures shared by the builders' unit tests.

use super::{COMPONENT_SERVER, Inputs, common_labels};
use crate::api::v1alpha2::LlamaStackDistribution;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

pub const NAME: &str = "demo";
pub const NAMESPACE: &str = "team";
pub const UID: &str = "0f5c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
pub const IMAGE: &str = "docker.io/llamastack/distribution-starter:0.3.0";
pub const CONFIG_MAP: &str = "demo-config-0123abcd";
pub const CONFIG_HASH: &str = "0123abcd00000000000000000000000000000000000000000000000000000000";
pub const OPERATOR_NS: &str = "llama-stack-operator-system";

/// A stored CR `team/demo` with the given spec.
pub fn cr(spec: Value) -> LlamaStackDistribution {
    serde_json::from_value(json!({
        "apiVersion": "llamastack.io/v1alpha2",
        "kind": "LlamaStackDistribution",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": UID},
        "spec": spec,
    }))
    .expect("test CR deserializes")
}

/// A CR with only a distribution and the given `spec.workload`.
pub fn with_workload(workload: Value) -> LlamaStackDistribution {
    cr(json!({"distribution": {"name": "starter"}, "workload": workload}))
}

/// A CR with only a distribution and the given `spec.networking`.
pub fn with_networking(networking: Value) -> LlamaStackDistribution {
    cr(json!({"distribution": {"name": "starter"}, "networking": networking}))
}

/// A CR with nothing but a distribution.
pub fn minimal() -> LlamaStackDistribution {
    cr(json!({"distribution": {"name": "starter"}}))
}

/// Inputs with everything optional off.
pub fn inputs(cr: &LlamaStackDistribution) -> Inputs<'_> {
    Inputs {
        cr,
        image: IMAGE,
        config_map: CONFIG_MAP,
        config_hash: CONFIG_HASH,
        secret_env: &[],
        ca_bundle_hash: None,
        operator_namespace: OPERATOR_NS,
        network_policy_enabled: false,
        ingress_domain: None,
        external: &[],
    }
}

/// Asserts what every owned object carries: its name, the CR namespace, the common labels for
/// `component` and one controller owner reference to the CR.
pub fn assert_owned(meta: &ObjectMeta, name: &str, component: &str) {
    assert_eq!(meta.name.as_deref(), Some(name));
    assert_eq!(meta.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(meta.labels.as_ref(), Some(&common_labels(NAME, component)));
    let owners = meta.owner_references.as_deref().unwrap_or_default();
    assert_eq!(owners.len(), 1, "one owner reference: {owners:?}");
    let o = &owners[0];
    assert_eq!(
        (o.api_version.as_str(), o.kind.as_str()),
        ("llamastack.io/v1alpha2", "LlamaStackDistribution")
    );
    assert_eq!((o.name.as_str(), o.uid.as_str()), (NAME, UID));
    assert_eq!(o.controller, Some(true));
    assert_eq!(o.block_owner_deletion, Some(true));
    assert!(meta.annotations.is_none(), "builders set no annotations");
}

/// `assert_owned` for the server-facing objects.
pub fn assert_server_owned(meta: &ObjectMeta, name: &str) {
    assert_owned(meta, name, COMPONENT_SERVER);
}

//! Pure builders of the objects a LlamaStackDistribution owns (seed tasks 3.2–3.8): given the
//! CR and what the reconcile resolved, each returns the desired object, or `None` when the CR
//! does not want it. No I/O here; the reconcile applies what these return.
//!
//! Names and labels follow the v1alpha1 operator (`../shared/reference/v1alpha1-behavior.md`
//! §3.4), so a v1alpha1 resource keeps its object names after the upgrade.

pub mod config_map;
pub mod deployment;
pub mod external;
pub mod hpa;
pub mod ingress;
pub mod names;
pub mod network_policy;
pub mod pdb;
pub mod pvc;
mod security;
pub mod service;
pub mod service_account;
#[cfg(test)]
pub(crate) mod testing;

use crate::api::v1alpha2::{DEFAULT_PORT, LlamaStackDistribution, TlsSpec, WorkloadSpec};
use external::ExternalInstall;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use llama_stack_config::SecretEnv;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Label and field-manager value of everything the operator writes.
pub const MANAGER: &str = "llama-stack-operator";
/// Pod template annotation carrying the full config hash (D10): `sha256:<hex>`.
pub const CONFIG_HASH_ANNOTATION: &str = "llamastack.io/config-hash";
/// Pod template annotation carrying the hash of the CA bundle the pods trust.
pub const CA_BUNDLE_HASH_ANNOTATION: &str = "llamastack.io/ca-bundle-hash";
/// Where the generated config.yaml is mounted (file, through subPath).
pub const CONFIG_PATH: &str = "/etc/llama-stack/config.yaml";
/// Where the TLS Secret is mounted (D13); must match the engine's `server.tls_*` paths.
pub const TLS_DIR: &str = "/etc/llama-stack/tls";
/// Where the managed CA bundle is mounted; `SSL_CERT_FILE` points into it.
pub const CA_BUNDLE_DIR: &str = "/etc/ssl/certs/ca-bundle";
/// Data key of the generated and the CA bundle ConfigMaps.
pub const CONFIG_KEY: &str = "config.yaml";
pub const CA_BUNDLE_KEY: &str = "ca-bundle.crt";
/// Annotation the reconcile stamps with `desired_hash` of what it wrote, so an unchanged
/// desired object costs no write. Builders never set it (the hash covers their output).
pub const APPLIED_HASH_ANNOTATION: &str = "llamastack.io/applied-hash";
/// `app.kubernetes.io/component` of the objects that run and reach the server.
pub const COMPONENT_SERVER: &str = "server";
/// Name of the server's container port; the Service and probes refer to it.
pub const PORT_NAME: &str = "http";

/// Everything besides the CR that decides the owned objects.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub cr: &'a LlamaStackDistribution,
    /// The image to run (after image-overrides, D15).
    pub image: &'a str,
    /// The generated ConfigMap (`{cr}-config-{hash8}`, D10).
    pub config_map: &'a str,
    /// Full lowercase hex sha256 of config.yaml.
    pub config_hash: &'a str,
    /// Env vars filled from Secret keys, in the engine's (stable) order.
    pub secret_env: &'a [SecretEnv],
    /// sha256 hex of the managed CA bundle's content, when the CR has a caBundle.
    pub ca_bundle_hash: Option<&'a str>,
    /// The operator's own namespace (NetworkPolicy lets it in).
    pub operator_namespace: &'a str,
    /// Feature flag `enableNetworkPolicy` of the operator ConfigMap.
    pub network_policy_enabled: bool,
    /// Domain for generated Ingress hostnames (`{cr}-{ns}.{domain}`); None leaves the host
    /// out, as the v1alpha1 operator did.
    pub ingress_domain: Option<&'a str>,
    /// External providers to install, in CRD order (D16, spec 001 FR-011..015); empty leaves
    /// the Deployment exactly as without the feature.
    pub external: &'a [ExternalInstall],
}

/// Labels on every owned object (constitution §8.2).
pub fn common_labels(cr_name: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".into(), "llama-stack".into()),
        ("app.kubernetes.io/instance".into(), cr_name.into()),
        ("app.kubernetes.io/managed-by".into(), MANAGER.into()),
        ("app.kubernetes.io/part-of".into(), "llama-stack".into()),
        ("app.kubernetes.io/component".into(), component.into()),
    ])
}

/// The label every server pod carries, whatever its CR (the operator's pod watch selects it).
pub const POD_APP_SELECTOR: &str = "app=llama-stack";
/// The label naming a pod's CR.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// The pod selector (unchanged from v1alpha1, so existing Deployments keep their pods).
pub fn selector_labels(cr_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".into(), "llama-stack".into()),
        (INSTANCE_LABEL.into(), cr_name.into()),
    ])
}

/// Why a builder could not produce an object. The API server fills these fields, so they are
/// missing only for a CR that was never stored (or a bug in the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// `metadata.{what}` (name, namespace or uid) is absent.
    #[error("the LlamaStackDistribution has no metadata.{what}")]
    MissingMetadata { what: &'static str },
    /// A spec field required by another one is absent (admission normally rejects this).
    #[error("the LlamaStackDistribution has no {field}")]
    MissingField { field: &'static str },
}

/// Lowercase hex sha256 of the object's JSON: what the reconcile compares against
/// `APPLIED_HASH_ANNOTATION` to skip unchanged writes.
pub fn desired_hash(obj: &impl serde::Serialize) -> String {
    // Serializing k8s-openapi types cannot fail (string map keys only); should it ever, the
    // hash of nothing matches no object we wrote, so the write simply happens.
    let json = serde_json::to_vec(obj).unwrap_or_default();
    hex(&Sha256::digest(&json))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `metadata.name` of the CR.
pub(crate) fn cr_name(cr: &LlamaStackDistribution) -> Result<&str, BuildError> {
    cr.metadata
        .name
        .as_deref()
        .ok_or(BuildError::MissingMetadata { what: "name" })
}

/// `metadata.namespace` of the CR; every owned object lives there.
pub(crate) fn cr_namespace(cr: &LlamaStackDistribution) -> Result<&str, BuildError> {
    cr.metadata
        .namespace
        .as_deref()
        .ok_or(BuildError::MissingMetadata { what: "namespace" })
}

/// Controller owner reference to the CR: GC deletes the object with the CR, and
/// blockOwnerDeletion keeps foreground deletion of the CR waiting for it.
pub(crate) fn owner_reference(cr: &LlamaStackDistribution) -> Result<OwnerReference, BuildError> {
    cr_name(cr)?;
    let owner = cr
        .controller_owner_ref(&())
        .ok_or(BuildError::MissingMetadata { what: "uid" })?;
    Ok(OwnerReference {
        block_owner_deletion: Some(true),
        ..owner
    })
}

/// Metadata shared by every owned object: name, the CR's namespace, common labels and the
/// controller owner reference.
pub(crate) fn object_meta(
    cr: &LlamaStackDistribution,
    name: String,
    component: &str,
) -> Result<ObjectMeta, BuildError> {
    let cr_name = cr_name(cr)?;
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(cr_namespace(cr)?.to_string()),
        labels: Some(common_labels(cr_name, component)),
        owner_references: Some(vec![owner_reference(cr)?]),
        ..ObjectMeta::default()
    })
}

/// The port the server listens on and the Service exposes (FR-060).
pub fn port(cr: &LlamaStackDistribution) -> i32 {
    cr.spec.networking.as_ref().map_or(DEFAULT_PORT, |n| n.port)
}

pub(crate) fn workload(cr: &LlamaStackDistribution) -> Option<&WorkloadSpec> {
    cr.spec.workload.as_ref()
}

/// Pods the server runs at least: `replicas` (default 1), or the HPA's floor while
/// autoscaling owns the count (`replicas` is ignored then, FR-012).
pub fn effective_replicas(cr: &LlamaStackDistribution) -> i32 {
    match workload(cr) {
        Some(w) => match &w.autoscaling {
            Some(a) => a.min_replicas.unwrap_or(1),
            None => w.replicas.unwrap_or(1),
        },
        None => 1,
    }
}

/// `networking.tls` when it turns server TLS on (D13).
pub(crate) fn server_tls(cr: &LlamaStackDistribution) -> Option<&TlsSpec> {
    cr.spec
        .networking
        .as_ref()?
        .tls
        .as_ref()
        .filter(|t| t.enabled)
}

#[cfg(test)]
mod tests {
    use super::testing::{UID, cr, inputs};
    use super::*;
    use serde_json::json;

    #[test]
    fn the_pod_watch_selects_what_every_server_pod_carries() {
        let (key, value) = POD_APP_SELECTOR.split_once('=').unwrap_or_default();
        let pod = selector_labels("x");
        assert_eq!(pod.get(key).map(String::as_str), Some(value));
        assert_eq!(pod.get(INSTANCE_LABEL).map(String::as_str), Some("x"));
    }

    #[test]
    fn desired_hash_is_sha256_hex_of_json() {
        // sha256("{}")
        assert_eq!(
            desired_hash(&json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_ne!(
            desired_hash(&json!({"a": 1})),
            desired_hash(&json!({"a": 2}))
        );
        assert_eq!(desired_hash(&json!({"a": 1})).len(), 64);
    }

    #[test]
    fn owner_reference_is_controller_and_blocks_deletion() {
        let cr = cr(json!({"distribution": {"name": "starter"}}));
        let o = owner_reference(&cr).unwrap();
        assert_eq!(o.api_version, "llamastack.io/v1alpha2");
        assert_eq!(o.kind, "LlamaStackDistribution");
        assert_eq!(o.name, "demo");
        assert_eq!(o.uid, UID);
        assert_eq!(o.controller, Some(true));
        assert_eq!(o.block_owner_deletion, Some(true));
    }

    #[test]
    fn missing_metadata_is_an_error() {
        let mut c = cr(json!({"distribution": {"name": "starter"}}));
        c.metadata.uid = None;
        assert_eq!(
            service::service(&inputs(&c)).unwrap_err(),
            BuildError::MissingMetadata { what: "uid" }
        );
        c.metadata.namespace = None;
        assert_eq!(
            deployment::deployment(&inputs(&c)).unwrap_err(),
            BuildError::MissingMetadata { what: "namespace" }
        );
        c.metadata.name = None;
        assert_eq!(
            object_meta(&c, "x".into(), "server").unwrap_err(),
            BuildError::MissingMetadata { what: "name" }
        );
    }

    #[test]
    fn effective_replicas_follows_autoscaling_floor() {
        let plain = cr(json!({"distribution": {"name": "starter"}}));
        assert_eq!(effective_replicas(&plain), 1);
        let three = cr(json!({"distribution": {"name": "starter"}, "workload": {"replicas": 3}}));
        assert_eq!(effective_replicas(&three), 3);
        let hpa = cr(json!({"distribution": {"name": "starter"},
            "workload": {"replicas": 3, "autoscaling": {"maxReplicas": 5}}}));
        assert_eq!(effective_replicas(&hpa), 1);
        let hpa2 = cr(json!({"distribution": {"name": "starter"},
            "workload": {"autoscaling": {"minReplicas": 2, "maxReplicas": 5}}}));
        assert_eq!(effective_replicas(&hpa2), 2);
    }

    #[test]
    fn port_defaults_to_8321() {
        assert_eq!(
            port(&cr(json!({"distribution": {"name": "starter"}}))),
            8321
        );
        let c = cr(json!({"distribution": {"name": "starter"}, "networking": {"port": 9000}}));
        assert_eq!(port(&c), 9000);
        let c = cr(json!({"distribution": {"name": "starter"}, "networking": {}}));
        assert_eq!(port(&c), 8321);
    }
}

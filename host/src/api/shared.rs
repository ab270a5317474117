//! Types both API versions use with the same shape, so conversion is a move, not a mapping.

use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Which LlamaStack distribution runs: a name from the operator's registry or an image.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new("!(has(self.name) && has(self.image))")
        .message("set only one of distribution.name (a named distribution, e.g. starter) or distribution.image (a direct image reference)")
        .reason(Reason::FieldValueForbidden),
)]
pub struct DistributionSpec {
    /// Name of a distribution the operator knows (e.g. `starter`, `remote-vllm`); it resolves to
    /// a pinned image and that image's base config. `llama-stack-operator distributions` lists
    /// them. Exclusive with `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A container image used as is. Its base config comes from the image's OCI labels or
    /// from `overrideConfig`. Exclusive with `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Namespaces allowed to reach the server (a NetworkPolicy, when the operator's
/// `enableNetworkPolicy` feature flag is on).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AllowedFrom {
    /// Namespace names whose pods may connect; `"*"` allows every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Namespace label keys: pods in a namespace carrying any of these labels may connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// A HorizontalPodAutoscaler for the server Deployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    /// Lower bound of replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// Upper bound of replicas.
    pub max_replicas: i32,
    /// Target average CPU utilization (percent of the request).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "targetCPUUtilizationPercentage"
    )]
    pub target_cpu_utilization_percentage: Option<i32>,
    /// Target average memory utilization (percent of the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_memory_utilization_percentage: Option<i32>,
}

/// A PersistentVolumeClaim mounted into the server (model caches, sqlite files).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcStorage {
    /// Requested size (default 10Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    /// Where the volume is mounted (default /.llama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
}

/// A PodDisruptionBudget for the server pods; set at most one of the two bounds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudget {
    /// Pods that must stay available during voluntary disruptions (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    /// Pods that may be unavailable during voluntary disruptions (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
}

/// CA certificates the server trusts for outgoing TLS (e.g. a private model endpoint).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaBundle {
    /// ConfigMap holding PEM certificates.
    pub config_map_name: String,
    /// Namespace of the ConfigMap (default: the resource's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_namespace: Option<String>,
    /// Keys of the ConfigMap to read (default `["ca-bundle.crt"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub config_map_keys: Option<Vec<String>>,
}

/// A free-form object kept as written (`x-kubernetes-preserve-unknown-fields`).
pub fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A condition as in `metav1.Condition`.
pub type Condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Lifecycle phase of a distribution.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Accepted; the distribution is not resolved yet.
    #[default]
    Pending,
    /// Resolved and configured; waiting for pods.
    Initializing,
    /// At least one pod runs the current config.
    Ready,
    /// Generation, validation or deployment failed; see the conditions.
    Failed,
    /// Being deleted.
    Terminating,
}

/// Versions seen by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// Version of the operator that last wrote the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_version: Option<String>,
    /// Version the LlamaStack server reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llama_stack_server_version: Option<String>,
    /// When this was last refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// What the running server reports about its providers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributionConfig {
    /// The distribution name, or `custom` for a direct image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_distribution: Option<String>,
    /// Providers as the server lists them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub providers: Option<Vec<ServerProvider>>,
    /// Distribution names the operator knows, with their images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_distributions: Option<std::collections::BTreeMap<String, String>>,
}

/// One provider as `GET /v1/providers` reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServerProvider {
    /// The API it serves (e.g. `inference`).
    pub api: String,
    /// Its ID.
    pub provider_id: String,
    /// Its type (e.g. `remote::vllm`).
    pub provider_type: String,
    /// Its config as the server holds it.
    #[schemars(schema_with = "free_form_object")]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Its health.
    pub health: ProviderHealth,
}

/// Provider health as the server reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ProviderHealth {
    /// `OK`, `Error` or `Not Implemented`.
    pub status: String,
    /// Details.
    pub message: String,
}

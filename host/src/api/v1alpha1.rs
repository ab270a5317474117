//! `llamastack.io/v1alpha1`: the existing operator's API, still served so that every existing
//! manifest applies unchanged (`../shared/reference/v1alpha1-behavior.md` §1). Fields,
//! defaults and validations are the upstream ones.

// kube's derive takes repeated `printcolumn`, `selectable` and `validation` attributes.
#![allow(clippy::duplicated_attributes)]

use crate::api::shared::{
    AllowedFrom, Autoscaling, CaBundle, Condition, DistributionConfig, DistributionSpec, Phase,
    PodDisruptionBudget, PvcStorage, VersionInfo,
};
use k8s_openapi::api::core::v1::{
    EnvVar, ResourceRequirements, TopologySpreadConstraint, Volume, VolumeMount,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A LlamaStack server (v1alpha1: the config.yaml comes from a user ConfigMap or the image).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "llamastack.io",
    version = "v1alpha1",
    kind = "LlamaStackDistribution",
    namespaced,
    status = "LlamaStackDistributionStatus",
    shortname = "llsd",
    doc = "A LlamaStack server (v1alpha1). Stored as v1alpha2.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Operator Version",
        type_ = "string",
        json_path = ".status.version.operatorVersion"
    ),
    printcolumn(
        name = "Server Version",
        type_ = "string",
        json_path = ".status.version.llamaStackServerVersion"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    selectable = ".spec.server.userConfig.configMapName",
    selectable = ".spec.server.userConfig.configMapNamespace",
    selectable = ".spec.server.tlsConfig.caBundle.configMapName",
    selectable = ".spec.server.tlsConfig.caBundle.configMapNamespace"
)]
#[serde(rename_all = "camelCase")]
pub struct LlamaStackDistributionSpec {
    /// Pod replicas.
    #[serde(default = "one")]
    pub replicas: i32,
    /// The server.
    pub server: ServerSpec,
    /// Network exposure and allowed clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
}

fn one() -> i32 {
    1
}

/// The server and its pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// The distribution: `name` (from the operator's registry) or `image`.
    pub distribution: DistributionSpec,
    /// The server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_spec: Option<ContainerSpec>,
    /// Server worker processes per pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub workers: Option<i32>,
    /// Pod-level overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_overrides: Option<PodOverrides>,
    /// A PodDisruptionBudget; its presence alone creates one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    /// Topology spread constraints, replacing the operator's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// A HorizontalPodAutoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// A PersistentVolumeClaim; its presence (even `{}`) creates one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<PvcStorage>,
    /// A ConfigMap whose keys are mounted at /etc/llama-stack/ (key `config.yaml` is the
    /// server config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_config: Option<UserConfig>,
    /// TLS trust settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
}

/// The server container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    /// Container name.
    #[serde(default = "container_name")]
    pub name: String,
    /// Container port (default 8321).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Extra env vars, after the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Container command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Container args.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
}

/// The upstream container name.
pub const CONTAINER_NAME: &str = "llama-stack";

fn container_name() -> String {
    CONTAINER_NAME.to_string()
}

impl Default for ContainerSpec {
    fn default() -> Self {
        ContainerSpec {
            name: container_name(),
            port: None,
            resources: None,
            env: None,
            command: None,
            args: None,
        }
    }
}

/// Pod-level overrides.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// ServiceAccount of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Pod termination grace period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// Extra pod volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    /// Extra container volume mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<VolumeMount>>,
}

/// The user's config.yaml.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserConfig {
    /// ConfigMap name.
    pub config_map_name: String,
    /// ConfigMap namespace (default: the resource's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_namespace: Option<String>,
}

/// TLS trust settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// CA certificates the server trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundle>,
}

/// Network exposure.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Create an Ingress for the server.
    #[serde(default)]
    pub expose_route: bool,
    /// Who may connect (NetworkPolicy, when the feature flag is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_from: Option<AllowedFrom>,
}

/// What the operator observed (v1alpha1 shape).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LlamaStackDistributionStatus {
    /// Pending, Initializing, Ready, Failed or Terminating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Operator and server versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<VersionInfo>,
    /// Providers as the running server reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_config: Option<DistributionConfig>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Ready pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// In-cluster URL of the server.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "serviceURL"
    )]
    pub service_url: Option<String>,
    /// External URL, when exposed.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "routeURL")]
    pub route_url: Option<String>,
}

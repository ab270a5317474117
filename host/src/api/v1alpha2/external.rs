//! `spec.externalProviders` (FR-014, FR-090..092, D16): providers shipped as images, with all
//! sections of spec 001.

use crate::api::shared::free_form_object;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// External providers by API section. Each provider image carries
/// `/lls-provider/lls-provider-spec.yaml`; its package is installed into the server pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalProvidersSpec {
    /// Inference providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<Vec<ExternalProviderRef>>,
    /// Safety providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<Vec<ExternalProviderRef>>,
    /// Agents providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<ExternalProviderRef>>,
    /// Vector store providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_io: Option<Vec<ExternalProviderRef>>,
    /// Dataset I/O providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_io: Option<Vec<ExternalProviderRef>>,
    /// Scoring providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<Vec<ExternalProviderRef>>,
    /// Eval providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<Vec<ExternalProviderRef>>,
    /// Tool runtime providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_runtime: Option<Vec<ExternalProviderRef>>,
    /// Post-training providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_training: Option<Vec<ExternalProviderRef>>,
}

/// One external provider (spec 001 FR-008).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalProviderRef {
    /// Provider ID, unique across inline and external providers; an ID equal to an inline
    /// provider's replaces it (with a warning).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub provider_id: String,
    /// Image carrying the provider package and `lls-provider-spec.yaml`.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Pull policy of the install init container (default IfNotPresent).
    #[serde(default)]
    pub image_pull_policy: PullPolicy,
    /// Provider config copied into config.yaml as written (no secret resolution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Image pull policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    /// Pull on every start.
    Always,
    /// Never pull.
    Never,
    /// Pull when missing.
    #[default]
    IfNotPresent,
}

//! What the engine takes and gives: the JSON shapes that cross the component boundary.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Where a base config handed in by the host came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseSource {
    /// `spec.overrideConfig` ConfigMap content (D11).
    OverrideConfig,
    /// `io.llamastack.config.*` labels of the image (FR-027f).
    OciLabel,
}

impl BaseSource {
    /// What a base config handed in for `spec` is: the overrideConfig ConfigMap's content when
    /// the spec names one, else the config an image's labels carry.
    pub fn for_spec(spec: &Json) -> BaseSource {
        if spec.get("overrideConfig").is_some() {
            BaseSource::OverrideConfig
        } else {
            BaseSource::OciLabel
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseConfigInput {
    pub yaml: String,
    pub source: BaseSource,
}

/// `lls-provider-spec.yaml` facts the host read from an external provider image (D16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalProviderMetadata {
    pub provider_id: String,
    pub image: String,
    /// `spec.providerType`, e.g. `remote::acme`.
    pub provider_type: String,
    /// `spec.packageName`: becomes `module:` in config.yaml.
    pub package_name: String,
    /// `spec.api`, config.yaml spelling.
    pub api: String,
}

/// One generate call.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest {
    /// The LlamaStackDistribution's `metadata.name`; names derived Secrets (D9).
    #[serde(default)]
    pub name: Option<String>,
    /// `.spec` of a v1alpha2 LlamaStackDistribution (short forms of D4 allowed).
    pub spec: Json,
    /// A base config that replaces the embedded one.
    #[serde(default)]
    pub base_config: Option<BaseConfigInput>,
    #[serde(default)]
    pub external_provider_metadata: Vec<ExternalProviderMetadata>,
}

/// An env var the Deployment fills from a Secret key (FR-022). No values, ever (NFR-003).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretEnv {
    pub name: String,
    pub secret_name: String,
    pub secret_key: String,
}

/// A Secret the operator derives from a user Secret (D9: postgres connection string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DerivedSecret {
    pub name: String,
    pub source_secret: String,
    pub source_key: String,
    /// How to read the source value: `postgres-uri` yields keys host, port, db, user, password.
    pub format: String,
}

/// Where the base config came from (`status.resolvedDistribution.configSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigSource {
    Embedded,
    OciLabel,
    OverrideConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedDistribution {
    pub name: Option<String>,
    pub image: Option<String>,
    pub llama_stack_version: Option<String>,
    pub config_source: ConfigSource,
    /// sha256 of the base config (`status.resolvedDistribution.configHash`, without prefix).
    pub base_config_hash: String,
}

/// The result of a successful generate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Generated {
    pub config_yaml: String,
    /// Sorted by name, so an unchanged spec never changes the pod template (D10).
    pub env: Vec<SecretEnv>,
    /// Lowercase hex sha256 of `config_yaml`.
    pub content_hash: String,
    pub provider_count: u32,
    pub resource_count: u32,
    pub config_version: u32,
    pub warnings: Vec<String>,
    pub derived_secrets: Vec<DerivedSecret>,
    pub distribution: ResolvedDistribution,
}

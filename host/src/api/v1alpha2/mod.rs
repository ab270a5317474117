//! `llamastack.io/v1alpha2`, the stored version: a short spec the operator expands into a
//! config.yaml (seed phase 1; `../shared/reference/v1alpha2-requirements.md` §2).

// kube's derive takes repeated `printcolumn`, `selectable` and `validation` attributes.
#![allow(clippy::duplicated_attributes)]

mod external;
mod networking;
mod providers;
pub mod references;
mod resources;
mod status;
mod storage;
mod workload;

pub use crate::api::shared::DistributionSpec;
pub use external::{ExternalProviderRef, ExternalProvidersSpec, PullPolicy};
pub use networking::{DEFAULT_PORT, ExposeSpec, NetworkingSpec, TlsSpec};
pub use providers::{
    MAX_PROVIDERS_PER_API, ProviderConfig, ProvidersSpec, SecretKeyRef, SecretRef,
};
pub use resources::{ModelConfig, ResourcesSpec};
pub use status::{
    ConfigGeneration, ExternalProviderStatus, LlamaStackDistributionStatus, ResolvedDistribution,
};
pub use storage::{KvStorage, KvType, SecretName, SqlStorage, SqlType, StorageSpec};
pub use workload::{Overrides, WorkloadSpec};

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// `spec.disabled` items: the engine's API vocabulary (D8), so the CRD and the generator
/// accept the same names.
fn disabled_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names = llama_stack_config::spec::Api::fields();
    schemars::json_schema!({
        "type": "array",
        "maxItems": names.len(),
        "items": {"type": "string", "enum": names},
    })
}

/// A LlamaStack server: which distribution, which providers and resources, how it is
/// reached and how it runs. The operator generates its config.yaml.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "llamastack.io",
    version = "v1alpha2",
    kind = "LlamaStackDistribution",
    namespaced,
    status = "LlamaStackDistributionStatus",
    shortname = "llsd",
    doc = "A LlamaStack server whose config.yaml the operator generates from a short spec.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Lifecycle phase"
    ),
    printcolumn(
        name = "Providers",
        type_ = "integer",
        json_path = ".status.configGeneration.providerCount",
        description = "Providers in the generated config"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas",
        description = "Ready pods"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Distribution",
        type_ = "string",
        json_path = ".status.resolvedDistribution.image",
        priority = 1,
        description = "Image in use"
    ),
    printcolumn(
        name = "Config",
        type_ = "string",
        json_path = ".status.configGeneration.configMapName",
        priority = 1,
        description = "Generated ConfigMap in use"
    ),
    printcolumn(
        name = "Server",
        type_ = "string",
        json_path = ".status.version.llamaStackServerVersion",
        priority = 1,
        description = "Version the running server reports"
    ),
    selectable = ".spec.overrideConfig.configMapName",
    selectable = ".spec.networking.tls.caBundle.configMapName"
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.providers) && has(self.overrideConfig))")
        .message("spec.providers and spec.overrideConfig are mutually exclusive: overrideConfig supplies the whole config.yaml, so remove one of them")
        .field_path(".overrideConfig")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!(has(self.resources) && has(self.overrideConfig))")
        .message("spec.resources and spec.overrideConfig are mutually exclusive: overrideConfig supplies the whole config.yaml, so remove one of them")
        .field_path(".overrideConfig")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!(has(self.storage) && has(self.overrideConfig))")
        .message("spec.storage and spec.overrideConfig are mutually exclusive: overrideConfig supplies the whole config.yaml, so remove one of them")
        .field_path(".overrideConfig")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!(has(self.disabled) && has(self.overrideConfig))")
        .message("spec.disabled and spec.overrideConfig are mutually exclusive: overrideConfig supplies the whole config.yaml, so remove one of them")
        .field_path(".overrideConfig")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!has(self.providers) || !has(self.disabled) || !has(self.providers.inference) || size(self.providers.inference) == 0 || !self.disabled.exists(d, d == 'inference')")
        .message("spec.providers.inference conflicts with spec.disabled: inference API is disabled but has providers configured. Remove the provider configuration or remove 'inference' from the disabled list.")
        .field_path(".providers.inference")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!has(self.providers) || !has(self.disabled) || !has(self.providers.safety) || size(self.providers.safety) == 0 || !self.disabled.exists(d, d == 'safety')")
        .message("spec.providers.safety conflicts with spec.disabled: safety API is disabled but has providers configured. Remove the provider configuration or remove 'safety' from the disabled list.")
        .field_path(".providers.safety")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!has(self.providers) || !has(self.disabled) || !has(self.providers.vectorIo) || size(self.providers.vectorIo) == 0 || !self.disabled.exists(d, d == 'vectorIo')")
        .message("spec.providers.vectorIo conflicts with spec.disabled: vectorIo API is disabled but has providers configured. Remove the provider configuration or remove 'vectorIo' from the disabled list.")
        .field_path(".providers.vectorIo")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!has(self.providers) || !has(self.disabled) || !has(self.providers.toolRuntime) || size(self.providers.toolRuntime) == 0 || !self.disabled.exists(d, d == 'toolRuntime')")
        .message("spec.providers.toolRuntime conflicts with spec.disabled: toolRuntime API is disabled but has providers configured. Remove the provider configuration or remove 'toolRuntime' from the disabled list.")
        .field_path(".providers.toolRuntime")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!has(self.providers) || !has(self.disabled) || !has(self.providers.telemetry) || size(self.providers.telemetry) == 0 || !self.disabled.exists(d, d == 'telemetry')")
        .message("spec.providers.telemetry conflicts with spec.disabled: telemetry API is disabled but has providers configured. Remove the provider configuration or remove 'telemetry' from the disabled list.")
        .field_path(".providers.telemetry")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("has(self.distribution.name) || has(self.distribution.image)")
        .message("spec.distribution needs name (e.g. starter; `llama-stack-operator distributions` lists them) or image")
        .field_path(".distribution")
        .reason(Reason::FieldValueRequired),
)]
pub struct LlamaStackDistributionSpec {
    /// The distribution: `name` (from the operator's registry) or `image`.
    pub distribution: DistributionSpec,
    /// Inline providers by API; a list replaces the distribution's providers of that API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub providers: Option<ProvidersSpec>,
    /// Models, tool groups and shields to register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// State backends (key-value and SQL); absent keeps the distribution's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// APIs removed from the generated config (camelCase names, e.g. `eval`, `postTraining`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "disabled_schema")]
    pub disabled: Option<Vec<String>>,
    /// Port, TLS, exposure and allowed clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<NetworkingSpec>,
    /// Replicas, resources, autoscaling, volumes and pod overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadSpec>,
    /// Providers shipped as images, installed into the server pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_providers: Option<ExternalProvidersSpec>,
    /// A complete config.yaml from a ConfigMap in this namespace, instead of generating one.
    /// Exclusive with providers, resources, storage and disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_config: Option<OverrideConfigSpec>,
}

/// A user-supplied config.yaml (Tier 3).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideConfigSpec {
    /// ConfigMap in this namespace with the config under key `config.yaml`.
    #[schemars(length(min = 1, max = 253))]
    pub config_map_name: String,
}

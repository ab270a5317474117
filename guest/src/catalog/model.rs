//! Shapes of `configs/distributions.json` and `configs/catalogs/*.json`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DistributionIndex {
    pub distributions: Vec<DistributionEntry>,
}

/// One named distribution: its pinned image and the llama-stack release behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DistributionEntry {
    pub name: String,
    pub image: String,
    pub llama_stack_version: String,
    pub catalog: String,
    #[serde(default)]
    pub description: String,
}

/// What one llama-stack release offers: its APIs and, per API, its provider types.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub llama_stack_version: String,
    #[serde(default)]
    pub config_version: u32,
    pub apis: Vec<String>,
    /// Routing table -> the providable API behind it (`tool_groups` -> `tool_runtime`): API
    /// dependencies may name either.
    #[serde(default)]
    pub routing_tables: BTreeMap<String, String>,
    /// api (config spelling) -> provider type -> facts.
    pub providers: BTreeMap<String, BTreeMap<String, ProviderInfo>>,
}

/// Facts about one provider type, extracted from the release's registry (D1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub endpoint_field: Option<String>,
    pub api_key_field: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub api_dependencies: Vec<String>,
    #[serde(default)]
    pub optional_api_dependencies: Vec<String>,
    #[serde(default)]
    pub tool_groups: Vec<String>,
    pub deprecation_error: Option<String>,
    pub deprecation_warning: Option<String>,
}

impl Catalog {
    pub fn has_api(&self, api: &str) -> bool {
        self.apis.iter().any(|a| a == api)
    }

    pub fn provider(&self, api: &str, provider_type: &str) -> Option<&ProviderInfo> {
        self.providers.get(api)?.get(provider_type)
    }

    /// Provider types of one API, sorted.
    pub fn types_of(&self, api: &str) -> Vec<&str> {
        self.providers
            .get(api)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

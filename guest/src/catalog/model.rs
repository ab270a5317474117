//! Shapes of `configs/distributions.json` and `configs/catalogs/*.json`.
//!
//! A [`Catalog`] is static data: build.rs compiles the built-in catalogs to Rust tables, so a
//! plugin instance (fresh for every call) reads them without parsing. A catalog given as JSON
//! (a vendor's own) is parsed once and leaked into the same shape.

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

type Strs = &'static [&'static str];

/// What one llama-stack release offers: its APIs and, per API, its provider types.
#[derive(Debug, Clone, Copy)]
pub struct Catalog {
    pub llama_stack_version: &'static str,
    pub config_version: u32,
    pub apis: Strs,
    /// Routing table -> the providable API behind it (`tool_groups` -> `tool_runtime`): API
    /// dependencies may name either. Sorted by routing table.
    pub routing_tables: &'static [(&'static str, &'static str)],
    /// api (config spelling) -> provider type -> facts, both levels sorted by key.
    pub providers: &'static [(&'static str, &'static [(&'static str, ProviderInfo)])],
}

/// Facts about one provider type, extracted from the release's registry (D1).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProviderInfo {
    pub endpoint_field: Option<&'static str>,
    pub api_key_field: Option<&'static str>,
    pub fields: Strs,
    pub required: Strs,
    pub api_dependencies: Strs,
    pub optional_api_dependencies: Strs,
    pub tool_groups: Strs,
    pub deprecation_error: Option<&'static str>,
    pub deprecation_warning: Option<&'static str>,
}

fn find<'a, T>(sorted: &'a [(&'static str, T)], key: &str) -> Option<&'a T> {
    sorted
        .binary_search_by(|(k, _)| (*k).cmp(key))
        .ok()
        .map(|i| &sorted[i].1)
}

impl Catalog {
    pub fn has_api(&self, api: &str) -> bool {
        self.apis.contains(&api)
    }

    pub fn provider(&self, api: &str, provider_type: &str) -> Option<&'static ProviderInfo> {
        find(self.providers, api).and_then(|types| find(types, provider_type))
    }

    /// The provider types of one API with their facts, sorted by type.
    pub fn providers_of(&self, api: &str) -> &'static [(&'static str, ProviderInfo)] {
        find(self.providers, api).copied().unwrap_or(&[])
    }

    /// Provider types of one API, sorted.
    pub fn types_of(&self, api: &str) -> Vec<&'static str> {
        self.providers_of(api).iter().map(|(t, _)| *t).collect()
    }

    /// The providable API behind a routing table, or the name itself.
    pub fn providable<'a>(&self, api: &'a str) -> &'a str
    where
        'static: 'a,
    {
        find(self.routing_tables, api).copied().unwrap_or(api)
    }

    /// Parses a catalog's JSON. The result lives as long as the process (or plugin
    /// instance): catalogs are few and never dropped.
    pub fn from_json(text: &str) -> Result<Catalog, serde_json::Error> {
        let j: CatalogJson = serde_json::from_str(text)?;
        Ok(j.leak())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogJson {
    llama_stack_version: String,
    #[serde(default)]
    config_version: u32,
    apis: Vec<String>,
    #[serde(default)]
    routing_tables: BTreeMap<String, String>,
    providers: BTreeMap<String, BTreeMap<String, ProviderJson>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderJson {
    endpoint_field: Option<String>,
    api_key_field: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    api_dependencies: Vec<String>,
    #[serde(default)]
    optional_api_dependencies: Vec<String>,
    #[serde(default)]
    tool_groups: Vec<String>,
    deprecation_error: Option<String>,
    deprecation_warning: Option<String>,
}

fn leak_str(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_strs(v: Vec<String>) -> Strs {
    Box::leak(
        v.into_iter()
            .map(leak_str)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

impl CatalogJson {
    /// BTreeMaps iterate sorted, which is what the lookups need.
    fn leak(self) -> Catalog {
        let providers: Vec<(&'static str, &'static [(&'static str, ProviderInfo)])> = self
            .providers
            .into_iter()
            .map(|(api, types)| {
                let types: Vec<(&'static str, ProviderInfo)> = types
                    .into_iter()
                    .map(|(t, p)| (leak_str(t), p.leak()))
                    .collect();
                let types: &'static [_] = Box::leak(types.into_boxed_slice());
                (leak_str(api), types)
            })
            .collect();
        let routing: Vec<(&'static str, &'static str)> = self
            .routing_tables
            .into_iter()
            .map(|(k, v)| (leak_str(k), leak_str(v)))
            .collect();
        Catalog {
            llama_stack_version: leak_str(self.llama_stack_version),
            config_version: self.config_version,
            apis: leak_strs(self.apis),
            routing_tables: Box::leak(routing.into_boxed_slice()),
            providers: Box::leak(providers.into_boxed_slice()),
        }
    }
}

impl ProviderJson {
    fn leak(self) -> ProviderInfo {
        ProviderInfo {
            endpoint_field: self.endpoint_field.map(leak_str),
            api_key_field: self.api_key_field.map(leak_str),
            fields: leak_strs(self.fields),
            required: leak_strs(self.required),
            api_dependencies: leak_strs(self.api_dependencies),
            optional_api_dependencies: leak_strs(self.optional_api_dependencies),
            tool_groups: leak_strs(self.tool_groups),
            deprecation_error: self.deprecation_error.map(leak_str),
            deprecation_warning: self.deprecation_warning.map(leak_str),
        }
    }
}

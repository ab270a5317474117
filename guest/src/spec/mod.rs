//! The v1alpha2 spec as the engine reads it. Parsed by hand from JSON so that every error has
//! its full field path and the short forms of D4 are accepted (single provider object, bare
//! model string, `expose: true`).

mod parse;
pub mod shorthand;
pub mod vocabulary;

pub use parse::parse_spec;
pub use vocabulary::{Api, ProviderApi};

use serde_json::Value as Json;
use std::collections::BTreeMap;

/// A `{secretKeyRef: {name, key}}` (D5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, Default)]
pub struct DistributionRef {
    pub name: Option<String>,
    pub image: Option<String>,
}

/// One entry of `spec.providers.<api>`.
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    /// `spec.providers.inference[0]`
    pub path: String,
    pub id: Option<String>,
    pub provider: String,
    pub endpoint: Option<String>,
    pub api_key: Option<SecretRef>,
    pub secret_refs: BTreeMap<String, SecretRef>,
    pub settings: BTreeMap<String, Json>,
}

#[derive(Debug, Clone)]
pub struct ProviderList {
    pub api: ProviderApi,
    pub items: Vec<ProviderSpec>,
}

#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub path: String,
    pub name: String,
    pub provider: Option<String>,
    pub context_length: Option<u64>,
    pub model_type: Option<String>,
    pub quantization: Option<String>,
}

/// A string list entry with its path (`spec.resources.tools[1]`).
#[derive(Debug, Clone)]
pub struct Named {
    pub path: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub models: Vec<ModelSpec>,
    pub tools: Vec<Named>,
    pub shields: Vec<Named>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvType {
    Sqlite,
    Redis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct KvStorage {
    pub kind: KvType,
    pub endpoint: Option<String>,
    pub password: Option<SecretRef>,
}

#[derive(Debug, Clone)]
pub struct SqlStorage {
    pub kind: SqlType,
    pub connection_string: Option<SecretRef>,
    /// D9: a Secret with host/port/dbname/user/password keys (CloudNativePG, Crunchy PGO).
    pub secret_ref: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Storage {
    pub kv: Option<KvStorage>,
    pub sql: Option<SqlStorage>,
}

#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub enabled: bool,
    pub secret_name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Networking {
    pub port: Option<u16>,
    pub tls: Option<Tls>,
}

/// One entry of `spec.externalProviders.<api>` (spec 001, D16).
#[derive(Debug, Clone)]
pub struct ExternalRef {
    pub path: String,
    pub api: Api,
    pub provider_id: String,
    pub image: String,
    pub config: Option<Json>,
}

/// The parts of a v1alpha2 spec that shape config.yaml.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub distribution: DistributionRef,
    pub providers: Vec<ProviderList>,
    pub resources: Option<Resources>,
    pub storage: Option<Storage>,
    pub disabled: Vec<Named>,
    pub networking: Networking,
    pub workers: Option<u32>,
    pub external_providers: Vec<ExternalRef>,
    pub override_config: Option<String>,
    /// Which of the FR-013 exclusive sections were written, even when empty.
    pub has_providers: bool,
    pub has_resources: bool,
    pub has_storage: bool,
    pub has_disabled: bool,
}

impl Spec {
    /// The effective provider ID (FR-035): the explicit `id`, else the `provider` value
    /// without any `remote::`/`inline::` prefix.
    pub fn effective_id(p: &ProviderSpec) -> String {
        match &p.id {
            Some(id) => id.clone(),
            None => p
                .provider
                .rsplit("::")
                .next()
                .unwrap_or(&p.provider)
                .to_string(),
        }
    }
}

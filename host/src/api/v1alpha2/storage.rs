//! `spec.storage`: the server's state backends (FR-008, FR-050..053, FR-079a/b, D9).

use super::providers::SecretRef;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// State backends. An absent subsection keeps the distribution's default for it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct StorageSpec {
    /// Key-value store (registry, metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvStorage>,
    /// SQL store (inference and conversation records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlStorage>,
}

/// Key-value backend.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new("self.type != 'redis' || has(self.endpoint)")
        .message("spec.storage.kv.endpoint is required when type is redis (e.g. endpoint: redis://redis:6379)")
        .field_path(".endpoint")
        .reason(Reason::FieldValueRequired),
)]
pub struct KvStorage {
    /// `sqlite` (default, a file in the pod) or `redis`.
    #[serde(default, rename = "type")]
    pub kind: KvType,
    /// Redis URL (`redis://host:6379`); required for redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Redis password from a Secret (env `LLSD_STORAGE_KV_PASSWORD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
}

/// Key-value backend type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KvType {
    /// A sqlite file in the pod.
    #[default]
    Sqlite,
    /// A Redis server.
    Redis,
}

/// SQL backend.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'postgres' || has(self.connectionString) || has(self.secretRef)")
        .message("spec.storage.sql needs connectionString (a Secret key holding postgresql://user:pass@host:5432/db) or secretRef (a Secret with host, port, dbname, user, password) when type is postgres")
        .field_path(".connectionString")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!(has(self.connectionString) && has(self.secretRef))")
        .message("set only one of spec.storage.sql.connectionString or spec.storage.sql.secretRef")
        .reason(Reason::FieldValueForbidden),
)]
pub struct SqlStorage {
    /// `sqlite` (default, a file in the pod) or `postgres`.
    #[serde(default, rename = "type")]
    pub kind: SqlType,
    /// A Secret key holding a PostgreSQL URL; the operator splits it into a derived Secret
    /// (D9). Values never reach a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<SecretRef>,
    /// A Secret with keys host, port, dbname, user and password, as CloudNativePG and
    /// Crunchy PGO write them (both write `user`); used by reference only (D9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretName>,
}

/// SQL backend type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SqlType {
    /// A sqlite file in the pod.
    #[default]
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretName {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

//! `spec.networking` (FR-010, FR-011, FR-060..066, D4, D13, D14).

use crate::api::shared::{AllowedFrom, CaBundle};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Port, TLS, external exposure and allowed clients.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkingSpec {
    /// Port the server listens on and the Service exposes (default 8321).
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// TLS for the server itself and CA certificates it trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// External access through an Ingress: absent = none; `{}` or `{enabled: true}` = on
    /// with a generated hostname; `{enabled: false}` = off. Write it as an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<ExposeSpec>,
    /// Who may connect (NetworkPolicy, when the feature flag is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_from: Option<AllowedFrom>,
}

/// FR-060.
pub const DEFAULT_PORT: i32 = 8321;

impl Default for NetworkingSpec {
    fn default() -> Self {
        NetworkingSpec {
            port: DEFAULT_PORT,
            tls: None,
            expose: None,
            allowed_from: None,
        }
    }
}

fn default_port() -> i32 {
    DEFAULT_PORT
}

/// TLS settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!self.enabled || has(self.secretName)")
        .message("spec.networking.tls.secretName is required when tls.enabled is true: name a kubernetes.io/tls Secret in this namespace")
        .field_path(".secretName")
        .reason(Reason::FieldValueRequired),
)]
pub struct TlsSpec {
    /// Serve HTTPS with the certificate in `secretName` (D13).
    #[serde(default)]
    pub enabled: bool,
    /// A `kubernetes.io/tls` Secret in this namespace; required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// CA certificates the server trusts for its outgoing connections; the ConfigMap must be
    /// in this namespace (D14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundle>,
}

/// External exposure (D4: an object; `enabled` absent means on).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExposeSpec {
    /// Off when false; on when true or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Hostname of the Ingress (default: generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

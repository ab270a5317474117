//! `spec.providers` (FR-003..005, FR-071, FR-072).

use crate::api::shared::free_form_object;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Upper bound of one provider list: keeps the API server's CEL cost estimate of the
/// cross-list ID rule bounded.
pub const MAX_PROVIDERS_PER_API: usize = 32;

/// Inline providers by API. Each field is a list, even for one provider (D4):
/// `inference: [{provider: vllm, endpoint: http://vllm:8000/v1}]`. A list replaces the
/// distribution's providers of that API (D6).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.inference) || size(self.inference) <= 1 || self.inference.all(p, has(p.id))")
        .message("spec.providers.inference has more than one provider: give each an explicit id (e.g. id: vllm-primary), they name the providers in config.yaml and in resources.models[].provider")
        .field_path(".inference")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!has(self.safety) || size(self.safety) <= 1 || self.safety.all(p, has(p.id))")
        .message("spec.providers.safety has more than one provider: give each an explicit id")
        .field_path(".safety")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!has(self.vectorIo) || size(self.vectorIo) <= 1 || self.vectorIo.all(p, has(p.id))")
        .message("spec.providers.vectorIo has more than one provider: give each an explicit id")
        .field_path(".vectorIo")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!has(self.toolRuntime) || size(self.toolRuntime) <= 1 || self.toolRuntime.all(p, has(p.id))")
        .message("spec.providers.toolRuntime has more than one provider: give each an explicit id")
        .field_path(".toolRuntime")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!has(self.telemetry) || size(self.telemetry) <= 1 || self.telemetry.all(p, has(p.id))")
        .message("spec.providers.telemetry has more than one provider: give each an explicit id")
        .field_path(".telemetry")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new(unique_ids_rule())
        // Not FieldValueDuplicate: the API server prints that reason without the message.
        .message("provider ids must be unique across spec.providers (every API): two providers use the same id; rename one"),
)]
pub struct ProvidersSpec {
    /// Inference providers (LLM serving), e.g. `vllm`, `ollama`, `openai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PROVIDERS_PER_API))]
    pub inference: Option<Vec<ProviderConfig>>,
    /// Safety providers (shields), e.g. `llama-guard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PROVIDERS_PER_API))]
    pub safety: Option<Vec<ProviderConfig>>,
    /// Vector store providers, e.g. `pgvector`, `faiss`, `milvus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PROVIDERS_PER_API))]
    pub vector_io: Option<Vec<ProviderConfig>>,
    /// Tool runtime providers, e.g. `tavily-search`, `model-context-protocol`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PROVIDERS_PER_API))]
    pub tool_runtime: Option<Vec<ProviderConfig>>,
    /// Telemetry providers. llama-stack 0.7 has no telemetry API: the generator rejects
    /// this field for distributions built on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PROVIDERS_PER_API))]
    pub telemetry: Option<Vec<ProviderConfig>>,
}

/// FR-072: explicit IDs are unique across every provider list. The API server's CEL has no
/// `cel.bind`, so the list of IDs is written out twice.
fn unique_ids_rule() -> String {
    let ids = [
        "inference",
        "safety",
        "vectorIo",
        "toolRuntime",
        "telemetry",
    ]
    .map(|f| format!("(has(self.{f}) ? self.{f}.filter(p, has(p.id)).map(p, p.id) : [])"))
    .join(" + ");
    format!("({ids}).all(i, ({ids}).exists_one(j, j == i))")
}

/// One provider (FR-005).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfig {
    /// Provider ID in config.yaml and in `resources.models[].provider`. Required when the
    /// list has more than one provider; defaults to `provider`. Also names the secret env
    /// vars (`LLSD_<ID>_<FIELD>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub id: Option<String>,
    /// Provider type: a short name (`vllm` becomes `remote::vllm`, or `inline::…` when only an
    /// inline one exists in the distribution's release) or a full type such as `remote::vllm`.
    #[schemars(length(min = 1, max = 128))]
    pub provider: String,
    /// Endpoint URL, written to the provider's endpoint field (`base_url`, `url`, … as the
    /// distribution's release names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// API key from a Secret; reaches the server as env var `LLSD_<ID>_API_KEY`, never in
    /// the ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretRef>,
    /// Further secret config fields, by config field name (e.g. `password`): each becomes
    /// env var `LLSD_<ID>_<FIELD>` referenced from the provider config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_refs: Option<BTreeMap<String, SecretRef>>,
    /// Provider config passed through into config.yaml as written, merged over the
    /// distribution's defaults. Not for secrets: a secretKeyRef here is not resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A reference to a Secret key (D5: `{secretKeyRef: {name, key}}`). The Secret must be in the
/// resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// The Secret and key.
    pub secret_key_ref: SecretKeyRef,
}

/// A Secret name and a key in it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

//! `spec.resources` (FR-006, FR-007): what the server registers at start-up.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Models, tool groups and shields registered in addition to the distribution's own.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ResourcesSpec {
    /// Models to register. Each is an object: `{name: llama-3.1-8b}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<ModelConfig>>,
    /// Tool group names (e.g. `websearch`); each needs a toolRuntime provider that serves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Shield names; shields need a safety provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shields: Option<Vec<String>>,
}

/// One model (FR-007).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelConfig {
    /// Model ID as the provider serves it (e.g. `meta-llama/Llama-3.1-8B-Instruct`).
    #[schemars(length(min = 1))]
    pub name: String,
    /// ID of the inference provider serving it (default: the first inference provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Context window in tokens, recorded in the model's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub context_length: Option<i64>,
    /// Model type: `llm` (default) or `embedding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// Quantization, recorded in the model's metadata (e.g. `fp8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
}

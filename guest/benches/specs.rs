//! The three benchmark specs (seed task 5.6), shared by the native and component benchmarks.

use serde_json::{Value as Json, json};

pub fn minimal() -> Json {
    json!({"distribution": {"name": "starter"},
        "providers": {"inference": [{"provider": "vllm", "endpoint": "http://vllm:8000/v1"}]},
        "resources": {"models": [{"name": "llama-3.1-8b"}]}})
}

/// 5 providers, 10 models, storage.
pub fn typical() -> Json {
    let models: Vec<Json> = (0..10).map(|i| json!({"name": format!("model-{i}"), "provider": if i % 2 == 0 { "vllm-a" } else { "vllm-b" }})).collect();
    json!({"distribution": {"name": "starter"},
        "providers": {
            "inference": [
                {"id": "vllm-a", "provider": "vllm", "endpoint": "http://a:8000/v1", "apiKey": {"secretKeyRef": {"name": "a", "key": "k"}}},
                {"id": "vllm-b", "provider": "vllm", "endpoint": "http://b:8000/v1"}],
            "safety": [{"provider": "llama-guard"}],
            "vectorIo": [{"provider": "pgvector", "secretRefs": {"password": {"secretKeyRef": {"name": "pg", "key": "pw"}}}, "settings": {"db": "vectors"}}],
            "toolRuntime": [{"provider": "tavily-search", "apiKey": {"secretKeyRef": {"name": "t", "key": "k"}}}]},
        "resources": {"models": models, "tools": ["websearch"], "shields": ["guard"]},
        "storage": {"kv": {"type": "redis", "endpoint": "redis://r:6379"},
                    "sql": {"type": "postgres", "connectionString": {"secretKeyRef": {"name": "pg", "key": "dsn"}}}}})
}

/// 10 providers, 50 models, every feature on.
pub fn stress() -> Json {
    let inference: Vec<Json> = (0..6).map(|i| json!({"id": format!("vllm-{i}"), "provider": "vllm",
        "endpoint": format!("http://v{i}:8000/v1"), "apiKey": {"secretKeyRef": {"name": format!("s{i}"), "key": "k"}},
        "settings": {"max_tokens": 8192, "network": {"timeout": 30}}})).collect();
    let models: Vec<Json> = (0..50)
        .map(|i| {
            json!({"name": format!("model-{i}"), "provider": format!("vllm-{}", i % 6),
        "contextLength": 8192, "quantization": "fp8"})
        })
        .collect();
    json!({"distribution": {"name": "starter"},
        "providers": {
            "inference": inference,
            "safety": [{"provider": "llama-guard", "settings": {"excluded_categories": []}}],
            "vectorIo": [{"id": "pg", "provider": "pgvector", "secretRefs": {"password": {"secretKeyRef": {"name": "pg", "key": "pw"}}}},
                         {"id": "faiss", "provider": "faiss"}],
            "toolRuntime": [{"provider": "tavily-search", "apiKey": {"secretKeyRef": {"name": "t", "key": "k"}}}]},
        "resources": {"models": models, "tools": ["websearch"], "shields": ["guard-a", "guard-b"]},
        "storage": {"kv": {"type": "redis", "endpoint": "redis://r:6379", "password": {"secretKeyRef": {"name": "r", "key": "pw"}}},
                    "sql": {"type": "postgres", "connectionString": {"secretKeyRef": {"name": "pg", "key": "dsn"}}}},
        "disabled": ["eval", "scoring", "batches"],
        "networking": {"port": 8443, "tls": {"enabled": true, "secretName": "tls"}},
        "workload": {"workers": 4}})
}

/// (name, spec) for every size.
pub fn all() -> Vec<(&'static str, Json)> {
    vec![
        ("minimal", minimal()),
        ("typical", typical()),
        ("stress", stress()),
    ]
}

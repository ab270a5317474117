//! Mutations for the fuzz targets (issue 19): real inputs (the golden corpus, the shipped base
//! configs, real reviews) edited at random places, so that most inputs get past the first
//! parser and reach the checks behind it, plus byte-level damage for the parsers themselves.

#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{Value as Json, json};

/// Words of the spec's, the config's and the reviews' own vocabulary: random strings alone
/// would rarely name a field the code looks at.
pub const WORDS: &[&str] = &[
    "distribution",
    "name",
    "image",
    "starter",
    "remote-vllm",
    "postgres-demo",
    "providers",
    "inference",
    "safety",
    "vectorIo",
    "vector_io",
    "toolRuntime",
    "tool_runtime",
    "telemetry",
    "provider",
    "provider_id",
    "provider_type",
    "id",
    "endpoint",
    "apiKey",
    "secretKeyRef",
    "key",
    "secretRefs",
    "settings",
    "resources",
    "models",
    "tools",
    "shields",
    "storage",
    "kv",
    "sql",
    "type",
    "redis",
    "postgres",
    "sqlite",
    "connectionString",
    "password",
    "disabled",
    "networking",
    "port",
    "tls",
    "enabled",
    "secretName",
    "expose",
    "workload",
    "workers",
    "externalProviders",
    "providerId",
    "overrideConfig",
    "configMapName",
    "vllm",
    "llama-guard",
    "faiss",
    "http://x:1/v1",
    "",
    "remote::vllm",
    "inline::faiss",
    "websearch",
    "eval",
    "version",
    "apis",
    "config",
    "module",
    "server",
    "registered_resources",
    "backends",
    "stores",
    "${env.X:=}",
    "${env.",
    "apiVersion",
    "llamastack.io/v1alpha1",
    "llamastack.io/v1alpha2",
    "kind",
    "LlamaStackDistribution",
    "metadata",
    "spec",
    "request",
    "uid",
    "operation",
    "object",
    "oldObject",
    "objects",
    "desiredAPIVersion",
    "CREATE",
    "UPDATE",
    "server",
    "containerSpec",
    "env",
    "userConfig",
    "replicas",
];

/// Arbitrary JSON biased towards [`WORDS`].
pub fn arb_json() -> impl Strategy<Value = Json> {
    let words = prop::sample::select(WORDS);
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u32..70000).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        words.clone().prop_map(|s| json!(s)),
        "[a-z:/.${}=-]{0,12}".prop_map(Json::String),
        any::<String>().prop_map(Json::String),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((words.clone(), inner), 0..6).prop_map(|kv| Json::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

/// One edit of a JSON tree; the u64 picks the node (modulo the number of nodes).
#[derive(Debug, Clone)]
pub enum Edit {
    Replace(u64, Json),
    Remove(u64),
    Insert(u64, &'static str, Json),
    /// An array element appended again (duplicate ids), an object's value copied to a key.
    Duplicate(u64),
}

pub fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<u64>(), arb_json()).prop_map(|(n, v)| Edit::Replace(n, v)),
        2 => any::<u64>().prop_map(Edit::Remove),
        2 => (any::<u64>(), prop::sample::select(WORDS), arb_json())
            .prop_map(|(n, k, v)| Edit::Insert(n, k, v)),
        1 => any::<u64>().prop_map(Edit::Duplicate),
    ]
}

pub fn arb_edits(max: usize) -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(arb_edit(), 1..=max)
}

/// JSON pointers of every node, the root ("") first.
fn pointers(doc: &Json) -> Vec<String> {
    fn walk(v: &Json, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Json::Object(m) => {
                for (k, child) in m {
                    let k = k.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{at}/{k}"), out);
                }
            }
            Json::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    walk(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, String::new(), &mut out);
    out
}

fn split_last(pointer: &str) -> Option<(&str, String)> {
    let i = pointer.rfind('/')?;
    let key = pointer[i + 1..].replace("~1", "/").replace("~0", "~");
    Some((&pointer[..i], key))
}

/// Applies the edits in order (each sees the tree the previous ones left).
pub fn apply(doc: &mut Json, edits: &[Edit]) {
    for edit in edits {
        let all = pointers(doc);
        let pick = |n: u64| all[(n % all.len() as u64) as usize].clone();
        match edit {
            Edit::Replace(n, v) => {
                if let Some(node) = doc.pointer_mut(&pick(*n)) {
                    *node = v.clone();
                }
            }
            Edit::Remove(n) => {
                let at = pick(*n);
                let Some((parent, key)) = split_last(&at) else {
                    continue;
                };
                match doc.pointer_mut(parent) {
                    Some(Json::Object(m)) => {
                        m.remove(&key);
                    }
                    Some(Json::Array(a)) => {
                        if let Ok(i) = key.parse::<usize>()
                            && i < a.len()
                        {
                            a.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            Edit::Insert(n, k, v) => match doc.pointer_mut(&pick(*n)) {
                Some(Json::Object(m)) => {
                    m.insert((*k).to_string(), v.clone());
                }
                Some(Json::Array(a)) => a.push(v.clone()),
                _ => {}
            },
            Edit::Duplicate(n) => {
                let at = pick(*n);
                let Some((parent, key)) = split_last(&at) else {
                    continue;
                };
                let Some(value) = doc.pointer(&at).cloned() else {
                    continue;
                };
                match doc.pointer_mut(parent) {
                    Some(Json::Array(a)) => a.push(value),
                    Some(Json::Object(m)) => {
                        m.insert(format!("{key}2"), value);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Byte-level damage: (kind, position, byte).
pub type ByteOp = (u8, u64, u8);

pub fn arb_byte_ops(max: usize) -> impl Strategy<Value = Vec<ByteOp>> {
    prop::collection::vec((0u8..5, any::<u64>(), any::<u8>()), 1..=max)
}

/// Flips, overwrites, inserts, deletes or truncates at the chosen positions.
pub fn damage(bytes: &mut Vec<u8>, ops: &[ByteOp]) {
    for &(kind, at, byte) in ops {
        let len = bytes.len() as u64;
        let i = if len == 0 { 0 } else { (at % len) as usize };
        match kind {
            0 if !bytes.is_empty() => bytes[i] ^= 1 << (byte % 8),
            1 if !bytes.is_empty() => bytes[i] = byte,
            2 => bytes.insert(i, byte),
            3 if !bytes.is_empty() => {
                bytes.remove(i);
            }
            4 => bytes.truncate(i),
            _ => {}
        }
    }
}

/// Proptest's case count for a fuzz target: `LLSD_FUZZ_CASES` (the note's million), else
/// `default` (the short run `make test` does).
pub fn cases(default: u32) -> u32 {
    std::env::var("LLSD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nesting `depth` arrays deep: `[[[...]]]`.
pub fn nested(depth: usize) -> String {
    let mut s = String::with_capacity(depth * 2);
    s.extend(std::iter::repeat_n('[', depth));
    s.extend(std::iter::repeat_n(']', depth));
    s
}

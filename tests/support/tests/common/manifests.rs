//! Manifests as `kubectl kustomize` and `helm template` print them: multi-document YAML, and
//! objects compared as the API server would see them.

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

/// The documents of a multi-document YAML text, empty ones left out.
pub fn yaml_docs(text: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).context("parsing a YAML document")?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// Equal, numbers compared by value (kustomize and Helm print the schema's `minimum: 1.0` as
/// `1`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A path of the repository (`path` relative to its root).
pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The objects `kubectl kustomize deploy/<entry>` prints (the test cluster's kubectl, its
/// embedded kustomize).
pub fn kustomize(entry: &str) -> Result<Vec<Value>> {
    let path = repo(&format!("deploy/{entry}"));
    let path = path.to_str().context("a UTF-8 repository path")?;
    let out = llsd_test_support::kubectl(&["kustomize", path], None)?;
    let docs =
        yaml_docs(&out).with_context(|| format!("the output of kubectl kustomize {path}"))?;
    anyhow::ensure!(!docs.is_empty(), "kubectl kustomize {path} printed nothing");
    Ok(docs)
}

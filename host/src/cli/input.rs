//! Reading CR files for offline commands.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to parse {path} as YAML or JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("{path}: {message}")]
    Shape { path: PathBuf, message: String },
}

/// Reads a file, `-` meaning standard input.
pub fn read(path: &Path) -> Result<String, InputError> {
    let res = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    res.map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses YAML (a superset of JSON) into JSON values.
pub fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, InputError> {
    serde_yaml::from_str(text).map_err(|source| InputError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The LlamaStackDistribution of a file: its only document, or, in a multi-document file (a
/// sample with its Secrets and ConfigMaps), the one document of that kind.
pub fn parse_resource(path: &Path, text: &str) -> Result<serde_json::Value, InputError> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for d in serde_yaml::Deserializer::from_str(text) {
        let v = serde_json::Value::deserialize(d).map_err(|source| InputError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    if docs.len() == 1 {
        return Ok(docs.remove(0));
    }
    let mut ours: Vec<serde_json::Value> = docs
        .into_iter()
        .filter(|d| d["kind"] == "LlamaStackDistribution")
        .collect();
    match ours.len() {
        1 => Ok(ours.remove(0)),
        n => Err(InputError::Shape {
            path: path.to_path_buf(),
            message: format!(
                "expected one LlamaStackDistribution document, found {n}; give each its own file"
            ),
        }),
    }
}

/// A LlamaStackDistribution file -> a generate request (name and spec filled in).
pub fn resource(
    path: &Path,
    doc: serde_json::Value,
) -> Result<llama_stack_config::GenerateRequest, InputError> {
    llama_stack_config::resource::request_from_object(doc).map_err(|message| InputError::Shape {
        path: path.to_path_buf(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_is_picked_out_of_a_multi_document_file() {
        let p = Path::new("f.yaml");
        let one = parse_resource(p, "kind: Anything\nspec: {}\n").expect("single");
        assert_eq!(one["kind"], "Anything");
        let multi = "---\nkind: Secret\nmetadata: {name: s}\n---\nkind: LlamaStackDistribution\nmetadata: {name: x}\n---\n";
        assert_eq!(
            parse_resource(p, multi).expect("picked")["metadata"]["name"],
            "x"
        );
        let two = "kind: LlamaStackDistribution\n---\nkind: LlamaStackDistribution\n";
        assert!(
            parse_resource(p, two)
                .unwrap_err()
                .to_string()
                .contains("found 2")
        );
        assert!(parse_resource(p, "kind: Secret\n---\nkind: ConfigMap\n").is_err());
        assert!(parse_resource(p, "a: [").is_err());
    }
}

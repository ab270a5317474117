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

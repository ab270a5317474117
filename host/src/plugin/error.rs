//! What can go wrong with a plugin. User errors (field errors) are not here: they are a normal
//! result of `generate`.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("failed to set up the plugin engine: {message}")]
    Engine { message: String },
    #[error("failed to read plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to fetch plugin {reference}: {message}")]
    Fetch { reference: String, message: String },
    #[error("plugin {path} has sha256 {actual}, but the configuration pins {expected}")]
    Digest {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("failed to compile plugin {plugin}: {message}")]
    Compile { plugin: String, message: String },
    #[error(
        "failed to link plugin {plugin} (it must implement llamastack:config/distribution-plugin and import only WASI): {message}"
    )]
    Link { plugin: String, message: String },
    #[error("plugin {plugin} did not finish within its deadline of {deadline:?}")]
    Deadline { plugin: String, deadline: Duration },
    #[error("plugin {plugin} exceeded its memory cap of {limit} bytes")]
    MemoryCap { plugin: String, limit: usize },
    #[error("plugin {plugin} failed: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin} answered outside the contract: {message}")]
    Protocol { plugin: String, message: String },
}

impl PluginError {
    /// Short, bounded label for metrics and condition reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Engine { .. } => "engine",
            PluginError::Read { .. } => "read",
            PluginError::Fetch { .. } => "fetch",
            PluginError::Digest { .. } => "digest",
            PluginError::Compile { .. } => "compile",
            PluginError::Link { .. } => "link",
            PluginError::Deadline { .. } => "deadline",
            PluginError::MemoryCap { .. } => "memory",
            PluginError::Trap { .. } => "trap",
            PluginError::Protocol { .. } => "protocol",
        }
    }
}

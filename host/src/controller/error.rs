//! What can stop a reconcile. User mistakes do not appear here: they become conditions and
//! the reconcile waits for a change. These are the transient failures worth a retry.

use crate::controller::children::BuildError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {verb} {what}: {source}")]
    Api {
        verb: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to build {0}")]
    Build(#[from] BuildError),
    #[error("failed to encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the plugin call did not finish: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0} has no {1}")]
    Metadata(&'static str, &'static str),
}

impl Error {
    /// Short label for metrics (bounded set).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Api { .. } => "api",
            Error::Build(_) => "build",
            Error::Encode { .. } => "encode",
            Error::Join(_) => "join",
            Error::Metadata(..) => "metadata",
        }
    }
}

/// `map_err` helper: `api("read", format!("Secret {ns}/{name}"))`.
pub fn api(verb: &'static str, what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { verb, what, source }
}

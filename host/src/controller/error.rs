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
    #[error("a pass ran before the controller's caches were started")]
    NotRunning,
}

impl Error {
    /// The API server's message when it refused the object itself: admission (webhooks,
    /// ValidatingAdmissionPolicy), validation, quota or the operator's own RBAC (400, 403,
    /// 422). The same write fails the same way until someone changes the cluster or the CR, so
    /// it belongs in the status, not only in the log.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } if matches!(status.code, 400 | 403 | 422) && !self.namespace_terminating() => {
                Some(&status.message)
            }
            _ => None,
        }
    }

    /// The namespace is being deleted: the API server refuses every new object there, and
    /// the garbage collector is removing what exists. Nothing to retry and nothing to report
    /// (the CR goes with its namespace).
    pub fn namespace_terminating(&self) -> bool {
        let Error::Api {
            source: kube::Error::Api(status),
            ..
        } = self
        else {
            return false;
        };
        // NamespaceLifecycle admission: 403 with cause "NamespaceTerminating" (older API
        // servers say it only in the message).
        status.code == 403
            && (status
                .details
                .as_ref()
                .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
                || status.message.contains("because it is being terminated"))
    }

    /// Short label for metrics (bounded set).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Api { .. } => "api",
            Error::Build(_) => "build",
            Error::Encode { .. } => "encode",
            Error::Join(_) => "join",
            Error::Metadata(..) => "metadata",
            Error::NotRunning => "not_running",
        }
    }
}

/// `map_err` helper: `api("read", format!("Secret {ns}/{name}"))`.
pub fn api(verb: &'static str, what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { verb, what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_code(code: u16) -> Error {
        let status = kube::core::Status {
            code,
            message: format!("code {code}"),
            ..Default::default()
        };
        api("apply", "Deployment ns/x")(kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn refusals_are_what_retrying_cannot_fix() {
        for code in [400, 403, 422] {
            assert_eq!(
                with_code(code).refusal(),
                Some(format!("code {code}").as_str())
            );
        }
        // Conflicts, throttling and server trouble go away by themselves: retried, not reported.
        for code in [404, 409, 429, 500, 503] {
            assert_eq!(with_code(code).refusal(), None, "{code}");
        }
        assert_eq!(Error::Metadata("x", "uid").refusal(), None);
    }

    #[test]
    fn a_terminating_namespace_is_neither_retried_nor_reported() {
        // As kube-apiserver 1.36 answers a create in a namespace being deleted.
        let status = kube::core::Status {
            code: 403,
            reason: "Forbidden".into(),
            message: "services \"x-service\" is forbidden: unable to create new content in namespace bench because it is being terminated".into(),
            details: Some(kube::core::response::StatusDetails {
                name: "x-service".into(),
                group: String::new(),
                kind: "services".into(),
                uid: String::new(),
                retry_after_seconds: 0,
                causes: vec![kube::core::response::StatusCause {
                    reason: "NamespaceTerminating".into(),
                    message: "namespace bench is being terminated".into(),
                    field: "metadata.namespace".into(),
                }],
            }),
            ..Default::default()
        };
        let e = api("apply", "Service bench/x-service")(kube::Error::Api(Box::new(status)));
        assert!(e.namespace_terminating());
        assert_eq!(e.refusal(), None);
        // Other 403s (RBAC, admission) stay refusals.
        assert!(!with_code(403).namespace_terminating());
        assert!(with_code(403).refusal().is_some());
    }
}

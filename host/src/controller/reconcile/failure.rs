//! How a step stops the pipeline ([`Stop`]) and what the user has to fix ([`Failure`]): the
//! conditions, the Warning Event and whether to retry. Registry and API server refusals retry
//! with backoff (the cause may go away without a change to the CR); the rest waits for a
//! change. [`super::report::failed`] writes it.

use crate::api::v1alpha2::ExternalProviderStatus;
use crate::controller::children::BuildError;
use crate::controller::error::Error;
use crate::controller::inputs::Problem;
use crate::controller::status::{self, CONFIG_GENERATED, Cond, SECRETS_RESOLVED};

/// Why the pipeline stopped early: something for the user to fix (reported in the status,
/// the Deployment left alone) or a transient error (retried by `error_policy`).
pub(super) enum Stop {
    Failed(Failure),
    Error(Error),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Stop {
        Stop::Failed(f)
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Error(e)
    }
}

impl From<BuildError> for Stop {
    fn from(e: BuildError) -> Stop {
        Stop::Error(e.into())
    }
}

/// What a failed step reports before the Deployment is touched.
#[derive(Debug)]
pub(super) struct Failure {
    /// The failed condition first (its change publishes the Event), then any that still hold.
    pub conds: Vec<Cond>,
    /// Reason and note of the Warning Event.
    pub event: (&'static str, String),
    /// Retry with backoff: the cause may go away without a change to the CR (registry).
    pub retry: bool,
    /// A failed external provider's status entry.
    pub provider: Option<ExternalProviderStatus>,
}

/// `ConfigGenerated=False` with `reason`.
pub(super) fn failure(reason: &str, message: String, event_reason: &'static str) -> Failure {
    Failure {
        conds: vec![Cond::new(CONFIG_GENERATED, false, reason, message.clone())],
        event: (event_reason, message),
        retry: false,
        provider: None,
    }
}

pub(super) fn generation_failed(text: &str) -> Failure {
    failure(
        "ConfigGenerationFailed",
        format!("Failed to generate config.yaml: {text}"),
        "ConfigGenerationFailed",
    )
}

pub(super) fn secrets_failed(p: Problem) -> Failure {
    Failure {
        retry: false,
        provider: None,
        conds: vec![
            Cond::new(SECRETS_RESOLVED, false, p.reason, p.message.clone()),
            Cond::new(
                CONFIG_GENERATED,
                false,
                "ConfigGenerationFailed",
                format!("Failed to generate config.yaml: {}", p.message),
            ),
        ],
        event: ("SecretResolutionFailed", p.message),
    }
}

/// The API server refused the Deployment (admission policy, quota, RBAC):
/// `DeploymentUpdated=False`, retried with backoff since the cluster may change, not the CR.
pub(super) fn deployment_refused(name: &str, message: &str, holding: Vec<Cond>) -> Failure {
    let message = format!("The API server refused Deployment {name}: {message}");
    let mut conds = vec![Cond::new(
        status::DEPLOYMENT_UPDATED,
        false,
        "DeploymentUpdateFailed",
        message.clone(),
    )];
    conds.extend(holding);
    Failure {
        conds,
        event: ("DeploymentUpdateFailed", message),
        retry: true,
        provider: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::status::DEPLOYMENT_UPDATED;

    #[test]
    fn a_missing_secret_fails_both_conditions_and_waits_for_a_change() {
        let f = secrets_failed(Problem {
            reason: "SecretNotFound",
            message: "Secret \"vllm\" not found".into(),
        });
        let said: Vec<(&str, bool, &str)> = f
            .conds
            .iter()
            .map(|c| (c.type_, c.ok, c.reason.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                (SECRETS_RESOLVED, false, "SecretNotFound"),
                (CONFIG_GENERATED, false, "ConfigGenerationFailed"),
            ]
        );
        assert_eq!(f.event.0, "SecretResolutionFailed");
        assert!(!f.retry);
    }

    #[test]
    fn a_refused_deployment_is_retried_and_keeps_what_holds() {
        let holding = vec![status::secrets_resolved(2)];
        let f = deployment_refused("demo", "denied by policy", holding.clone());
        assert!(f.retry, "the cluster may change, not the CR");
        assert_eq!(f.conds[0].type_, DEPLOYMENT_UPDATED);
        assert_eq!(
            f.conds[0].message,
            "The API server refused Deployment demo: denied by policy"
        );
        assert_eq!(f.conds[1..], holding[..]);
        assert_eq!(
            f.event,
            ("DeploymentUpdateFailed", f.conds[0].message.clone())
        );
    }
}

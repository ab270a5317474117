//! Conditions, reasons and messages of the status contract (§9.2) and the phase they imply
//! (§9.3). Pure: the reconcile decides, this module words it. Timestamps only move when a
//! condition's status flips, so an unchanged world yields an identical status and no write.

use crate::api::shared::{Condition, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const CONFIG_GENERATED: &str = "ConfigGenerated";
pub const DEPLOYMENT_UPDATED: &str = "DeploymentUpdated";
pub const AVAILABLE: &str = "Available";
pub const SECRETS_RESOLVED: &str = "SecretsResolved";

/// One condition before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn new(type_: &'static str, ok: bool, reason: &str, message: impl Into<String>) -> Cond {
        Cond {
            type_,
            ok,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// `ConfigGenerated=True` (template of §9.2).
pub fn config_generated(providers: u32, resources: u32) -> Cond {
    Cond::new(
        CONFIG_GENERATED,
        true,
        "ConfigGenerationSucceeded",
        format!("Generated config.yaml with {providers} providers and {resources} models"),
    )
}

/// `DeploymentUpdated=True`: the Deployment runs `config_map` (D12: also when nothing needed
/// to change).
pub fn deployment_updated(config_map: &str) -> Cond {
    Cond::new(
        DEPLOYMENT_UPDATED,
        true,
        "DeploymentUpdateSucceeded",
        format!("Deployment updated with config {config_map}"),
    )
}

pub fn secrets_resolved(count: usize) -> Cond {
    Cond::new(
        SECRETS_RESOLVED,
        true,
        "AllSecretsFound",
        format!("Resolved {count} secret references"),
    )
}

/// What the live Deployment says about availability (FR-099), and the phase that follows
/// when nothing failed.
pub fn availability(dep: Option<&Deployment>) -> (Cond, i32, Phase) {
    let Some(dep) = dep else {
        return (
            Cond::new(
                AVAILABLE,
                false,
                "ReplicasUnavailable",
                "0/0 replicas available",
            ),
            0,
            Phase::Pending,
        );
    };
    let desired = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = dep.status.clone().unwrap_or_default();
    let ready = st.ready_replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    let observed = st.observed_generation.unwrap_or(0) >= dep.metadata.generation.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    // Old pods still running or not all updated yet: the new config is rolling out.
    if !observed || updated < desired || total > updated {
        return (
            Cond::new(
                AVAILABLE,
                false,
                "RolloutInProgress",
                format!("Rolling update in progress: {updated}/{desired} updated"),
            ),
            ready,
            Phase::Initializing,
        );
    }
    if available >= 1 {
        (
            Cond::new(
                AVAILABLE,
                true,
                "MinimumReplicasAvailable",
                format!("{available}/{desired} replicas available with current config"),
            ),
            ready,
            Phase::Ready,
        )
    } else {
        (
            Cond::new(
                AVAILABLE,
                false,
                "ReplicasUnavailable",
                format!("{available}/{desired} replicas available"),
            ),
            ready,
            Phase::Initializing,
        )
    }
}

/// The new conditions in a fixed order, each keeping its old `lastTransitionTime` unless its
/// status flipped. Conditions of other types (written by someone else) are kept.
pub fn merge(
    old: &[Condition],
    new: &[Cond],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = new
        .iter()
        .map(|c| {
            let status = if c.ok { "True" } else { "False" };
            let prev = old.iter().find(|o| o.type_ == c.type_);
            let since = match prev {
                Some(p) if p.status == status => p.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: c.type_.to_string(),
                status: status.to_string(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: since,
                observed_generation: generation,
            }
        })
        .collect();
    let ours = [
        CONFIG_GENERATED,
        DEPLOYMENT_UPDATED,
        AVAILABLE,
        SECRETS_RESOLVED,
    ];
    out.extend(
        old.iter()
            .filter(|o| {
                !ours.contains(&o.type_.as_str()) && !new.iter().any(|c| c.type_ == o.type_)
            })
            .cloned(),
    );
    out
}

/// Whether `cond` is new or differs in status, reason or message from the old one of its type:
/// when to publish an Event (one per transition, NFR-007).
pub fn changed(old: &[Condition], cond: &Cond) -> bool {
    let status = if cond.ok { "True" } else { "False" };
    !old.iter().any(|o| {
        o.type_ == cond.type_
            && o.status == status
            && o.reason == cond.reason
            && o.message == cond.message
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use k8s_openapi::jiff::Timestamp;

    fn dep(replicas: i32, generation: i64, st: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(st),
        }
    }

    #[test]
    fn availability_follows_the_deployment() {
        let (c, _, p) = availability(None);
        assert_eq!((c.ok, p), (false, Phase::Pending));
        let fresh = DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(1),
            updated_replicas: Some(1),
            ..Default::default()
        };
        let (c, _, p) = availability(Some(&dep(1, 1, fresh.clone())));
        assert_eq!(
            (c.reason.as_str(), p),
            ("ReplicasUnavailable", Phase::Initializing)
        );
        let ready = DeploymentStatus {
            ready_replicas: Some(1),
            available_replicas: Some(1),
            ..fresh.clone()
        };
        let (c, r, p) = availability(Some(&dep(1, 1, ready.clone())));
        assert_eq!(c.message, "1/1 replicas available with current config");
        assert_eq!((r, p), (1, Phase::Ready));
        // A new generation not observed yet, or old pods left: rolling.
        let (c, _, p) = availability(Some(&dep(1, 2, ready.clone())));
        assert_eq!(
            (c.reason.as_str(), p),
            ("RolloutInProgress", Phase::Initializing)
        );
        let mixed = DeploymentStatus {
            replicas: Some(2),
            ..ready
        };
        assert_eq!(
            availability(Some(&dep(1, 1, mixed))).0.reason,
            "RolloutInProgress"
        );
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let t0 = Time(Timestamp::from_second(1_000).expect("valid"));
        let t1 = Time(Timestamp::from_second(2_000).expect("valid"));
        let first = merge(&[], &[config_generated(3, 2)], Some(1), &t0);
        assert_eq!(
            first[0].message,
            "Generated config.yaml with 3 providers and 2 models"
        );
        let same = merge(&first, &[config_generated(4, 2)], Some(2), &t1);
        assert_eq!(same[0].last_transition_time, t0);
        let flipped = merge(
            &same,
            &[Cond::new(
                CONFIG_GENERATED,
                false,
                "ConfigGenerationFailed",
                "x",
            )],
            Some(3),
            &t1,
        );
        assert_eq!(flipped[0].last_transition_time, t1);
        assert!(changed(&same, &flipped_cond()));
        assert!(!changed(&first, &config_generated(3, 2)));
    }

    fn flipped_cond() -> Cond {
        Cond::new(CONFIG_GENERATED, false, "ConfigGenerationFailed", "x")
    }
}

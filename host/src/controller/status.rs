//! Conditions, reasons and messages of the status contract (§9.2) and the phase they imply
//! (§9.3). Pure: the reconcile decides, this module words it. Timestamps only move when a
//! condition's status flips, so an unchanged world yields an identical status and no write.

use super::pods::PodProblem;
use crate::api::shared::{Condition, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const CONFIG_GENERATED: &str = "ConfigGenerated";
pub const DEPLOYMENT_UPDATED: &str = "DeploymentUpdated";
pub const AVAILABLE: &str = "Available";
pub const SECRETS_RESOLVED: &str = "SecretsResolved";
pub const PROGRESSING: &str = "Progressing";
/// `Progressing=False`: pods of the current config do not become ready (issue 17).
pub const NEW_CONFIG_NOT_READY: &str = "NewConfigNotReady";

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

/// What the server pods say beyond the Deployment's counts (issue 17).
#[derive(Debug, Default, Clone, Copy)]
pub struct Pods<'a> {
    /// The first problem of a pod running the Deployment's current template (the new config).
    pub new_problem: Option<&'a PodProblem>,
    /// The first problem of any server pod.
    pub any_problem: Option<&'a PodProblem>,
}

/// What the live Deployment and its pods say: `Available` (FR-099: whether any replica
/// serves, whatever config it runs), `Progressing` (whether the current config is rolled out,
/// or why its pods do not become ready) and the phase that follows when nothing else failed.
pub fn availability(dep: Option<&Deployment>, pods: Pods) -> (Cond, Cond, i32, Phase) {
    let Some(dep) = dep else {
        return (
            Cond::new(
                AVAILABLE,
                false,
                "ReplicasUnavailable",
                "0/0 replicas available",
            ),
            Cond::new(
                PROGRESSING,
                true,
                "RolloutInProgress",
                "Waiting for the Deployment",
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
    let rolling = !observed || updated < desired || total > updated;

    let available_cond = if available >= 1 {
        Cond::new(
            AVAILABLE,
            true,
            "MinimumReplicasAvailable",
            if rolling {
                format!("{available}/{desired} replicas available while the new config rolls out")
            } else {
                format!("{available}/{desired} replicas available with current config")
            },
        )
    } else {
        match pods.any_problem {
            Some(p) => Cond::new(
                AVAILABLE,
                false,
                p.reason,
                format!("0/{desired} replicas available: {}", p.describe()),
            ),
            None => Cond::new(
                AVAILABLE,
                false,
                "ReplicasUnavailable",
                format!("{available}/{desired} replicas available"),
            ),
        }
    };
    let (progressing, phase) = match pods.new_problem {
        Some(p) => {
            let serving = if available >= 1 {
                format!("; {available} replica(s) of the previous config keep serving")
            } else {
                String::new()
            };
            (
                Cond::new(
                    PROGRESSING,
                    false,
                    NEW_CONFIG_NOT_READY,
                    format!("{} ({}){serving}", p.describe(), p.reason),
                ),
                // The scheduler may still find room (a volume being bound): not a failure yet.
                if p.reason == "Unschedulable" {
                    Phase::Pending
                } else {
                    Phase::Failed
                },
            )
        }
        None if rolling => (
            Cond::new(
                PROGRESSING,
                true,
                "RolloutInProgress",
                format!("Rolling update in progress: {updated}/{desired} updated"),
            ),
            Phase::Initializing,
        ),
        None => (
            Cond::new(
                PROGRESSING,
                true,
                "RolloutComplete",
                format!("{updated}/{desired} replicas run the current config"),
            ),
            if available >= 1 {
                Phase::Ready
            } else {
                Phase::Initializing
            },
        ),
    };
    (available_cond, progressing, ready, phase)
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
        PROGRESSING,
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

/// Whether `progressing` newly says the current config's pods do not become ready: the
/// Warning Event is recorded once per stalled rollout, not each time its message changes
/// (another pod, another restart).
pub fn stalled(old: &[Condition], progressing: &Cond) -> bool {
    let stalled_now = !progressing.ok && progressing.reason == NEW_CONFIG_NOT_READY;
    stalled_now
        && !old.iter().any(|o| {
            o.type_ == PROGRESSING && o.status == "False" && o.reason == NEW_CONFIG_NOT_READY
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
        let none = Pods::default();
        let (c, _, _, p) = availability(None, none);
        assert_eq!((c.ok, p), (false, Phase::Pending));
        let fresh = DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(1),
            updated_replicas: Some(1),
            ..Default::default()
        };
        let (c, g, _, p) = availability(Some(&dep(1, 1, fresh.clone())), none);
        assert_eq!(
            (c.reason.as_str(), g.reason.as_str(), p),
            (
                "ReplicasUnavailable",
                "RolloutComplete",
                Phase::Initializing
            )
        );
        let ready = DeploymentStatus {
            ready_replicas: Some(1),
            available_replicas: Some(1),
            ..fresh.clone()
        };
        let (c, g, r, p) = availability(Some(&dep(1, 1, ready.clone())), none);
        assert_eq!(c.message, "1/1 replicas available with current config");
        assert_eq!(g.message, "1/1 replicas run the current config");
        assert_eq!((r, p), (1, Phase::Ready));
        // A new generation not observed yet, or old pods left: rolling, and still available.
        let (c, g, _, p) = availability(Some(&dep(1, 2, ready.clone())), none);
        assert_eq!(
            (c.ok, g.reason.as_str(), p),
            (true, "RolloutInProgress", Phase::Initializing)
        );
        assert_eq!(
            c.message,
            "1/1 replicas available while the new config rolls out"
        );
        let mixed = DeploymentStatus {
            replicas: Some(2),
            ..ready.clone()
        };
        assert_eq!(
            availability(Some(&dep(1, 1, mixed.clone())), none).1.reason,
            "RolloutInProgress"
        );
        // The new pods crash: the old one serves, the CR says why the new ones do not.
        let crash = PodProblem {
            reason: "CrashLoopBackOff",
            pod: "srv-new".into(),
            message: "container llama-stack exited (1): ValueError: X not set".into(),
        };
        let stuck = Pods {
            new_problem: Some(&crash),
            any_problem: Some(&crash),
        };
        let (c, g, _, p) = availability(Some(&dep(1, 1, mixed)), stuck);
        assert!(c.ok, "{c:?}");
        assert_eq!(
            (g.ok, g.reason.as_str(), p),
            (false, NEW_CONFIG_NOT_READY, Phase::Failed)
        );
        assert_eq!(
            g.message,
            "pod srv-new: container llama-stack exited (1): ValueError: X not set (CrashLoopBackOff); 1 replica(s) of the previous config keep serving"
        );
        // Nothing serves: Available names the pod's problem.
        let pending = PodProblem {
            reason: "Unschedulable",
            pod: "srv-1".into(),
            message: "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
                .into(),
        };
        let blocked = Pods {
            new_problem: Some(&pending),
            any_problem: Some(&pending),
        };
        let (c, _, _, p) = availability(Some(&dep(1, 1, fresh)), blocked);
        assert_eq!(
            (c.ok, c.reason.as_str(), p),
            (false, "Unschedulable", Phase::Pending)
        );
        assert_eq!(
            c.message,
            "0/1 replicas available: pod srv-1: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
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

    #[test]
    fn a_stalled_rollout_is_announced_once() {
        let t0 = Time(Timestamp::from_second(1_000).expect("valid"));
        let stuck = |m: &str| Cond::new(PROGRESSING, false, NEW_CONFIG_NOT_READY, m);
        let rolling = merge(
            &[],
            &[Cond::new(PROGRESSING, true, "RolloutInProgress", "0/1")],
            Some(1),
            &t0,
        );
        assert!(stalled(&rolling, &stuck("pod a")));
        let after = merge(&rolling, &[stuck("pod a")], Some(1), &t0);
        assert!(!stalled(&after, &stuck("pod b: another restart")));
        assert!(!stalled(
            &after,
            &Cond::new(PROGRESSING, true, "RolloutComplete", "1/1")
        ));
    }

    fn flipped_cond() -> Cond {
        Cond::new(CONFIG_GENERATED, false, "ConfigGenerationFailed", "x")
    }
}

//! What the server pods say (issue 17): which of them run the Deployment's current template,
//! and what keeps a pod from Ready, named the way the kubelet and the scheduler name it, with
//! the server's own error line when it exited. Pure: the reconcile lists, this module reads.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodTemplateSpec};
use kube::ResourceExt;

/// The Deployment controller's revision annotation, on the Deployment and its ReplicaSets.
const REVISION: &str = "deployment.kubernetes.io/revision";
/// The label the Deployment controller gives a ReplicaSet's pods.
const TEMPLATE_HASH: &str = "pod-template-hash";
/// The longest message a condition carries from a pod (a termination message holds up to
/// 4 KiB; one line of it says what went wrong).
const MAX_MESSAGE: usize = 400;

/// Why one pod is not serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    /// A condition reason: `Unschedulable`, `ImagePullFailed`, `ContainerConfigError`,
    /// `OOMKilled`, `CrashLoopBackOff` or `ServerExited`.
    pub reason: &'static str,
    pub pod: String,
    /// What the scheduler or the kubelet said, or the server's error line.
    pub message: String,
}

impl PodProblem {
    /// `pod <name>: <message>`, for a condition message.
    pub fn describe(&self) -> String {
        format!("pod {}: {}", self.pod, self.message)
    }
}

/// The `pod-template-hash` of the Deployment's current ReplicaSet (the one with the
/// Deployment's revision), if the Deployment controller made it yet. Right after it made
/// the first one, the Deployment may not carry its revision yet: then the newest.
pub fn current_template_hash(dep: &Deployment, sets: &[ReplicaSet]) -> Option<String> {
    let revision = |o: &ReplicaSet| o.annotations().get(REVISION)?.parse::<u64>().ok();
    let current = match dep.annotations().get(REVISION) {
        Some(r) => sets
            .iter()
            .find(|rs| rs.annotations().get(REVISION) == Some(r)),
        None => sets
            .iter()
            .filter(|rs| revision(rs).is_some())
            .max_by_key(|rs| revision(rs)),
    };
    current.and_then(|rs| rs.labels().get(TEMPLATE_HASH).cloned())
}

/// Whether `pod` belongs to the ReplicaSet with `hash`.
pub fn runs_template(pod: &Pod, hash: &str) -> bool {
    pod.labels().get(TEMPLATE_HASH).map(String::as_str) == Some(hash)
}

/// The generated ConfigMap a pod template mounts as the server's config.
pub fn mounted_config(template: Option<&PodTemplateSpec>, volume: &str) -> Option<String> {
    template?
        .spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .find(|v| v.name == volume)?
        .config_map
        .as_ref()
        .map(|c| c.name.clone())
}

/// ConfigMaps still mounted by a ReplicaSet that has pods: retention keeps them (the pods
/// read them again when they restart).
pub fn configs_in_use(sets: &[ReplicaSet], volume: &str) -> Vec<String> {
    sets.iter()
        .filter(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0))
        .filter_map(|rs| mounted_config(rs.spec.as_ref()?.template.as_ref(), volume))
        .collect()
}

/// What keeps `pod` from serving, or `None` when it is Ready or simply still starting.
pub fn problem(pod: &Pod) -> Option<PodProblem> {
    let status = pod.status.as_ref()?;
    let name = pod.name_any();
    let conditions = status.conditions.as_deref().unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
    {
        return None;
    }
    if let Some(c) = conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        && c.reason.as_deref() == Some("Unschedulable")
    {
        return Some(PodProblem {
            reason: "Unschedulable",
            pod: name,
            message: clip(c.message.as_deref().unwrap_or("no node fits the pod")),
        });
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    containers
        .filter_map(container_problem)
        .map(|(reason, message)| PodProblem {
            reason,
            pod: name.clone(),
            message,
        })
        .next()
}

fn container_problem(c: &ContainerStatus) -> Option<(&'static str, String)> {
    let state = c.state.as_ref();
    let waiting = state.and_then(|s| s.waiting.as_ref());
    let waiting_reason = waiting
        .and_then(|w| w.reason.as_deref())
        .unwrap_or_default();
    let waiting_message = waiting
        .and_then(|w| w.message.as_deref())
        .unwrap_or_default();
    match waiting_reason {
        "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
            return Some((
                "ImagePullFailed",
                clip(&format!(
                    "container {} cannot pull image {}: {}",
                    c.name,
                    c.image,
                    if waiting_message.is_empty() {
                        waiting_reason
                    } else {
                        waiting_message
                    }
                )),
            ));
        }
        "CreateContainerConfigError" | "CreateContainerError" => {
            return Some((
                "ContainerConfigError",
                clip(&format!("container {}: {waiting_message}", c.name)),
            ));
        }
        _ => {}
    }
    // The container's last exit: the current state when it has not restarted yet.
    let terminated = state
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()))?;
    if terminated.exit_code == 0 && terminated.reason.as_deref() != Some("OOMKilled") {
        return None;
    }
    if terminated.reason.as_deref() == Some("OOMKilled") {
        return Some((
            "OOMKilled",
            format!(
                "container {} was killed for exceeding its memory limit",
                c.name
            ),
        ));
    }
    let line = terminated
        .message
        .as_deref()
        .and_then(error_line)
        .unwrap_or_else(|| format!("exit code {}", terminated.exit_code));
    // Not the waiting reason: between two restarts the container runs and has none, and
    // the condition would flip with every restart.
    let reason = if c.restart_count > 0 {
        "CrashLoopBackOff"
    } else {
        "ServerExited"
    };
    Some((
        reason,
        clip(&format!(
            "container {} exited ({}): {line}",
            c.name, terminated.exit_code
        )),
    ))
}

/// The line of a termination message (the server's last log lines, with
/// `FallbackToLogsOnError`) that says what went wrong: the last `SomethingError: ...` or
/// `...Exception: ...` line, else the last line with words in it. Colour codes and the frame
/// characters of rich tracebacks are dropped.
pub fn error_line(message: &str) -> Option<String> {
    let lines: Vec<String> = message
        .lines()
        .map(strip_ansi)
        .map(|l| {
            l.trim_matches(|c: char| c.is_whitespace() || is_frame(c))
                .to_string()
        })
        .filter(|l| l.chars().any(char::is_alphanumeric))
        .collect();
    let exception = lines.iter().rev().find(|l| {
        l.split_once(": ").is_some_and(|(head, _)| {
            !head.contains(' ')
                && (head.ends_with("Error")
                    || head.ends_with("Exception")
                    || head.ends_with("Exit"))
        })
    });
    exception.or_else(|| lines.last()).map(|l| clip(l))
}

fn is_frame(c: char) -> bool {
    // Box drawing (U+2500..U+257F) and the arrows rich puts at the failing line.
    ('\u{2500}'..='\u{257f}').contains(&c) || c == '❱'
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (@..~).
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_MESSAGE).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, PodCondition, PodStatus,
    };

    fn pod(status: PodStatus) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("srv-abc".into()),
                ..Default::default()
            },
            status: Some(status),
            ..Default::default()
        }
    }

    fn container(
        waiting: Option<(&str, &str)>,
        last: Option<(i32, &str, &str)>,
    ) -> ContainerStatus {
        ContainerStatus {
            name: "llama-stack".into(),
            image: "docker.io/llamastack/distribution-starter:0.7.3".into(),
            restart_count: 2,
            state: Some(ContainerState {
                waiting: waiting.map(|(r, m)| ContainerStateWaiting {
                    reason: Some(r.into()),
                    message: Some(m.into()),
                }),
                ..Default::default()
            }),
            last_state: Some(ContainerState {
                terminated: last.map(|(code, reason, message)| ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn with_container(c: ContainerStatus) -> Pod {
        pod(PodStatus {
            container_statuses: Some(vec![c]),
            ..Default::default()
        })
    }

    #[test]
    fn the_scheduler_reason_names_an_unbound_claim() {
        let p = pod(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some(
                    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
                        .into(),
                ),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let got = problem(&p).expect("a problem");
        assert_eq!(got.reason, "Unschedulable");
        assert_eq!(
            got.describe(),
            "pod srv-abc: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        );
    }

    #[test]
    fn image_pull_failures_name_the_image() {
        let p = with_container(container(
            Some(("ImagePullBackOff", "Back-off pulling image \"x\"")),
            None,
        ));
        let got = problem(&p).expect("a problem");
        assert_eq!(got.reason, "ImagePullFailed");
        assert!(
            got.message.contains("distribution-starter:0.7.3"),
            "{got:?}"
        );
        assert!(got.message.contains("Back-off pulling image"), "{got:?}");
    }

    #[test]
    fn a_crash_loop_carries_the_servers_error_line() {
        let log = "INFO starting\n\u{1b}[31mTraceback (most recent call last):\u{1b}[0m\n  File \"x.py\", line 3\n\
                   ValueError: Environment variable 'VLLM_URL' not set or empty at providers.inference[0].config.base_url\n\
                   ╰──────────────╯\n";
        let p = with_container(container(
            Some((
                "CrashLoopBackOff",
                "back-off 20s restarting failed container",
            )),
            Some((1, "Error", log)),
        ));
        let got = problem(&p).expect("a problem");
        assert_eq!(got.reason, "CrashLoopBackOff");
        assert_eq!(
            got.message,
            "container llama-stack exited (1): ValueError: Environment variable 'VLLM_URL' not set or empty at providers.inference[0].config.base_url"
        );
    }

    #[test]
    fn an_oom_kill_is_named() {
        let p = with_container(container(
            Some(("CrashLoopBackOff", "")),
            Some((137, "OOMKilled", "")),
        ));
        assert_eq!(problem(&p).map(|p| p.reason), Some("OOMKilled"));
    }

    #[test]
    fn ready_and_starting_pods_have_no_problem() {
        let ready = pod(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_eq!(problem(&ready), None);
        let starting = with_container(container(Some(("ContainerCreating", "")), None));
        assert_eq!(problem(&starting), None);
    }

    #[test]
    fn the_current_replica_set_is_the_deployments_revision() {
        let rs = |rev: &str, hash: &str| ReplicaSet {
            metadata: kube::api::ObjectMeta {
                annotations: Some([(REVISION.to_string(), rev.to_string())].into()),
                labels: Some([(TEMPLATE_HASH.to_string(), hash.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let sets = [rs("1", "old"), rs("3", "new"), rs("2", "mid")];
        let mut dep = Deployment::default();
        // Not annotated yet: the newest ReplicaSet.
        assert_eq!(current_template_hash(&dep, &sets).as_deref(), Some("new"));
        dep.metadata.annotations = Some([(REVISION.to_string(), "2".to_string())].into());
        assert_eq!(current_template_hash(&dep, &sets).as_deref(), Some("mid"));
        assert_eq!(current_template_hash(&dep, &[]), None);
    }

    #[test]
    fn error_lines() {
        assert_eq!(
            error_line("a\nRuntimeError: boom\n│ frame │\n"),
            Some("RuntimeError: boom".into())
        );
        assert_eq!(error_line("just words\n\n"), Some("just words".into()));
        assert_eq!(error_line("──────\n"), None);
        let long = "x".repeat(1000);
        assert_eq!(
            error_line(&long).map(|l| l.chars().count()),
            Some(MAX_MESSAGE + 1)
        );
    }
}

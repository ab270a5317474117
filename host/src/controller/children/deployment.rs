//! The server Deployment `<cr>` (v1alpha1-behavior §3.5, with the choices of the port:
//! restricted pod security, content-hash annotations D10, env de-duplicated, TLS D13).

use super::security::{container_security_context, pod_security_context};
use super::{
    BuildError, CA_BUNDLE_DIR, CA_BUNDLE_HASH_ANNOTATION, CA_BUNDLE_KEY, COMPONENT_SERVER,
    CONFIG_HASH_ANNOTATION, CONFIG_KEY, CONFIG_PATH, Inputs, PORT_NAME, TLS_DIR, common_labels,
    cr_name, effective_replicas, external, names, object_meta, port, selector_labels, server_tls,
    workload,
};
use crate::api::v1alpha2::WorkloadSpec;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, KeyToPath, Lifecycle, LifecycleHandler,
    PersistentVolumeClaimVolumeSource, PodAffinityTerm, PodAntiAffinity, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SecretKeySelector, SecretVolumeSource, SleepAction,
    TopologySpreadConstraint, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The server container.
pub const CONTAINER_NAME: &str = "llama-stack";
/// Default mount path of `workload.storage` (and `HF_HOME`), as in v1alpha1.
pub const DEFAULT_MOUNT_PATH: &str = "/.llama";
/// How long a terminating server keeps serving before it is stopped: kube-proxy syncs its
/// rules within about a second, and an Ingress controller's reload takes a few more.
pub const PRE_STOP_SLEEP_SECONDS: i64 = 5;
/// Health endpoint of the server.
pub const HEALTH_PATH: &str = "/v1/health";

pub const VOLUME_CONFIG: &str = "config";
pub const VOLUME_STORAGE: &str = "lls-storage";
pub const VOLUME_TLS: &str = "tls";
pub const VOLUME_CA_BUNDLE: &str = "ca-bundle";

const HOSTNAME_KEY: &str = "kubernetes.io/hostname";
const SPREAD_KEYS: [&str; 3] = [
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    HOSTNAME_KEY,
];

/// The server Deployment `<cr>`.
pub fn deployment(inputs: &Inputs) -> Result<Deployment, BuildError> {
    let cr = inputs.cr;
    let name = cr_name(cr)?;
    let metadata = object_meta(cr, names::deployment(name), COMPONENT_SERVER)?;
    let w = workload(cr);
    let overrides = w.and_then(|w| w.overrides.as_ref());
    let tls_secret = match server_tls(cr) {
        Some(t) => Some(t.secret_name.as_deref().ok_or(BuildError::MissingField {
            field: "spec.networking.tls.secretName",
        })?),
        None => None,
    };

    let mut annotations = BTreeMap::from([(
        CONFIG_HASH_ANNOTATION.to_string(),
        format!("sha256:{}", inputs.config_hash),
    )]);
    if let Some(h) = inputs.ca_bundle_hash {
        annotations.insert(CA_BUNDLE_HASH_ANNOTATION.into(), format!("sha256:{h}"));
    }

    let (topology_spread_constraints, affinity) = scheduling(name, w, effective_replicas(cr));
    let pod = PodSpec {
        // Installs run before the server, in CRD order (spec 001 FR-011, FR-012); the pod has
        // no other init containers.
        init_containers: Some(external::init_containers(inputs.external)).filter(|c| !c.is_empty()),
        containers: vec![container(inputs, tls_secret.is_some())],
        volumes: Some(volumes(inputs, name, tls_secret)),
        security_context: Some(pod_security_context()),
        service_account_name: Some(names::pod_service_account(&cr.spec, name)),
        termination_grace_period_seconds: overrides
            .and_then(|o| o.termination_grace_period_seconds),
        topology_spread_constraints,
        affinity,
        ..PodSpec::default()
    };

    Ok(Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            // The HPA owns the count while autoscaling; a value here would fight it.
            replicas: match w {
                Some(w) if w.autoscaling.is_some() => None,
                _ => Some(w.and_then(|w| w.replicas).unwrap_or(1)),
            },
            selector: LabelSelector {
                match_labels: Some(selector_labels(name)),
                ..LabelSelector::default()
            },
            strategy: Some(strategy(w.is_some_and(|w| w.storage.is_some()))),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(common_labels(name, COMPONENT_SERVER)),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

/// The user's spread constraints, or (several pods) spread over region, zone and node plus a
/// preference for distinct nodes, so one failure does not take every pod.
fn scheduling(
    name: &str,
    w: Option<&WorkloadSpec>,
    replicas: i32,
) -> (Option<Vec<TopologySpreadConstraint>>, Option<Affinity>) {
    if let Some(user) = w
        .and_then(|w| w.topology_spread_constraints.as_ref())
        .filter(|c| !c.is_empty())
    {
        return (Some(user.clone()), None);
    }
    if replicas <= 1 {
        return (None, None);
    }
    let selector = LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "app.kubernetes.io/instance".to_string(),
            name.to_string(),
        )])),
        ..LabelSelector::default()
    };
    let constraints = SPREAD_KEYS
        .iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: (*key).into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(selector.clone()),
            ..TopologySpreadConstraint::default()
        })
        .collect();
    let affinity = Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(selector),
                        topology_key: HOSTNAME_KEY.into(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    };
    (Some(constraints), Some(affinity))
}

fn mount_path(w: Option<&WorkloadSpec>) -> String {
    w.and_then(|w| w.storage.as_ref())
        .and_then(|s| s.mount_path.clone())
        .unwrap_or_else(|| DEFAULT_MOUNT_PATH.into())
}

fn volumes(inputs: &Inputs, name: &str, tls_secret: Option<&str>) -> Vec<Volume> {
    let w = workload(inputs.cr);
    let mut volumes = vec![Volume {
        name: VOLUME_CONFIG.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: inputs.config_map.into(),
            items: Some(vec![KeyToPath {
                key: CONFIG_KEY.into(),
                path: CONFIG_KEY.into(),
                ..KeyToPath::default()
            }]),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    let storage = match w.and_then(|w| w.storage.as_ref()) {
        Some(_) => Volume {
            name: VOLUME_STORAGE.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: names::pvc(name),
                ..PersistentVolumeClaimVolumeSource::default()
            }),
            ..Volume::default()
        },
        None => Volume {
            name: VOLUME_STORAGE.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    };
    volumes.push(storage);
    if let Some(secret) = tls_secret {
        volumes.push(Volume {
            name: VOLUME_TLS.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.into()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    if inputs.ca_bundle_hash.is_some() {
        volumes.push(Volume {
            name: VOLUME_CA_BUNDLE.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::ca_bundle(name),
                items: Some(vec![KeyToPath {
                    key: CA_BUNDLE_KEY.into(),
                    path: CA_BUNDLE_KEY.into(),
                    ..KeyToPath::default()
                }]),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    if !inputs.external.is_empty() {
        volumes.push(external::volume(external::DEFAULT_SIZE_LIMIT));
    }
    if let Some(extra) = w
        .and_then(|w| w.overrides.as_ref())
        .and_then(|o| o.volumes.as_ref())
    {
        volumes.extend(extra.iter().cloned());
    }
    volumes
}

fn container(inputs: &Inputs, tls: bool) -> Container {
    let w = workload(inputs.cr);
    let overrides = w.and_then(|w| w.overrides.as_ref());
    let port = port(inputs.cr);
    let command = overrides
        .and_then(|o| o.command.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| {
            ["llama", "stack", "run", CONFIG_PATH]
                .map(String::from)
                .to_vec()
        });
    Container {
        name: CONTAINER_NAME.into(),
        image: Some(inputs.image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(command),
        args: overrides
            .and_then(|o| o.args.clone())
            .filter(|a| !a.is_empty()),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: port,
            // Explicit: server-side apply keys container ports by (containerPort, protocol).
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(env(inputs, port)),
        volume_mounts: Some(volume_mounts(inputs, tls)),
        resources: Some(resources(w)),
        readiness_probe: Some(Probe {
            timeout_seconds: Some(5),
            period_seconds: Some(10),
            failure_threshold: Some(3),
            ..health_probe(tls)
        }),
        // Up to 300s to start (model downloads) before the kubelet restarts it.
        startup_probe: Some(Probe {
            period_seconds: Some(10),
            failure_threshold: Some(30),
            ..health_probe(tls)
        }),
        // A pod being replaced keeps serving while its endpoint's removal reaches every
        // node's proxy; stopped at once, it refuses the connections still routed to it.
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: PRE_STOP_SLEEP_SECONDS,
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(container_security_context()),
        // A server that exits on its config says why in its last log lines; the kubelet
        // keeps them as the termination message, which the status quotes (issue 17).
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    }
}

/// A rolling update that never lowers capacity: new pods come first (a quarter more, at
/// least one) and an old pod goes only when a new one is ready, so a config the server
/// rejects leaves the old pods serving (issue 17). With `workload.storage` the pods share
/// a ReadWriteOnce volume, which cannot attach to the old and the new pod at once: Recreate.
fn strategy(storage: bool) -> DeploymentStrategy {
    if storage {
        return DeploymentStrategy {
            type_: Some("Recreate".into()),
            ..DeploymentStrategy::default()
        };
    }
    DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::String("25%".into())),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    }
}

/// GET /v1/health on the named port; HTTPS when the server serves TLS (D13).
fn health_probe(tls: bool) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(HEALTH_PATH.into()),
            port: IntOrString::String(PORT_NAME.into()),
            scheme: Some(if tls { "HTTPS" } else { "HTTP" }.into()),
            ..HTTPGetAction::default()
        }),
        ..Probe::default()
    }
}

fn value_env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// Adds `var`, or replaces the variable of the same name where it stands: duplicate names
/// are invalid list keys for server-side apply (upstream bug 14), and the later definition is
/// the one Kubernetes would use anyway.
fn upsert(env: &mut Vec<EnvVar>, var: EnvVar) {
    match env.iter_mut().find(|e| e.name == var.name) {
        Some(slot) => *slot = var,
        None => env.push(var),
    }
}

/// Injected variables in a fixed order (D10: an unchanged spec never changes the pod), then
/// the engine's Secret references, then the user's, which win over same-named injected ones.
fn env(inputs: &Inputs, port: i32) -> Vec<EnvVar> {
    let w = workload(inputs.cr);
    let workers = w.and_then(|w| w.workers).unwrap_or(1);
    let mut env = vec![
        value_env("LLAMA_STACK_CONFIG", CONFIG_PATH),
        // The server takes its port from here, not from config.yaml (D13).
        value_env("LLAMA_STACK_PORT", port.to_string()),
        value_env("HF_HOME", mount_path(w)),
    ];
    if inputs.ca_bundle_hash.is_some() {
        env.push(value_env(
            "SSL_CERT_FILE",
            format!("{CA_BUNDLE_DIR}/{CA_BUNDLE_KEY}"),
        ));
    }
    // Read by images started through the v1alpha1 startup script (quirk 15).
    env.push(value_env("LLS_WORKERS", workers.to_string()));
    env.push(value_env("LLS_PORT", port.to_string()));
    let injected = env.len();
    for s in inputs.secret_env {
        upsert(
            &mut env,
            EnvVar {
                name: s.name.clone(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: s.secret_name.clone(),
                        key: s.secret_key.clone(),
                        ..SecretKeySelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
        );
    }
    if let Some(user) = w
        .and_then(|w| w.overrides.as_ref())
        .and_then(|o| o.env.as_ref())
    {
        for var in user {
            upsert(&mut env, var.clone());
        }
    }
    if !inputs.external.is_empty() {
        python_path_first(&mut env, injected);
    }
    env
}

const PYTHONPATH: &str = "PYTHONPATH";
/// Holds a user `PYTHONPATH` that comes from `valueFrom`, so ours can be put in front of it.
pub const USER_PYTHONPATH: &str = "LLS_USER_PYTHONPATH";

/// Puts the external providers' packages first on `PYTHONPATH` (NFR-004: they shadow the
/// image's packages), keeping whatever the user or the engine set after them. Without a
/// `PYTHONPATH` of theirs it joins the injected variables, so their values can use
/// `$(PYTHONPATH)`.
fn python_path_first(env: &mut Vec<EnvVar>, injected: usize) {
    let ours = external::PYTHON_PACKAGES;
    let Some(i) = env.iter().position(|e| e.name == PYTHONPATH) else {
        env.insert(injected.min(env.len()), value_env(PYTHONPATH, ours));
        return;
    };
    if env[i].value_from.is_none() {
        let theirs = env[i].value.take().unwrap_or_default();
        env[i].value = Some(if theirs.is_empty() {
            ours.to_string()
        } else {
            format!("{ours}:{theirs}")
        });
        return;
    }
    // A value read at container start cannot be edited here: rename it and compose both with
    // dependent variable expansion, which needs the referenced variable defined first. A
    // same-named variable of the user's would duplicate a list key (upstream bug 14); ours
    // is the later definition, so it wins as Kubernetes would pick it anyway.
    let mut from = env.remove(i);
    let i = match env.iter().position(|e| e.name == USER_PYTHONPATH) {
        Some(dup) => {
            env.remove(dup);
            if dup < i { i - 1 } else { i }
        }
        None => i,
    };
    from.name = USER_PYTHONPATH.into();
    env.insert(i, from);
    env.insert(
        i + 1,
        value_env(PYTHONPATH, format!("{ours}:$({USER_PYTHONPATH})")),
    );
}

fn volume_mounts(inputs: &Inputs, tls: bool) -> Vec<VolumeMount> {
    let w = workload(inputs.cr);
    let mut mounts = vec![
        // subPath: only the file, so the rest of /etc/llama-stack stays the image's.
        VolumeMount {
            name: VOLUME_CONFIG.into(),
            mount_path: CONFIG_PATH.into(),
            sub_path: Some(CONFIG_KEY.into()),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: VOLUME_STORAGE.into(),
            mount_path: mount_path(w),
            ..VolumeMount::default()
        },
    ];
    if tls {
        mounts.push(VolumeMount {
            name: VOLUME_TLS.into(),
            mount_path: TLS_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    if inputs.ca_bundle_hash.is_some() {
        mounts.push(VolumeMount {
            name: VOLUME_CA_BUNDLE.into(),
            mount_path: CA_BUNDLE_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    if !inputs.external.is_empty() {
        // Read-only: the server only imports what the init containers installed.
        mounts.push(VolumeMount {
            name: external::VOLUME.into(),
            mount_path: external::MOUNT.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    if let Some(extra) = w
        .and_then(|w| w.overrides.as_ref())
        .and_then(|o| o.volume_mounts.as_ref())
    {
        mounts.extend(extra.iter().cloned());
    }
    mounts
}

/// The user's resources with defaults (FR-012): requests of one CPU per worker and 1Gi; with
/// `workers` set, limits default to the requests (v1alpha1 behaviour).
fn resources(w: Option<&WorkloadSpec>) -> ResourceRequirements {
    let mut r = w.and_then(|w| w.resources.clone()).unwrap_or_default();
    let workers = w.and_then(|w| w.workers);
    let defaults = [
        ("cpu", workers.unwrap_or(1).to_string()),
        ("memory", "1Gi".to_string()),
    ];
    let limits = r.limits.clone().unwrap_or_default();
    let requests = r.requests.get_or_insert_with(BTreeMap::new);
    for (resource, default) in &defaults {
        if requests.contains_key(*resource) {
            continue;
        }
        let default = Quantity(default.clone());
        // A default above the user's limit would make the pod invalid (request > limit):
        // cap it there, as the API server's own defaulting (request = limit) would.
        let value = match limits.get(*resource) {
            Some(limit) if exceeds(&default, limit) => limit.clone(),
            _ => default,
        };
        requests.insert((*resource).into(), value);
    }
    if workers.is_some() {
        let requested = requests.clone();
        let limits = r.limits.get_or_insert_with(BTreeMap::new);
        for (resource, _) in &defaults {
            if let Some(q) = requested.get(*resource) {
                limits
                    .entry((*resource).into())
                    .or_insert_with(|| q.clone());
            }
        }
    }
    r
}

/// Whether `a > b`; false when either is not a quantity we can read (the API server then
/// judges the object as written).
fn exceeds(a: &Quantity, b: &Quantity) -> bool {
    matches!((quantity_value(a), quantity_value(b)), (Some(a), Some(b)) if a > b)
}

/// Approximate numeric value of a Kubernetes quantity (enough to compare two of them).
fn quantity_value(q: &Quantity) -> Option<f64> {
    let s = q.0.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let binary = |power: i32| 1024f64.powi(power);
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(number * scale)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        CONFIG_HASH, CONFIG_MAP, IMAGE, NAME, assert_server_owned, inputs, minimal,
        with_networking, with_workload,
    };
    use super::*;
    use llama_stack_config::SecretEnv;
    use serde_json::json;

    fn pod(d: &Deployment) -> &PodSpec {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    fn main_container(d: &Deployment) -> &Container {
        let pod = pod(d);
        assert_eq!(pod.containers.len(), 1);
        &pod.containers[0]
    }

    fn env_pairs(c: &Container) -> Vec<(String, String)> {
        c.env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| {
                let v = match (&e.value, &e.value_from) {
                    (Some(v), None) => v.clone(),
                    (None, Some(f)) => {
                        let r = f.secret_key_ref.as_ref().unwrap();
                        format!("secret:{}/{}", r.name, r.key)
                    }
                    other => panic!("unexpected env value {other:?}"),
                };
                (e.name.clone(), v)
            })
            .collect()
    }

    fn names_of<T>(items: &[T], f: impl Fn(&T) -> &str) -> Vec<String> {
        items.iter().map(|i| f(i).to_string()).collect()
    }

    fn q(s: &str) -> Quantity {
        Quantity(s.into())
    }

    #[test]
    fn minimal_cr_defaults() {
        let cr = minimal();
        let d = deployment(&inputs(&cr)).unwrap();
        assert_server_owned(&d.metadata, NAME);
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(1));
        // Issue 17: capacity never drops during a rollout.
        let rolling = spec
            .strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref());
        assert_eq!(
            (
                spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
                rolling.and_then(|r| r.max_unavailable.clone()),
                rolling.and_then(|r| r.max_surge.clone()),
            ),
            (
                Some("RollingUpdate"),
                Some(IntOrString::Int(0)),
                Some(IntOrString::String("25%".into()))
            )
        );
        assert_eq!(
            main_container(&d).termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        assert_eq!(spec.selector.match_labels, Some(selector_labels(NAME)));
        assert_eq!(spec.selector.match_expressions, None);

        let tmeta = spec.template.metadata.as_ref().unwrap();
        assert_eq!(tmeta.labels, Some(common_labels(NAME, "server")));
        let annotations = tmeta.annotations.as_ref().unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(
            annotations[CONFIG_HASH_ANNOTATION],
            format!("sha256:{CONFIG_HASH}")
        );

        let pod = pod(&d);
        assert_eq!(pod.service_account_name.as_deref(), Some("demo-sa"));
        assert_eq!(pod.termination_grace_period_seconds, None);
        assert_eq!(pod.topology_spread_constraints, None);
        assert_eq!(pod.affinity, None);
        assert_eq!(pod.init_containers, None);

        let c = main_container(&d);
        assert_eq!(c.name, "llama-stack");
        assert_eq!(c.image.as_deref(), Some(IMAGE));
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(
            c.command,
            Some(
                ["llama", "stack", "run", "/etc/llama-stack/config.yaml"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(c.args, None);
        let ports = c.ports.as_ref().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].name.as_deref(), Some("http"));
        assert_eq!(ports[0].container_port, 8321);
        assert_eq!(c.liveness_probe, None);
    }

    #[test]
    fn selector_is_subset_of_template_labels() {
        let cr = minimal();
        let d = deployment(&inputs(&cr)).unwrap();
        let spec = d.spec.unwrap();
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        for (k, v) in spec.selector.match_labels.unwrap() {
            assert_eq!(labels.get(&k), Some(&v), "selector label {k}");
        }
    }

    #[test]
    fn restricted_security_context() {
        let cr = minimal();
        let d = deployment(&inputs(&cr)).unwrap();
        let psc = pod(&d).security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.run_as_user, Some(1001));
        assert_eq!(psc.fs_group, Some(1001));
        assert_eq!(
            psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            Some("RuntimeDefault")
        );
        let csc = main_container(&d).security_context.as_ref().unwrap();
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        assert_eq!(
            csc.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".to_string()])
        );
        assert_eq!(csc.capabilities.as_ref().unwrap().add, None);
        assert_eq!(csc.run_as_non_root, Some(true));
        assert_eq!(csc.privileged, None);
        assert_eq!(
            csc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            Some("RuntimeDefault")
        );
    }

    #[test]
    fn env_order_without_extras() {
        let cr = minimal();
        let d = deployment(&inputs(&cr)).unwrap();
        let want = [
            ("LLAMA_STACK_CONFIG", "/etc/llama-stack/config.yaml"),
            ("LLAMA_STACK_PORT", "8321"),
            ("HF_HOME", "/.llama"),
            ("LLS_WORKERS", "1"),
            ("LLS_PORT", "8321"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(env_pairs(main_container(&d)), want);
    }

    #[test]
    fn env_order_with_everything_and_user_replacement() {
        let cr = cr_full();
        let secret_env = [
            SecretEnv {
                name: "VLLM_API_TOKEN".into(),
                secret_name: "vllm".into(),
                secret_key: "token".into(),
            },
            SecretEnv {
                name: "OPENAI_API_KEY".into(),
                secret_name: "openai".into(),
                secret_key: "key".into(),
            },
        ];
        let i = Inputs {
            secret_env: &secret_env,
            ca_bundle_hash: Some("cafe"),
            ..inputs(&cr)
        };
        let d = deployment(&i).unwrap();
        let got = env_pairs(main_container(&d));
        let want = [
            ("LLAMA_STACK_CONFIG", "/etc/llama-stack/config.yaml"),
            ("LLAMA_STACK_PORT", "9000"),
            // The user's HF_HOME replaces the injected one in place.
            ("HF_HOME", "/cache/hf"),
            ("SSL_CERT_FILE", "/etc/ssl/certs/ca-bundle/ca-bundle.crt"),
            ("LLS_WORKERS", "2"),
            ("LLS_PORT", "9000"),
            ("VLLM_API_TOKEN", "secret:vllm/token"),
            // A user value replaces an engine Secret reference in place too.
            ("OPENAI_API_KEY", "literal"),
            ("EXTRA", "second"),
            ("LAST", "x"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(got, want);
        let names: Vec<_> = got.iter().map(|(n, _)| n).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "no duplicate env names");
    }

    /// A CR setting nearly every workload and networking knob.
    fn cr_full() -> crate::api::v1alpha2::LlamaStackDistribution {
        super::super::testing::cr(json!({
            "distribution": {"name": "starter"},
            "networking": {"port": 9000},
            "workload": {
                "replicas": 2,
                "workers": 2,
                "storage": {"size": "20Gi", "mountPath": "/data"},
                "overrides": {
                    "serviceAccountName": "custom-sa",
                    "terminationGracePeriodSeconds": 45,
                    "command": ["python", "-m", "server"],
                    "args": ["--verbose"],
                    "env": [
                        {"name": "EXTRA", "value": "first"},
                        {"name": "HF_HOME", "value": "/cache/hf"},
                        {"name": "OPENAI_API_KEY", "value": "literal"},
                        {"name": "EXTRA", "value": "second"},
                        {"name": "LAST", "value": "x"}
                    ],
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]
                }
            }
        }))
    }

    #[test]
    fn overrides_apply() {
        let cr = cr_full();
        let d = deployment(&inputs(&cr)).unwrap();
        let pod = pod(&d);
        assert_eq!(pod.service_account_name.as_deref(), Some("custom-sa"));
        assert_eq!(pod.termination_grace_period_seconds, Some(45));
        let c = main_container(&d);
        assert_eq!(
            c.command,
            Some(vec!["python".into(), "-m".into(), "server".into()])
        );
        assert_eq!(c.args, Some(vec!["--verbose".into()]));
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 9000);
        assert_eq!(
            names_of(pod.volumes.as_ref().unwrap(), |v| &v.name),
            ["config", "lls-storage", "scratch"]
        );
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert_eq!(
            names_of(mounts, |m| &m.name),
            ["config", "lls-storage", "scratch"]
        );
        assert_eq!(mounts[1].mount_path, "/data");
    }

    #[test]
    fn empty_command_override_keeps_default() {
        let cr = with_workload(json!({"overrides": {"command": [], "args": []}}));
        let d = deployment(&inputs(&cr)).unwrap();
        let c = main_container(&d);
        assert_eq!(c.command.as_ref().unwrap()[0..3], ["llama", "stack", "run"]);
        assert_eq!(c.args, None);
    }

    #[test]
    fn config_volume_and_mount() {
        let cr = minimal();
        let d = deployment(&inputs(&cr)).unwrap();
        let vols = pod(&d).volumes.as_ref().unwrap();
        assert_eq!(names_of(vols, |v| &v.name), ["config", "lls-storage"]);
        let cm = vols[0].config_map.as_ref().unwrap();
        assert_eq!(cm.name, CONFIG_MAP);
        let items = cm.items.as_ref().unwrap();
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            ("config.yaml", "config.yaml")
        );
        assert!(vols[1].empty_dir.is_some());
        assert!(vols[1].persistent_volume_claim.is_none());

        let mounts = main_container(&d).volume_mounts.clone().unwrap();
        assert_eq!(mounts[0].name, "config");
        assert_eq!(mounts[0].mount_path, "/etc/llama-stack/config.yaml");
        assert_eq!(mounts[0].sub_path.as_deref(), Some("config.yaml"));
        assert_eq!(mounts[0].read_only, Some(true));
        assert_eq!(mounts[1].name, "lls-storage");
        assert_eq!(mounts[1].mount_path, "/.llama");
        assert_eq!(mounts.len(), 2);
    }

    #[test]
    fn storage_uses_pvc_and_recreate() {
        let cr = with_workload(json!({"storage": {}}));
        let d = deployment(&inputs(&cr)).unwrap();
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(
            spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
            Some("Recreate")
        );
        let vols = pod(&d).volumes.as_ref().unwrap();
        assert_eq!(
            vols[1].persistent_volume_claim.as_ref().unwrap().claim_name,
            "demo-pvc"
        );
        assert!(vols[1].empty_dir.is_none());
        assert_eq!(
            main_container(&d).volume_mounts.as_ref().unwrap()[1].mount_path,
            "/.llama"
        );
    }

    #[test]
    fn autoscaling_omits_replicas() {
        let cr = with_workload(json!({"replicas": 3, "autoscaling": {"maxReplicas": 5}}));
        let d = deployment(&inputs(&cr)).unwrap();
        assert_eq!(d.spec.as_ref().unwrap().replicas, None);
        // The JSON must not carry the field at all, or an apply would reset the HPA's count.
        let json = serde_json::to_value(&d).unwrap();
        assert!(json["spec"].get("replicas").is_none());
    }

    #[test]
    fn explicit_replicas_kept() {
        let cr = with_workload(json!({"replicas": 0}));
        let d = deployment(&inputs(&cr)).unwrap();
        assert_eq!(d.spec.unwrap().replicas, Some(0));
    }

    #[test]
    fn tls_mounts_secret_and_probes_https() {
        let cr = with_networking(json!({"tls": {"enabled": true, "secretName": "server-tls"}}));
        let d = deployment(&inputs(&cr)).unwrap();
        let vols = pod(&d).volumes.as_ref().unwrap();
        assert_eq!(
            names_of(vols, |v| &v.name),
            ["config", "lls-storage", "tls"]
        );
        assert_eq!(
            vols[2].secret.as_ref().unwrap().secret_name.as_deref(),
            Some("server-tls")
        );
        let c = main_container(&d);
        let tls_mount = &c.volume_mounts.as_ref().unwrap()[2];
        assert_eq!(
            (tls_mount.name.as_str(), tls_mount.mount_path.as_str()),
            ("tls", "/etc/llama-stack/tls")
        );
        assert_eq!(tls_mount.read_only, Some(true));
        for p in [&c.readiness_probe, &c.startup_probe] {
            let get = p.as_ref().unwrap().http_get.as_ref().unwrap();
            assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        }
    }

    #[test]
    fn tls_disabled_is_ignored() {
        let cr = with_networking(json!({"tls": {"enabled": false, "secretName": "server-tls"}}));
        let d = deployment(&inputs(&cr)).unwrap();
        assert_eq!(pod(&d).volumes.as_ref().unwrap().len(), 2);
        let get = main_container(&d).readiness_probe.clone().unwrap().http_get;
        assert_eq!(get.unwrap().scheme.as_deref(), Some("HTTP"));
    }

    #[test]
    fn tls_without_secret_is_an_error() {
        let cr = with_networking(json!({"tls": {"enabled": true}}));
        assert_eq!(
            deployment(&inputs(&cr)).unwrap_err(),
            BuildError::MissingField {
                field: "spec.networking.tls.secretName"
            }
        );
    }

    #[test]
    fn a_terminating_server_keeps_serving_while_endpoints_update() {
        let cr = minimal();
        let d = deployment(&inputs(&cr)).unwrap();
        let pre_stop = main_container(&d)
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .unwrap();
        assert_eq!(
            pre_stop.sleep.as_ref().map(|s| s.seconds),
            Some(PRE_STOP_SLEEP_SECONDS)
        );
        // No exec: the image need not have a shell.
        assert_eq!(pre_stop.exec, None);
    }

    #[test]
    fn probes() {
        let cr = minimal();
        let d = deployment(&inputs(&cr)).unwrap();
        let c = main_container(&d);
        let readiness = c.readiness_probe.as_ref().unwrap();
        let startup = c.startup_probe.as_ref().unwrap();
        for p in [readiness, startup] {
            let get = p.http_get.as_ref().unwrap();
            assert_eq!(get.path.as_deref(), Some("/v1/health"));
            assert_eq!(get.port, IntOrString::String("http".into()));
            assert_eq!(get.scheme.as_deref(), Some("HTTP"));
        }
        assert_eq!(
            (
                readiness.period_seconds,
                readiness.timeout_seconds,
                readiness.failure_threshold
            ),
            (Some(10), Some(5), Some(3))
        );
        assert_eq!(
            (startup.period_seconds, startup.failure_threshold),
            (Some(10), Some(30))
        );
    }

    #[test]
    fn ca_bundle_mount_env_and_annotation() {
        let cr = with_workload(json!({"storage": {}}));
        let i = Inputs {
            ca_bundle_hash: Some("beef"),
            ..inputs(&cr)
        };
        let d = deployment(&i).unwrap();
        let annotations = d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap();
        assert_eq!(
            annotations.annotations.as_ref().unwrap()[CA_BUNDLE_HASH_ANNOTATION],
            "sha256:beef"
        );
        let vols = pod(&d).volumes.as_ref().unwrap();
        assert_eq!(
            names_of(vols, |v| &v.name),
            ["config", "lls-storage", "ca-bundle"]
        );
        let cm = vols[2].config_map.as_ref().unwrap();
        assert_eq!(cm.name, "demo-ca-bundle");
        let items = cm.items.as_ref().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            ("ca-bundle.crt", "ca-bundle.crt")
        );
        let c = main_container(&d);
        let m = &c.volume_mounts.as_ref().unwrap()[2];
        assert_eq!(
            (m.name.as_str(), m.mount_path.as_str(), m.read_only),
            ("ca-bundle", "/etc/ssl/certs/ca-bundle", Some(true))
        );
        let env = env_pairs(c);
        assert_eq!(
            env[3],
            (
                "SSL_CERT_FILE".to_string(),
                "/etc/ssl/certs/ca-bundle/ca-bundle.crt".to_string()
            )
        );
    }

    #[test]
    fn tls_and_ca_bundle_volume_order() {
        let cr = with_networking(json!({"tls": {"enabled": true, "secretName": "s",
            "caBundle": {"configMapName": "cas"}}}));
        let i = Inputs {
            ca_bundle_hash: Some("beef"),
            ..inputs(&cr)
        };
        let d = deployment(&i).unwrap();
        assert_eq!(
            names_of(pod(&d).volumes.as_ref().unwrap(), |v| &v.name),
            ["config", "lls-storage", "tls", "ca-bundle"]
        );
        assert_eq!(
            names_of(main_container(&d).volume_mounts.as_ref().unwrap(), |m| &m
                .name),
            ["config", "lls-storage", "tls", "ca-bundle"]
        );
    }

    #[test]
    fn resources_default_without_workers() {
        let cr = minimal();
        let d = deployment(&inputs(&cr)).unwrap();
        let r = main_container(&d).resources.clone().unwrap();
        assert_eq!(
            r.requests,
            Some(BTreeMap::from([
                ("cpu".into(), q("1")),
                ("memory".into(), q("1Gi"))
            ]))
        );
        assert_eq!(r.limits, None);
    }

    #[test]
    fn resources_default_with_workers_sets_limits() {
        let cr = with_workload(json!({"workers": 4}));
        let d = deployment(&inputs(&cr)).unwrap();
        let r = main_container(&d).resources.clone().unwrap();
        let want = BTreeMap::from([("cpu".into(), q("4")), ("memory".into(), q("1Gi"))]);
        assert_eq!(r.requests.as_ref(), Some(&want));
        assert_eq!(r.limits.as_ref(), Some(&want));
        assert_eq!(env_pairs(main_container(&d))[3].1, "4");
    }

    #[test]
    fn resources_keep_user_values() {
        let cr = with_workload(json!({"workers": 2, "resources": {
            "requests": {"memory": "4Gi", "nvidia.com/gpu": "1"},
            "limits": {"cpu": "3"}
        }}));
        let d = deployment(&inputs(&cr)).unwrap();
        let r = main_container(&d).resources.clone().unwrap();
        assert_eq!(
            r.requests,
            Some(BTreeMap::from([
                ("cpu".into(), q("2")),
                ("memory".into(), q("4Gi")),
                ("nvidia.com/gpu".into(), q("1")),
            ]))
        );
        assert_eq!(
            r.limits,
            Some(BTreeMap::from([
                ("cpu".into(), q("3")),
                ("memory".into(), q("4Gi")),
            ]))
        );
    }

    #[test]
    fn default_requests_capped_at_user_limits() {
        let cr = with_workload(json!({"workers": 4, "resources": {
            "limits": {"cpu": "1500m", "memory": "512Mi"}
        }}));
        let d = deployment(&inputs(&cr)).unwrap();
        let r = main_container(&d).resources.clone().unwrap();
        let want = BTreeMap::from([("cpu".into(), q("1500m")), ("memory".into(), q("512Mi"))]);
        assert_eq!(r.requests.as_ref(), Some(&want));
        assert_eq!(r.limits.as_ref(), Some(&want));
    }

    #[test]
    fn quantity_comparison() {
        let v = |s: &str| quantity_value(&q(s));
        assert_eq!(v("1500m"), Some(1.5));
        assert_eq!(v("2"), Some(2.0));
        assert_eq!(v("1Gi"), Some(1073741824.0));
        assert_eq!(v("1G"), Some(1e9));
        assert_eq!(v("1e3"), Some(1000.0));
        assert_eq!(v("2E"), Some(2e18));
        assert_eq!(v("lots"), None);
        assert!(exceeds(&q("1Gi"), &q("512Mi")));
        assert!(!exceeds(&q("1Gi"), &q("2G")));
        assert!(!exceeds(&q("1"), &q("1000m")));
        assert!(!exceeds(&q("4"), &q("bogus")));
    }

    #[test]
    fn resources_user_limits_without_workers_untouched() {
        let cr = with_workload(json!({"resources": {"requests": {"cpu": "500m"}}}));
        let d = deployment(&inputs(&cr)).unwrap();
        let r = main_container(&d).resources.clone().unwrap();
        assert_eq!(
            r.requests,
            Some(BTreeMap::from([
                ("cpu".into(), q("500m")),
                ("memory".into(), q("1Gi"))
            ]))
        );
        assert_eq!(r.limits, None);
    }

    #[test]
    fn spread_defaults_with_several_replicas() {
        let cr = with_workload(json!({"replicas": 3}));
        let d = deployment(&inputs(&cr)).unwrap();
        let pod = pod(&d);
        let tsc = pod.topology_spread_constraints.as_ref().unwrap();
        assert_eq!(
            names_of(tsc, |c| &c.topology_key),
            [
                "topology.kubernetes.io/region",
                "topology.kubernetes.io/zone",
                "kubernetes.io/hostname"
            ]
        );
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "app.kubernetes.io/instance".into(),
                NAME.into(),
            )])),
            ..LabelSelector::default()
        };
        for c in tsc {
            assert_eq!(c.max_skew, 1);
            assert_eq!(c.when_unsatisfiable, "ScheduleAnyway");
            assert_eq!(c.label_selector.as_ref(), Some(&selector));
        }
        let terms = pod
            .affinity
            .as_ref()
            .unwrap()
            .pod_anti_affinity
            .as_ref()
            .unwrap()
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap();
        assert_eq!(terms.len(), 1);
        assert_eq!(terms[0].weight, 100);
        assert_eq!(
            terms[0].pod_affinity_term.topology_key,
            "kubernetes.io/hostname"
        );
        assert_eq!(
            terms[0].pod_affinity_term.label_selector.as_ref(),
            Some(&selector)
        );
    }

    #[test]
    fn user_spread_constraints_replace_defaults() {
        let cr = with_workload(json!({"replicas": 3, "topologySpreadConstraints": [
            {"maxSkew": 2, "topologyKey": "rack", "whenUnsatisfiable": "DoNotSchedule"}
        ]}));
        let d = deployment(&inputs(&cr)).unwrap();
        let pod = pod(&d);
        let tsc = pod.topology_spread_constraints.as_ref().unwrap();
        assert_eq!(tsc.len(), 1);
        assert_eq!((tsc[0].topology_key.as_str(), tsc[0].max_skew), ("rack", 2));
        assert_eq!(pod.affinity, None);
    }

    #[test]
    fn autoscaling_floor_decides_spread() {
        let cr = with_workload(json!({"replicas": 3, "autoscaling": {"maxReplicas": 4}}));
        let d = deployment(&inputs(&cr)).unwrap();
        assert_eq!(pod(&d).topology_spread_constraints, None);
        let cr = with_workload(json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 4}}));
        let d = deployment(&inputs(&cr)).unwrap();
        assert_eq!(
            pod(&d).topology_spread_constraints.as_ref().unwrap().len(),
            3
        );
    }

    #[test]
    fn deterministic() {
        let cr = cr_full();
        let secret_env = [SecretEnv {
            name: "A".into(),
            secret_name: "s".into(),
            secret_key: "k".into(),
        }];
        let i = Inputs {
            secret_env: &secret_env,
            ca_bundle_hash: Some("beef"),
            ..inputs(&cr)
        };
        let a = deployment(&i).unwrap();
        let b = deployment(&i).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            super::super::desired_hash(&a),
            super::super::desired_hash(&b)
        );
    }

    fn installs() -> Vec<external::ExternalInstall> {
        ["zeta", "alpha"]
            .map(|id| external::ExternalInstall {
                provider_id: id.into(),
                image: format!("registry.example/{id}:1.0"),
                pull_policy: "IfNotPresent".into(),
                wheel_path: format!("/lls-provider/packages/{id}-1.0-py3-none-any.whl"),
                dependency_wheels: vec![],
            })
            .to_vec()
    }

    #[test]
    fn external_providers_add_installs_volume_mount_and_pythonpath() {
        let cr = minimal();
        let installs = installs();
        let d = deployment(&Inputs {
            external: &installs,
            ..inputs(&cr)
        })
        .unwrap();
        let pod = pod(&d);
        let init = pod.init_containers.as_ref().unwrap();
        assert_eq!(
            names_of(init, |c| &c.name),
            ["install-provider-zeta", "install-provider-alpha"],
            "CRD order, not alphabetical"
        );
        assert_eq!(init, &external::init_containers(&installs));
        let vols = pod.volumes.as_ref().unwrap();
        assert_eq!(
            names_of(vols, |v| &v.name),
            ["config", "lls-storage", "external-providers"]
        );
        assert_eq!(
            vols[2].empty_dir.as_ref().unwrap().size_limit,
            Some(q("2Gi"))
        );
        let c = main_container(&d);
        let m = &c.volume_mounts.as_ref().unwrap()[2];
        assert_eq!(
            (m.name.as_str(), m.mount_path.as_str(), m.read_only),
            (
                "external-providers",
                "/opt/llama-stack/external-providers",
                Some(true)
            )
        );
        let want = [
            ("LLAMA_STACK_CONFIG", "/etc/llama-stack/config.yaml"),
            ("LLAMA_STACK_PORT", "8321"),
            ("HF_HOME", "/.llama"),
            ("LLS_WORKERS", "1"),
            ("LLS_PORT", "8321"),
            (
                "PYTHONPATH",
                "/opt/llama-stack/external-providers/python-packages",
            ),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(env_pairs(c), want);
        // The server container itself is otherwise unchanged.
        assert_eq!(
            c.command,
            main_container(&deployment(&inputs(&cr)).unwrap()).command
        );
    }

    #[test]
    fn external_volume_and_mount_precede_user_ones() {
        let cr = cr_full();
        let installs = installs();
        let d = deployment(&Inputs {
            external: &installs,
            ..inputs(&cr)
        })
        .unwrap();
        assert_eq!(
            names_of(pod(&d).volumes.as_ref().unwrap(), |v| &v.name),
            ["config", "lls-storage", "external-providers", "scratch"]
        );
        assert_eq!(
            names_of(main_container(&d).volume_mounts.as_ref().unwrap(), |m| &m
                .name),
            ["config", "lls-storage", "external-providers", "scratch"]
        );
    }

    fn env_with_external(user_env: serde_json::Value) -> Vec<EnvVar> {
        let cr = with_workload(json!({"overrides": {"env": user_env}}));
        let installs = installs();
        let d = deployment(&Inputs {
            external: &installs,
            ..inputs(&cr)
        })
        .unwrap();
        main_container(&d).env.clone().unwrap()
    }

    #[test]
    fn user_pythonpath_comes_after_ours() {
        let env = env_with_external(json!([
            {"name": "A", "value": "1"},
            {"name": "PYTHONPATH", "value": "/app/lib:/more"}
        ]));
        let p: Vec<_> = env.iter().filter(|e| e.name == "PYTHONPATH").collect();
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].value.as_deref(),
            Some("/opt/llama-stack/external-providers/python-packages:/app/lib:/more")
        );
        assert_eq!(
            env.last().unwrap().name,
            "PYTHONPATH",
            "where the user put it"
        );

        let env = env_with_external(json!([{"name": "PYTHONPATH", "value": ""}]));
        let p = env.iter().find(|e| e.name == "PYTHONPATH").unwrap();
        assert_eq!(
            p.value.as_deref(),
            Some("/opt/llama-stack/external-providers/python-packages")
        );
    }

    #[test]
    fn user_pythonpath_from_config_map_is_composed() {
        let env = env_with_external(json!([
            {"name": "LLS_USER_PYTHONPATH", "value": "stale"},
            {"name": "PYTHONPATH", "valueFrom": {"configMapKeyRef": {"name": "py", "key": "path"}}},
            {"name": "Z", "value": "z"}
        ]));
        let names: Vec<_> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names[5..],
            ["LLS_USER_PYTHONPATH", "PYTHONPATH", "Z"],
            "{names:?}"
        );
        let user = &env[5];
        assert_eq!(user.value, None);
        assert_eq!(
            user.value_from
                .as_ref()
                .unwrap()
                .config_map_key_ref
                .as_ref()
                .unwrap()
                .name,
            "py"
        );
        assert_eq!(
            env[6].value.as_deref(),
            Some("/opt/llama-stack/external-providers/python-packages:$(LLS_USER_PYTHONPATH)")
        );
    }

    #[test]
    fn empty_external_leaves_deployment_unchanged() {
        for cr in [minimal(), cr_full()] {
            let d = deployment(&inputs(&cr)).unwrap();
            let json = serde_json::to_string(&d).unwrap();
            assert!(!json.contains("initContainers"));
            assert!(!json.contains("external-providers"));
            assert!(!json.contains("PYTHONPATH"));
            // Same as an explicitly empty list: one code path, no feature residue.
            let again = deployment(&Inputs {
                external: &[],
                ..inputs(&cr)
            })
            .unwrap();
            assert_eq!(json, serde_json::to_string(&again).unwrap());
        }
    }

    #[test]
    fn external_providers_change_the_applied_hash() {
        use super::super::desired_hash;
        let cr = minimal();
        let none = desired_hash(&deployment(&inputs(&cr)).unwrap());
        let installs = installs();
        let with = desired_hash(
            &deployment(&Inputs {
                external: &installs,
                ..inputs(&cr)
            })
            .unwrap(),
        );
        let mut retagged = installs.clone();
        retagged[1].image = "registry.example/alpha:1.1".into();
        let retagged = desired_hash(
            &deployment(&Inputs {
                external: &retagged,
                ..inputs(&cr)
            })
            .unwrap(),
        );
        assert_ne!(none, with);
        assert_ne!(with, retagged, "a new provider image rolls the pods");
    }

    #[test]
    fn config_change_changes_template() {
        let cr = minimal();
        let a = deployment(&inputs(&cr)).unwrap();
        let b = deployment(&Inputs {
            config_map: "demo-config-ffffffff",
            config_hash: "ffffffff",
            ..inputs(&cr)
        })
        .unwrap();
        assert_ne!(a.spec.unwrap().template, b.spec.unwrap().template);
    }
}

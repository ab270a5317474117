//! Install init containers of external providers (spec 001 FR-011..015, NFR-004, D16) and
//! their per-provider status (FR-028..032).
//!
//! D16: the operator reads `lls-provider-spec.yaml` through the registry API and merges the
//! config entries itself, so the pod only installs wheels: one init container per provider,
//! in CRD order, into a shared emptyDir the server reads through `PYTHONPATH`. No extraction
//! or merge init containers.

use super::hex;
use super::security::container_security_context;
use crate::api::v1alpha2::{
    ExternalProviderRef, ExternalProviderStatus, ExternalProvidersSpec, PullPolicy,
};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, Pod, ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The shared emptyDir of installed packages (spec 001 §4.2).
pub const VOLUME: &str = "external-providers";
/// Where the volume is mounted: rw in the install init containers, ro in the server.
pub const MOUNT: &str = "/opt/llama-stack/external-providers";
/// Install target of every provider; first on the server's `PYTHONPATH` (NFR-004).
pub const PYTHON_PACKAGES: &str = "/opt/llama-stack/external-providers/python-packages";
/// Manifest of installed wheels, `<providerId> <wheel file>` per line (FR-024a).
pub const INSTALLED_PACKAGES: &str = "/opt/llama-stack/external-providers/installed-packages.txt";
/// Default `sizeLimit` of the volume (typical provider 100–500 MB; exceeding it evicts the pod).
pub const DEFAULT_SIZE_LIMIT: &str = "2Gi";
/// Provider image contract (FR-001..004).
pub const PROVIDER_ROOT: &str = "/lls-provider";
pub const PROVIDER_SPEC: &str = "/lls-provider/lls-provider-spec.yaml";
pub const PROVIDER_PACKAGES: &str = "/lls-provider/packages";
/// Where the kubelet reads a container's termination message.
pub const TERMINATION_LOG: &str = "/dev/termination-log";

pub const PHASE_PENDING: &str = "Pending";
pub const PHASE_INSTALLING: &str = "Installing";
pub const PHASE_READY: &str = "Ready";
pub const PHASE_FAILED: &str = "Failed";

const INIT_PREFIX: &str = "install-provider-";
/// Longest container name (DNS label).
const MAX_NAME: usize = 63;
/// Hex digits of the hash that keeps shortened names distinct.
const NAME_HASH_LEN: usize = 8;

/// What the pod needs to install one external provider: the CR entry plus the wheel paths
/// from its image's `lls-provider-spec.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalInstall {
    pub provider_id: String,
    pub image: String,
    /// `Always`, `Never` or `IfNotPresent`.
    pub pull_policy: String,
    /// `spec.wheelPath` of the image's metadata.
    pub wheel_path: String,
    /// `spec.dependencyWheels` of the image's metadata.
    pub dependency_wheels: Vec<String>,
}

/// The external providers in CRD order (FR-012: section order, then list order, never
/// alphabetical), each with its API name as config.yaml spells it.
pub fn in_crd_order(spec: &ExternalProvidersSpec) -> Vec<(&'static str, &ExternalProviderRef)> {
    let sections = [
        ("inference", &spec.inference),
        ("safety", &spec.safety),
        ("agents", &spec.agents),
        ("vector_io", &spec.vector_io),
        ("datasetio", &spec.dataset_io),
        ("scoring", &spec.scoring),
        ("eval", &spec.eval),
        ("tool_runtime", &spec.tool_runtime),
        ("post_training", &spec.post_training),
    ];
    sections
        .into_iter()
        .flat_map(|(api, refs)| refs.iter().flatten().map(move |r| (api, r)))
        .collect()
}

/// `imagePullPolicy` value of a CR pull policy.
pub fn pull_policy(p: PullPolicy) -> &'static str {
    match p {
        PullPolicy::Always => "Always",
        PullPolicy::Never => "Never",
        PullPolicy::IfNotPresent => "IfNotPresent",
    }
}

/// `install-provider-<id>`. An ID that would make the name too long (or is not a DNS label,
/// which admission normally rules out) is shortened and suffixed with a hash of the ID, so
/// names stay valid and distinct.
pub fn init_container_name(provider_id: &str) -> String {
    let plain = format!("{INIT_PREFIX}{provider_id}");
    if plain.len() <= MAX_NAME && is_dns_label(&plain) {
        return plain;
    }
    let hash = hex(&Sha256::digest(provider_id.as_bytes()));
    let hash = &hash[..NAME_HASH_LEN];
    let keep = MAX_NAME - INIT_PREFIX.len() - 1 - NAME_HASH_LEN;
    let stem: String = provider_id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .take(keep)
        .collect();
    let stem = stem.trim_matches('-');
    if stem.is_empty() {
        format!("{INIT_PREFIX}{hash}")
    } else {
        format!("{INIT_PREFIX}{stem}-{hash}")
    }
}

fn is_dns_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.chars().all(|c| alnum(c) || c == '-') && s.starts_with(alnum) && s.ends_with(alnum)
}

/// The install script. Static: every value arrives as a positional argument, so no path or
/// image name can inject shell (they are only ever expanded inside double quotes), and `--`
/// keeps a wheel path from being read as a pip option. pip runs offline (FR-004, NFR-001)
/// and `--isolated` ignores pip config and PIP_* variables of the image (NFR-002).
/// Arguments: provider ID, image, container name, provider root, mount, install target,
/// termination log, then the wheels (provider wheel first).
const INSTALL_SCRIPT: &str = r#"id=$1
image=$2
container=$3
root=$4
mount=$5
target=$6
log=$7
shift 7
report() {
  printf '%s\n' "$1" >&2
  printf '%s\n' "$1" > "$log"
}
if [ ! -f "$root/lls-provider-spec.yaml" ]; then
  report "Missing $root/lls-provider-spec.yaml in image $image
Provider: $id
Init Container: $container
Resolution: Rebuild the provider image with its metadata at $root/lls-provider-spec.yaml."
  exit 1
fi
for wheel in "$@"; do
  if [ ! -f "$wheel" ]; then
    report "ERROR: Wheel $wheel named in $root/lls-provider-spec.yaml is missing from image $image
Provider: $id
Init Container: $container
Resolution: Fix spec.wheelPath/spec.dependencyWheels or add the wheel under $root/packages."
    exit 1
  fi
done
out=$(python3 -m pip install --isolated --no-index --no-cache-dir --disable-pip-version-check --find-links "$root/packages" --target "$target" -- "$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne 0 ]; then
  detail=$(printf '%s\n' "$out" | tail -c 2048)
  report "ERROR: Cannot install provider '$id' due to dependency conflict

Provider: $id
Image: $image
Init Container: $container

Pip installation failed (exit $rc) with:
$detail

Previously installed packages can be found in: $mount/installed-packages.txt

Resolution: Update provider images to use compatible dependency versions, or reorder providers in the CRD if one provider's dependencies are a superset of another's."
  exit "$rc"
fi
for wheel in "$@"; do
  printf '%s %s\n' "$id" "${wheel##*/}" >> "$mount/installed-packages.txt"
done
printf 'Installed provider %s from %s\n' "$id" "$image"
"#;

/// Kubernetes expands `$(VAR)` and reduces `$$` to `$` in command arguments; doubling every
/// `$` hands the container the value exactly as written.
fn literal_arg(s: &str) -> String {
    s.replace('$', "$$")
}

/// One install init container per provider, in the given (CRD) order (FR-011, FR-012): any
/// failure stops the pod before the server starts (FR-015).
pub fn init_containers(installs: &[ExternalInstall]) -> Vec<Container> {
    installs.iter().map(init_container).collect()
}

fn init_container(install: &ExternalInstall) -> Container {
    let name = init_container_name(&install.provider_id);
    let mut args = vec![
        // $0 of the script: shows in `ps` and in shell error messages.
        "install-provider".to_string(),
        literal_arg(&install.provider_id),
        literal_arg(&install.image),
        name.clone(),
        PROVIDER_ROOT.into(),
        MOUNT.into(),
        PYTHON_PACKAGES.into(),
        TERMINATION_LOG.into(),
        literal_arg(&install.wheel_path),
    ];
    args.extend(install.dependency_wheels.iter().map(|w| literal_arg(w)));
    Container {
        name,
        image: Some(install.image.clone()),
        image_pull_policy: Some(install.pull_policy.clone()),
        command: Some(vec!["sh".into(), "-c".into(), INSTALL_SCRIPT.into()]),
        args: Some(args),
        volume_mounts: Some(vec![VolumeMount {
            name: VOLUME.into(),
            mount_path: MOUNT.into(),
            ..VolumeMount::default()
        }]),
        // Sizes of spec 001 integration-points: pip needs memory, not much CPU.
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), Quantity("100m".into())),
                ("memory".into(), Quantity("256Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".into(),
                Quantity("512Mi".into()),
            )])),
            ..ResourceRequirements::default()
        }),
        // The script writes the message; the log tail covers crashes before it can.
        termination_message_path: Some(TERMINATION_LOG.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(container_security_context()),
        ..Container::default()
    }
}

/// The shared emptyDir; the limit bounds what providers may install on the node's disk.
pub fn volume(size_limit: &str) -> Volume {
    Volume {
        name: VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(size_limit.into())),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// Per-provider status from the install init containers of `pod` (spec 001 §3.2,
/// FR-028..030). `lastTransitionTime` is kept from `previous` while the phase stays.
pub fn provider_statuses(
    installs: &[ExternalInstall],
    pod: Option<&Pod>,
    previous: &[ExternalProviderStatus],
    now: Time,
) -> Vec<ExternalProviderStatus> {
    installs
        .iter()
        .map(|install| {
            let name = init_container_name(&install.provider_id);
            let (phase, message) = phase(install, &name, pod);
            let last_transition_time = previous
                .iter()
                .find(|p| p.provider_id == install.provider_id)
                .filter(|p| p.phase.as_deref() == Some(phase))
                .and_then(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            ExternalProviderStatus {
                provider_id: install.provider_id.clone(),
                image: Some(install.image.clone()),
                phase: Some(phase.into()),
                message: Some(message),
                init_container_name: Some(name),
                last_transition_time: Some(last_transition_time),
            }
        })
        .collect()
}

/// Waiting reasons that mean the image cannot be pulled; the kubelet keeps retrying, but
/// they need the user (US3 AS4).
const PULL_FAILURES: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
];

fn phase(install: &ExternalInstall, name: &str, pod: Option<&Pod>) -> (&'static str, String) {
    const NOT_STARTED: &str = "Waiting for init container to start";
    let Some(pod) = pod else {
        return (PHASE_PENDING, NOT_STARTED.into());
    };
    // A pod from before an image change says nothing about the image the CR wants now.
    let same_image = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == name))
        .is_some_and(|c| c.image.as_deref() == Some(install.image.as_str()));
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.as_ref())
        .and_then(|ss| ss.iter().find(|s| s.name == name));
    let (Some(status), true) = (status, same_image) else {
        return (PHASE_PENDING, NOT_STARTED.into());
    };
    let state = status.state.as_ref();
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        return terminated(install, name, t.exit_code, &t.reason, &t.message);
    }
    if state.and_then(|s| s.running.as_ref()).is_some() {
        return (
            PHASE_INSTALLING,
            format!("Installing provider packages from {}", install.image),
        );
    }
    match state.and_then(|s| s.waiting.as_ref()) {
        Some(w) => {
            let reason = w.reason.as_deref().unwrap_or_default();
            if PULL_FAILURES.contains(&reason) {
                return pull_failed(install, pod, w.message.as_deref());
            }
            // In back-off after a failed run: the last run's failure is what matters.
            if let Some(t) = status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .filter(|t| t.exit_code != 0)
            {
                return terminated(install, name, t.exit_code, &t.reason, &t.message);
            }
            let message = match (reason, w.message.as_deref()) {
                ("", _) => NOT_STARTED.to_string(),
                (r, Some(m)) if !m.is_empty() => format!("{NOT_STARTED}: {r}: {m}"),
                (r, _) => format!("{NOT_STARTED}: {r}"),
            };
            (PHASE_PENDING, message)
        }
        None => (PHASE_PENDING, NOT_STARTED.into()),
    }
}

fn terminated(
    install: &ExternalInstall,
    name: &str,
    exit_code: i32,
    reason: &Option<String>,
    message: &Option<String>,
) -> (&'static str, String) {
    if exit_code == 0 {
        return (
            PHASE_READY,
            format!("Installed from {} by {name}", install.image),
        );
    }
    let detail = message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .or(reason.as_deref())
        .unwrap_or("no termination message");
    (
        PHASE_FAILED,
        format!(
            "Init container {name} (image {}) exited with code {exit_code}: {detail}",
            install.image
        ),
    )
}

fn pull_failed(
    install: &ExternalInstall,
    pod: &Pod,
    kubelet: Option<&str>,
) -> (&'static str, String) {
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .unwrap_or("default");
    let mut message = format!("Failed to pull provider image {}", install.image);
    if let Some(k) = kubelet.filter(|k| !k.is_empty()) {
        message.push_str(&format!(": {k}"));
    }
    message.push_str(&format!(
        ". Resolution: check the image reference, and that the imagePullSecrets of \
         ServiceAccount {sa} grant access to its registry."
    ));
    (PHASE_FAILED, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha2::ExternalProvidersSpec;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, PodSpec, PodStatus,
    };
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    fn install(id: &str) -> ExternalInstall {
        ExternalInstall {
            provider_id: id.into(),
            image: format!("registry.example/{id}:1.0"),
            pull_policy: "IfNotPresent".into(),
            wheel_path: format!("/lls-provider/packages/{id}-1.0-py3-none-any.whl"),
            dependency_wheels: vec![],
        }
    }

    fn time(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn crd_order_is_section_then_list_order() {
        let spec: ExternalProvidersSpec = serde_json::from_value(json!({
            "postTraining": [{"providerId": "pt", "image": "i"}],
            "toolRuntime": [{"providerId": "tr", "image": "i"}],
            "eval": [{"providerId": "ev", "image": "i"}],
            "scoring": [{"providerId": "sc", "image": "i"}],
            "datasetIo": [{"providerId": "ds", "image": "i"}],
            "vectorIo": [{"providerId": "vz", "image": "i"}, {"providerId": "va", "image": "i"}],
            "agents": [{"providerId": "ag", "image": "i"}],
            "safety": [{"providerId": "sa", "image": "i"}],
            "inference": [{"providerId": "zz", "image": "i"}, {"providerId": "aa", "image": "i"}],
        }))
        .unwrap();
        let got: Vec<_> = in_crd_order(&spec)
            .into_iter()
            .map(|(api, r)| (api, r.provider_id.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("inference", "zz"),
                ("inference", "aa"),
                ("safety", "sa"),
                ("agents", "ag"),
                ("vector_io", "vz"),
                ("vector_io", "va"),
                ("datasetio", "ds"),
                ("scoring", "sc"),
                ("eval", "ev"),
                ("tool_runtime", "tr"),
                ("post_training", "pt"),
            ]
        );
        assert!(in_crd_order(&ExternalProvidersSpec::default()).is_empty());
    }

    #[test]
    fn pull_policies() {
        assert_eq!(pull_policy(PullPolicy::Always), "Always");
        assert_eq!(pull_policy(PullPolicy::Never), "Never");
        assert_eq!(pull_policy(PullPolicy::default()), "IfNotPresent");
    }

    #[test]
    fn init_container_names() {
        assert_eq!(
            init_container_name("acme-infer"),
            "install-provider-acme-infer"
        );
        // 46 characters is the most that fits unchanged.
        let fits = "a".repeat(46);
        assert_eq!(
            init_container_name(&fits),
            format!("install-provider-{fits}")
        );
        let long = format!("{}-x", "a".repeat(60));
        let name = init_container_name(&long);
        assert_eq!(name.len(), 63);
        assert!(is_dns_label(&name), "{name}");
        assert!(name.starts_with("install-provider-aaaa"));
        // Same prefix, different IDs: the hash keeps them apart.
        assert_ne!(name, init_container_name(&format!("{}-y", "a".repeat(60))));
        assert_eq!(name, init_container_name(&long), "stable");
        for odd in ["Foo_Bar", "-x-", "___", &"é".repeat(30)] {
            let n = init_container_name(odd);
            assert!(n.len() <= 63 && is_dns_label(&n), "{odd:?} -> {n}");
        }
        assert_eq!(
            init_container_name("___"),
            format!(
                "install-provider-{}",
                &hex(&Sha256::digest(b"___"))[..NAME_HASH_LEN]
            )
        );
    }

    #[test]
    fn one_container_per_install_in_order() {
        let cs = init_containers(&[install("zeta"), install("alpha"), install("mid")]);
        let names: Vec<_> = cs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "install-provider-zeta",
                "install-provider-alpha",
                "install-provider-mid"
            ]
        );
        assert!(init_containers(&[]).is_empty());
    }

    #[test]
    fn container_shape() {
        let i = ExternalInstall {
            pull_policy: "Always".into(),
            dependency_wheels: vec![
                "/lls-provider/packages/dep_a-1.0-py3-none-any.whl".into(),
                "/lls-provider/packages/dep_b-2.0-py3-none-any.whl".into(),
            ],
            ..install("acme")
        };
        let c = &init_containers(std::slice::from_ref(&i))[0];
        assert_eq!(c.image.as_deref(), Some("registry.example/acme:1.0"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        let cmd = c.command.as_ref().unwrap();
        assert_eq!(cmd[..2], ["sh", "-c"]);
        assert_eq!(cmd[2], INSTALL_SCRIPT);
        assert_eq!(
            c.args.as_ref().unwrap(),
            &[
                "install-provider",
                "acme",
                "registry.example/acme:1.0",
                "install-provider-acme",
                "/lls-provider",
                "/opt/llama-stack/external-providers",
                "/opt/llama-stack/external-providers/python-packages",
                "/dev/termination-log",
                "/lls-provider/packages/acme-1.0-py3-none-any.whl",
                "/lls-provider/packages/dep_a-1.0-py3-none-any.whl",
                "/lls-provider/packages/dep_b-2.0-py3-none-any.whl",
            ]
        );
        for needle in [
            "--no-index --no-cache-dir",
            "--find-links \"$root/packages\" --target \"$target\" -- \"$@\"",
            "Missing $root/lls-provider-spec.yaml in image $image",
            "Resolution: Update provider images to use compatible dependency versions",
            "installed-packages.txt",
        ] {
            assert!(INSTALL_SCRIPT.contains(needle), "script lacks {needle}");
        }
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(
            (mounts[0].name.as_str(), mounts[0].mount_path.as_str()),
            (VOLUME, MOUNT)
        );
        assert_eq!(mounts[0].read_only, None, "install writes");
        assert_eq!(
            c.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        let r = c.resources.as_ref().unwrap();
        let q = |s: &str| Quantity(s.into());
        assert_eq!(
            r.requests,
            Some(BTreeMap::from([
                ("cpu".into(), q("100m")),
                ("memory".into(), q("256Mi"))
            ]))
        );
        assert_eq!(
            r.limits,
            Some(BTreeMap::from([("memory".into(), q("512Mi"))]))
        );
    }

    #[test]
    fn restricted_pod_security() {
        let c = &init_containers(&[install("acme")])[0];
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.privileged, None);
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(caps.drop, Some(vec!["ALL".to_string()]));
        assert_eq!(caps.add, None);
        assert_eq!(
            sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            Some("RuntimeDefault")
        );
    }

    #[test]
    fn hostile_paths_are_only_arguments() {
        let evil = "/lls-provider/packages/x.whl; rm -rf / #$(id)`id`";
        let i = ExternalInstall {
            wheel_path: evil.into(),
            dependency_wheels: vec!["\"; reboot; \"".into()],
            ..install("acme")
        };
        let c = &init_containers(&[i])[0];
        let cmd = c.command.as_ref().unwrap();
        assert!(cmd.iter().all(|part| !part.contains("rm -rf")));
        assert!(cmd.iter().all(|part| !part.contains("reboot")));
        assert_eq!(cmd[2], INSTALL_SCRIPT, "the script never changes");
        let args = c.args.as_ref().unwrap();
        // `$` doubled: Kubernetes turns it back into one before the container sees it.
        assert_eq!(
            args[8],
            "/lls-provider/packages/x.whl; rm -rf / #$$(id)`id`"
        );
        assert_eq!(args[9], "\"; reboot; \"");
    }

    #[cfg(unix)]
    fn run_script(dir: &std::path::Path, wheels: &[&str], pip_exit: i32) -> (i32, String, String) {
        use std::os::unix::fs::PermissionsExt;
        // A stub python3 that records its arguments and fails when asked to.
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let stub = bin.join("python3");
        std::fs::write(
            &stub,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"{}\"\necho 'ERROR: conflict a==1 vs a==2'\nexit {pip_exit}\n",
                dir.join("pip-args").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mount = dir.join("mount");
        std::fs::create_dir_all(&mount).unwrap();
        let log = dir.join("termination-log");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(INSTALL_SCRIPT)
            .args([
                "install-provider",
                "acme",
                "reg/acme:1",
                "install-provider-acme",
            ])
            .arg(dir.join("lls-provider"))
            .arg(&mount)
            .arg(mount.join("python-packages"))
            .arg(&log)
            .args(wheels)
            .env("PATH", path)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into(),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }

    #[cfg(unix)]
    #[test]
    fn script_behaviour() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let wheel = d.join("lls-provider/packages/acme-1.0-py3-none-any.whl");
        let wheel = wheel.to_str().unwrap();

        // No metadata: spec 001's message, on stderr and in the termination log.
        let (code, stderr, log) = run_script(d, &[wheel], 0);
        assert_eq!(code, 1);
        let want = format!(
            "Missing {}/lls-provider-spec.yaml in image reg/acme:1",
            d.join("lls-provider").display()
        );
        assert!(stderr.contains(&want), "{stderr}");
        assert!(log.contains(&want) && log.contains("Resolution:"), "{log}");

        std::fs::create_dir_all(d.join("lls-provider/packages")).unwrap();
        std::fs::write(d.join("lls-provider/lls-provider-spec.yaml"), "kind: x\n").unwrap();

        // A wheel path carrying shell stays one (missing) path.
        let marker = d.join("pwned");
        let evil = format!("x.whl; touch {}", marker.display());
        let (code, _, log) = run_script(d, &[&evil], 0);
        assert_eq!(code, 1);
        assert!(!marker.exists(), "the path ran as a command");
        assert!(log.contains(&format!("Wheel {evil} named in")), "{log}");

        std::fs::write(wheel, "").unwrap();
        // pip fails: the spec's dependency-conflict text with the pip output.
        let (code, _, log) = run_script(d, &[wheel], 3);
        assert_eq!(code, 3);
        for part in [
            "Cannot install provider 'acme' due to dependency conflict",
            "Image: reg/acme:1",
            "Init Container: install-provider-acme",
            "(exit 3)",
            "ERROR: conflict a==1 vs a==2",
            "Resolution: Update provider images",
        ] {
            assert!(log.contains(part), "{part} missing from {log}");
        }
        assert!(log.len() < 4096);
        assert!(!d.join("mount/installed-packages.txt").exists());

        // pip succeeds: offline install into the target, manifest appended.
        let (code, _, _) = run_script(d, &[wheel], 0);
        assert_eq!(code, 0);
        let pip_args = std::fs::read_to_string(d.join("pip-args")).unwrap();
        let pip_args: Vec<_> = pip_args.lines().collect();
        let target = d.join("mount/python-packages");
        let links = d.join("lls-provider/packages");
        assert_eq!(
            pip_args,
            [
                "-m",
                "pip",
                "install",
                "--isolated",
                "--no-index",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--find-links",
                links.to_str().unwrap(),
                "--target",
                target.to_str().unwrap(),
                "--",
                wheel,
            ]
        );
        assert_eq!(
            std::fs::read_to_string(d.join("mount/installed-packages.txt")).unwrap(),
            "acme acme-1.0-py3-none-any.whl\n"
        );
    }

    #[test]
    fn volume_is_size_limited_empty_dir() {
        let v = volume(DEFAULT_SIZE_LIMIT);
        assert_eq!(v.name, "external-providers");
        assert_eq!(
            v.empty_dir.unwrap().size_limit,
            Some(Quantity("2Gi".into()))
        );
        assert_eq!(
            volume("5Gi").empty_dir.unwrap().size_limit,
            Some(Quantity("5Gi".into()))
        );
    }

    /// A pod built for `installs`, with the given init container states.
    fn pod(installs: &[ExternalInstall], states: Vec<(usize, ContainerStatus)>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                init_containers: Some(init_containers(installs)),
                service_account_name: Some("demo-sa".into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                init_container_statuses: Some(
                    states
                        .into_iter()
                        .map(|(i, s)| ContainerStatus {
                            name: init_container_name(&installs[i].provider_id),
                            ..s
                        })
                        .collect(),
                ),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn state(s: ContainerState) -> ContainerStatus {
        ContainerStatus {
            state: Some(s),
            ..ContainerStatus::default()
        }
    }

    fn waiting(reason: &str, message: Option<&str>) -> ContainerStatus {
        state(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: message.map(Into::into),
            }),
            ..ContainerState::default()
        })
    }

    fn term(code: i32, message: Option<&str>) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
                message: message.map(Into::into),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }
    }

    fn phases(s: &[ExternalProviderStatus]) -> Vec<(&str, &str)> {
        s.iter()
            .map(|s| (s.phase.as_deref().unwrap(), s.message.as_deref().unwrap()))
            .collect()
    }

    #[test]
    fn status_without_pod_is_pending() {
        let installs = [install("a"), install("b")];
        let s = provider_statuses(&installs, None, &[], time(5));
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].provider_id, "a");
        assert_eq!(s[0].image.as_deref(), Some("registry.example/a:1.0"));
        assert_eq!(
            s[0].init_container_name.as_deref(),
            Some("install-provider-a")
        );
        assert_eq!(s[0].last_transition_time, Some(time(5)));
        assert_eq!(
            phases(&s),
            [
                ("Pending", "Waiting for init container to start"),
                ("Pending", "Waiting for init container to start")
            ]
        );
    }

    #[test]
    fn status_mapping() {
        let installs: Vec<_> = [
            "none", "run", "ok", "bad", "init", "pull", "backoff", "never", "crash",
        ]
        .into_iter()
        .map(install)
        .collect();
        let p = pod(
            &installs,
            vec![
                (
                    1,
                    state(ContainerState {
                        running: Some(ContainerStateRunning::default()),
                        ..ContainerState::default()
                    }),
                ),
                (2, state(term(0, None))),
                (
                    3,
                    state(term(1, Some("ERROR: Cannot install provider 'bad'"))),
                ),
                (4, waiting("PodInitializing", None)),
                (5, waiting("ErrImagePull", Some("unauthorized"))),
                (6, waiting("ImagePullBackOff", None)),
                (7, waiting("ErrImageNeverPull", Some(""))),
                (
                    8,
                    ContainerStatus {
                        last_state: Some(term(2, None)),
                        ..waiting("CrashLoopBackOff", Some("back-off 10s"))
                    },
                ),
            ],
        );
        let s = provider_statuses(&installs, Some(&p), &[], time(1));
        let hint = ". Resolution: check the image reference, and that the imagePullSecrets of \
                    ServiceAccount demo-sa grant access to its registry.";
        assert_eq!(
            phases(&s),
            [
                ("Pending", "Waiting for init container to start"),
                (
                    "Installing",
                    "Installing provider packages from registry.example/run:1.0"
                ),
                (
                    "Ready",
                    "Installed from registry.example/ok:1.0 by install-provider-ok"
                ),
                (
                    "Failed",
                    "Init container install-provider-bad (image registry.example/bad:1.0) \
                     exited with code 1: ERROR: Cannot install provider 'bad'"
                ),
                (
                    "Pending",
                    "Waiting for init container to start: PodInitializing"
                ),
                (
                    "Failed",
                    &*format!(
                        "Failed to pull provider image registry.example/pull:1.0: unauthorized{hint}"
                    )
                ),
                (
                    "Failed",
                    &*format!("Failed to pull provider image registry.example/backoff:1.0{hint}")
                ),
                (
                    "Failed",
                    &*format!("Failed to pull provider image registry.example/never:1.0{hint}")
                ),
                (
                    "Failed",
                    "Init container install-provider-crash (image registry.example/crash:1.0) \
                     exited with code 2: Error"
                ),
            ]
        );
    }

    #[test]
    fn waiting_with_message_and_empty_state() {
        let installs = [install("a"), install("b")];
        let p = pod(
            &installs,
            vec![
                (0, waiting("ContainerCreating", Some("pulling"))),
                (1, ContainerStatus::default()),
            ],
        );
        let s = provider_statuses(&installs, Some(&p), &[], time(1));
        assert_eq!(
            phases(&s),
            [
                (
                    "Pending",
                    "Waiting for init container to start: ContainerCreating: pulling"
                ),
                ("Pending", "Waiting for init container to start"),
            ]
        );
    }

    #[test]
    fn pod_of_another_image_is_pending() {
        let old = [install("a")];
        let p = pod(&old, vec![(0, state(term(0, None)))]);
        let new = [ExternalInstall {
            image: "registry.example/a:2.0".into(),
            ..install("a")
        }];
        let s = provider_statuses(&new, Some(&p), &[], time(1));
        assert_eq!(s[0].phase.as_deref(), Some("Pending"));
        // And a pod without any status yet.
        let bare = Pod {
            spec: p.spec.clone(),
            ..Pod::default()
        };
        let s = provider_statuses(&old, Some(&bare), &[], time(1));
        assert_eq!(s[0].phase.as_deref(), Some("Pending"));
    }

    #[test]
    fn last_transition_time_kept_while_phase_stays() {
        let installs = [install("a"), install("b"), install("c")];
        let p = pod(
            &installs,
            vec![(0, state(term(0, None))), (1, state(term(0, None)))],
        );
        let previous = [
            ExternalProviderStatus {
                provider_id: "a".into(),
                phase: Some("Ready".into()),
                last_transition_time: Some(time(10)),
                ..ExternalProviderStatus::default()
            },
            ExternalProviderStatus {
                provider_id: "b".into(),
                phase: Some("Installing".into()),
                last_transition_time: Some(time(10)),
                ..ExternalProviderStatus::default()
            },
        ];
        let s = provider_statuses(&installs, Some(&p), &previous, time(99));
        assert_eq!(s[0].last_transition_time, Some(time(10)), "unchanged phase");
        assert_eq!(s[1].last_transition_time, Some(time(99)), "phase changed");
        assert_eq!(s[2].last_transition_time, Some(time(99)), "new provider");
    }
}

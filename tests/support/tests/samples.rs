//! Issue 9: every sample in deploy/samples, applied as its header says
//! (`kubectl apply -n <ns> -f <file>`: every document, in order) into one namespace of the real
//! control plane that an operator process watches, reaches phase Ready; a sample whose images
//! live in an outside registry reaches the condition its header documents instead
//! (ConfigGenerated=False, RegistryUnreachable where the registry cannot be reached, naming
//! the image). The directory is listed here, so a new sample is covered without a change.
//!
//! For each Ready sample: the conditions, the generated ConfigMap (hashed, immutable, owned,
//! byte-equal to what the offline CLI generates from the stored object), the Deployment (the
//! distribution's pinned image, the secret env refs, the overrides), and every object the spec
//! asks for (Service port, ServiceAccount, PVC, PDB, HPA, Ingress, CA bundle, NetworkPolicy).
//! Every field a sample sets reads back unchanged (v1alpha1 ones through the conversion).
//!
//! A binary of its own with one test: the v1alpha1 samples need the cluster-wide CRD's
//! conversion pointed at this test's operator process (as operator_v1alpha1.rs does); the
//! plain CRD is restored at the end.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use llsd_test_support::k8s_openapi::api::apps::v1::Deployment;
use llsd_test_support::k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use llsd_test_support::k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use llsd_test_support::k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use llsd_test_support::k8s_openapi::api::policy::v1::PodDisruptionBudget;
use llsd_test_support::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use llsd_test_support::kube::Client;
use llsd_test_support::kube::api::{Api, Patch, PatchParams, PostParams};
use llsd_test_support::kube::core::DynamicObject;
use llsd_test_support::{DeleteOnDrop, TestNamespace, client, eventually, kubectl};
use serde_json::{Value, json};

mod common;
use common::cr::{
    condition, image, phase, pvc_request, status, wait_converting, wait_cr, wait_events, wait_phase,
};
use common::llsd_api;

const SAMPLES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/samples");
const DISTRIBUTIONS: &str = include_str!("../../../configs/distributions.json");
const KIND: &str = "LlamaStackDistribution";
const CRD_NAME: &str = "llamastackdistributions.llamastack.io";
const OPERATOR_CONFIG: &str = "llama-stack-operator-config";
/// The registry failures a sample may document (operator README, "Images and registries").
const REGISTRY_REASONS: [&str; 3] = [
    "RegistryUnreachable",
    "ImageNotFound",
    "RegistryUnauthorized",
];

#[tokio::test]
async fn every_sample_reaches_ready_or_its_documented_condition() -> Result<()> {
    let client = client().await?;
    let ns = TestNamespace::create(&client, "samples").await?;
    let result = exercise(&client, &ns).await;
    common::operator::finish_converting(&client, ns, result).await
}

/// One file of deploy/samples: its documents in order.
struct SampleFile {
    path: PathBuf,
    text: String,
    docs: Vec<Value>,
}

impl SampleFile {
    fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn crs(&self) -> impl Iterator<Item = &Value> {
        self.docs.iter().filter(|d| d["kind"] == KIND)
    }
}

fn samples() -> Result<Vec<SampleFile>> {
    let dir = Path::new(SAMPLES_DIR);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.retain(|p| {
        p.extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
    });
    paths.sort();
    ensure!(!paths.is_empty(), "{} holds no sample", dir.display());
    let mut out = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let mut docs = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc)
                .with_context(|| format!("parsing {}", path.display()))?;
            if !v.is_null() {
                docs.push(v);
            }
        }
        let file = SampleFile { path, text, docs };
        ensure!(
            file.crs().count() >= 1,
            "{} has no {KIND} document",
            file.name()
        );
        out.push(file);
    }
    Ok(out)
}

async fn exercise(client: &Client, ns: &TestNamespace) -> Result<()> {
    let files = samples()?;
    // The most verbose log level: issue 19's scan below looks for Secret values in the log.
    let op = common::operator::start_converting_with_env(
        client,
        ns.name(),
        &[],
        &[("RUST_LOG", std::ffi::OsStr::new("trace"))],
    )
    .await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    eventually(
        "the operator's CA in the CRD's conversion",
        Duration::from_secs(30),
        || async {
            let crd = crds.get(CRD_NAME).await?;
            Ok(crd
                .spec
                .conversion
                .and_then(|c| c.webhook)
                .and_then(|w| w.client_config)
                .and_then(|c| c.ca_bundle)
                .map(|_| ()))
        },
    )
    .await
    .with_context(|| op.log_text())?;
    let v1 = llsd_api(client, ns.name(), "v1alpha1");
    let v2 = llsd_api(client, ns.name(), "v1alpha2");
    wait_converting(&v1).await.with_context(|| op.log_text())?;

    // The samples' allowedFrom only shows in a NetworkPolicy with the operator's flag on.
    let configmaps = ns.api::<ConfigMap>();
    eventually(
        "the operator ConfigMap",
        Duration::from_secs(30),
        || async { Ok(configmaps.get_opt(OPERATOR_CONFIG).await?) },
    )
    .await?;
    configmaps
        .patch(
            OPERATOR_CONFIG,
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"data": {"featureFlags": "enableNetworkPolicy:\n  enabled: true\n"}}),
            ),
        )
        .await
        .context("turning on enableNetworkPolicy")?;

    // No StorageClass in the test cluster: a volume bound in advance to each claim a sample
    // asks for, so its pods schedule (kwok runs nothing on it).
    let mut volumes = Vec::new();
    for file in &files {
        for cr in file.crs() {
            if let Some(size) = pvc_size(cr) {
                volumes.push(bound_volume(client, ns, &name_of(cr), &size).await?);
            }
        }
    }

    for file in &files {
        let out = kubectl(
            &["apply", "-n", ns.name(), "-f", &file.path.to_string_lossy()],
            None,
        )
        .with_context(|| format!("kubectl apply -f {}", file.name()))?;
        eprintln!("{}:\n{}", file.name(), out.trim_end());
        ensure!(
            out.lines().count() == file.docs.len(),
            "kubectl apply -f {} reported {} objects for {} documents:\n{out}",
            file.name(),
            out.lines().count(),
            file.docs.len()
        );
    }

    let started = Instant::now();
    let mut problems = Vec::new();
    for file in &files {
        for doc in file.crs() {
            let name = name_of(doc);
            let checked = check_sample(ns, &v1, &v2, file, doc).await;
            match checked {
                Ok(outcome) => eprintln!(
                    "{} ({name}): {outcome} after {:?}",
                    file.name(),
                    started.elapsed()
                ),
                Err(e) => problems.push(format!("{} ({name}): {e:#}", file.name())),
            }
        }
    }
    drop(volumes);
    if let Err(e) = no_secret_value_outside_secrets(ns.name(), &files, &op) {
        problems.push(format!("{e:#}"));
    }
    if !problems.is_empty() {
        bail!(
            "{} sample(s) failed:\n\n{}\n\noperator log:\n{}",
            problems.len(),
            problems.join("\n\n"),
            op.log_text()
        );
    }
    Ok(())
}

/// The values of the samples' Secrets under keys that hold credentials (passwords, tokens,
/// keys, URIs with a password): host names, ports and user names are no secret and show up
/// legitimately elsewhere.
fn credential_values(files: &[SampleFile]) -> Result<BTreeSet<String>> {
    use base64::Engine as _;
    let mut values = BTreeSet::new();
    for doc in files.iter().flat_map(|f| &f.docs) {
        if doc["kind"] != "Secret" {
            continue;
        }
        let decoded = doc["data"].as_object().into_iter().flatten().map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            (k.clone(), String::from_utf8_lossy(&bytes).to_string())
        });
        let plain = doc["stringData"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()));
        for (key, value) in decoded.chain(plain) {
            let k = key.to_ascii_lowercase();
            if ["password", "token", "key", "uri"]
                .iter()
                .any(|c| k.contains(c))
            {
                ensure!(
                    value.len() >= 8,
                    "a sample credential too short to scan for: {key}"
                );
                values.insert(value);
            }
        }
    }
    ensure!(
        values.len() >= 5,
        "the samples hold fewer credentials than expected: {values:?}"
    );
    Ok(values)
}

/// Issue 19 §3: no Secret value reaches the operator's log at `RUST_LOG=trace`, the Events,
/// the CRs (status included) or any other object in the namespace but the Secrets
/// themselves, after every sample reconciled. Each value is looked for as it is and in
/// base64 (a ConfigMap's binaryData, a Secret copied as data).
fn no_secret_value_outside_secrets(
    ns: &str,
    files: &[SampleFile],
    op: &common::operator::Operator,
) -> Result<()> {
    ensure!(
        op.full_log().contains("TRACE"),
        "the operator did not log at trace level: the scan would prove little"
    );
    let values = credential_values(files)?;
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    common::samples::assert_no_secret_values(ns, op, &values)
}

fn name_of(doc: &Value) -> String {
    doc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The size of the PVC a CR asks for (either version), if any; the operator's default 10Gi.
fn pvc_size(doc: &Value) -> Option<String> {
    let storage = match doc["apiVersion"].as_str() {
        Some("llamastack.io/v1alpha1") => &doc["spec"]["server"]["storage"],
        _ => &doc["spec"]["workload"]["storage"],
    };
    storage.is_object().then(|| {
        storage["size"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| "10Gi".into())
    })
}

async fn bound_volume(
    client: &Client,
    ns: &TestNamespace,
    cr: &str,
    size: &str,
) -> Result<DeleteOnDrop<PersistentVolume>> {
    let pv_name = format!("{}-{cr}", ns.name());
    let guard = DeleteOnDrop::<PersistentVolume>::new(pv_name.clone()).await?;
    Api::<PersistentVolume>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": pv_name, "labels": {"llsd-test": "true"}},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": format!("/tmp/{pv_name}")},
                         "claimRef": {"namespace": ns.name(), "name": format!("{cr}-pvc")}},
            }))?,
        )
        .await
        .with_context(|| format!("creating PersistentVolume {pv_name}"))?;
    Ok(guard)
}

/// What the sample must reach: Ready, or, when it makes the operator read images from a
/// registry, the registry condition its header documents.
enum Expect {
    Ready,
    RegistryFailure {
        /// (field path, image) of every image the operator must read.
        images: Vec<(String, String)>,
        reasons: BTreeSet<&'static str>,
    },
}

/// Images the operator reads from a registry for this (v1alpha2) spec: external providers
/// and a direct distribution image.
fn registry_images(spec: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(image) = spec["distribution"]["image"].as_str() {
        out.push(("spec.distribution.image".to_string(), image.to_string()));
    }
    for (api, list) in spec["externalProviders"].as_object().into_iter().flatten() {
        for (i, p) in list.as_array().into_iter().flatten().enumerate() {
            if let Some(image) = p["image"].as_str() {
                out.push((
                    format!("spec.externalProviders.{api}[{i}]"),
                    image.to_string(),
                ));
            }
        }
    }
    out
}

/// The registry host of an image reference (Docker Hub for a bare `repo/name`).
fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "registry-1.docker.io",
    }
}

async fn expectation(file: &SampleFile, spec: &Value) -> Result<Expect> {
    let images = registry_images(spec);
    if images.is_empty() {
        return Ok(Expect::Ready);
    }
    // The outcome depends on the registry; the sample must say so where a reader sees it.
    let header: String = file
        .text
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    ensure!(
        header.contains("RegistryUnreachable") && header.contains("ConfigGenerated"),
        "it makes the operator read {images:?} from a registry, so its header comment must \
         document the condition where that registry is unreachable (ConfigGenerated=False, \
         reason RegistryUnreachable)"
    );
    let mut reasons = BTreeSet::from(["RegistryUnreachable"]);
    for (_, image) in &images {
        let host = registry_of(image);
        let target = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:443")
        };
        if tokio::net::lookup_host(target.as_str()).await.is_ok() {
            // The registry resolves here: the header documents these for its placeholder.
            eprintln!("{}: {host} resolves here", file.name());
            reasons.extend(REGISTRY_REASONS);
        }
    }
    for r in &reasons {
        ensure!(
            header.contains(r),
            "its header does not document reason {r}"
        );
    }
    Ok(Expect::RegistryFailure { images, reasons })
}

async fn check_sample(
    ns: &TestNamespace,
    v1: &Api<DynamicObject>,
    v2: &Api<DynamicObject>,
    file: &SampleFile,
    doc: &Value,
) -> Result<String> {
    let name = name_of(doc);
    // Every field the sample sets reads back as written, in the version it is written in.
    let api = match doc["apiVersion"].as_str() {
        Some("llamastack.io/v1alpha1") => v1,
        _ => v2,
    };
    let read = api.get(&name).await.with_context(|| {
        format!(
            "reading {name} as {} (v1alpha1 reads go through this operator's conversion \
             webhook: another test reinstalling the cluster-wide CRD meanwhile breaks them)",
            doc["apiVersion"]
        )
    })?;
    let mut diffs = Vec::new();
    common::contains(&read.data["spec"], &doc["spec"], "spec", &mut diffs);
    ensure!(diffs.is_empty(), "the stored object lost fields: {diffs:?}");

    let stored = v2.get(&name).await?;
    match expectation(file, &stored.data["spec"]).await? {
        Expect::Ready => {
            let cr = wait_phase(v2, &name, "Ready")
                .await
                .context("expected phase Ready (the sample documents no other outcome)")?;
            check_ready(ns, &cr).await?;
            Ok("Ready".into())
        }
        Expect::RegistryFailure { images, reasons } => {
            let cr = wait_cr(v2, &name, common::cr::READY, |o| {
                phase(o) == "Failed"
                    && status(o)["observedGeneration"] == json!(o.metadata.generation)
                    && condition(o, "ConfigGenerated").is_some_and(|c| {
                        c["status"] == "False"
                            && reasons.contains(c["reason"].as_str().unwrap_or_default())
                    })
            })
            .await
            .with_context(|| {
                format!("expected phase Failed, ConfigGenerated reason one of {reasons:?}")
            })?;
            let c = condition(&cr, "ConfigGenerated").context("ConfigGenerated")?;
            let message = c["message"].as_str().unwrap_or_default();
            ensure!(
                images
                    .iter()
                    .any(|(path, image)| message.contains(path) && message.contains(image)),
                "the message names none of the field/image pairs {images:?}: {message}"
            );
            ensure!(
                ns.api::<Deployment>().get_opt(&name).await?.is_none(),
                "a Deployment {name} exists although the config was never generated"
            );
            for ep in status(&cr)["externalProviders"]
                .as_array()
                .into_iter()
                .flatten()
            {
                ensure!(ep["phase"] == "Failed", "status.externalProviders: {ep}");
            }
            let events =
                wait_events(ns.client(), ns.name(), &name, &["ConfigGenerationFailed"]).await?;
            ensure!(
                events.iter().any(|(r, n)| r == "ConfigGenerationFailed"
                    && images.iter().any(|(_, i)| n.contains(i))),
                "no Warning Event names the image: {events:?}"
            );
            Ok(format!(
                "Failed with {}: {message}",
                c["reason"].as_str().unwrap_or_default()
            ))
        }
    }
}

/// The pinned image of a distribution name (configs/distributions.json).
fn pinned_image(name: &str) -> Result<String> {
    let all: Value = serde_json::from_str(DISTRIBUTIONS)?;
    all["distributions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == name)
        .and_then(|d| d["image"].as_str())
        .map(str::to_string)
        .with_context(|| format!("distribution {name} is not in configs/distributions.json"))
}

/// `llama-stack-operator generate -o json` of the stored (v1alpha2) object, offline, with the
/// overrideConfig ConfigMap's content as the base config when there is one.
async fn offline_generate(ns: &TestNamespace, cr: &DynamicObject) -> Result<Value> {
    let name = cr.metadata.name.clone().unwrap_or_default();
    let dir = std::env::temp_dir();
    let cr_path = dir.join(format!("llsd-sample-{}-{name}.json", ns.name()));
    std::fs::write(
        &cr_path,
        serde_json::to_string(&json!({
            "apiVersion": "llamastack.io/v1alpha2", "kind": KIND,
            "metadata": {"name": name}, "spec": cr.data["spec"],
        }))?,
    )?;
    let mut args = vec![
        "generate".to_string(),
        "-o".into(),
        "json".into(),
        "-f".into(),
        cr_path.to_string_lossy().into_owned(),
    ];
    let mut base_path = None;
    if let Some(cm_name) = cr.data["spec"]["overrideConfig"]["configMapName"].as_str() {
        let cm = ns.api::<ConfigMap>().get(cm_name).await?;
        let text = cm
            .data
            .and_then(|mut d| d.remove("config.yaml"))
            .with_context(|| format!("config.yaml in ConfigMap {cm_name}"))?;
        let path = dir.join(format!("llsd-sample-{}-{name}-base.yaml", ns.name()));
        std::fs::write(&path, text)?;
        args.extend([
            "--base-config".to_string(),
            path.to_string_lossy().into_owned(),
        ]);
        base_path = Some(path);
    }
    let out = std::process::Command::new(common::operator::binary()?)
        .args(&args)
        .output()?;
    let _ = std::fs::remove_file(&cr_path);
    if let Some(p) = base_path {
        let _ = std::fs::remove_file(p);
    }
    ensure!(
        out.status.success(),
        "llama-stack-operator {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn env_of<'a>(
    c: &'a Container,
    name: &str,
) -> Option<&'a llsd_test_support::k8s_openapi::api::core::v1::EnvVar> {
    c.env.iter().flatten().find(|e| e.name == name)
}

async fn check_ready(ns: &TestNamespace, cr: &DynamicObject) -> Result<()> {
    let name = cr.metadata.name.clone().unwrap_or_default();
    let spec = &cr.data["spec"];
    let uid = cr.metadata.uid.clone().unwrap_or_default();
    let owned = |meta: &llsd_test_support::kube::api::ObjectMeta| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.uid == uid)
    };
    for t in [
        "ConfigGenerated",
        "DeploymentUpdated",
        "Available",
        "SecretsResolved",
    ] {
        let c = condition(cr, t).with_context(|| format!("condition {t}"))?;
        ensure!(c["status"] == "True", "{t}: {c}");
    }
    ensure!(
        status(cr)["availableReplicas"].as_i64().unwrap_or(0) >= 1,
        "availableReplicas: {}",
        status(cr)["availableReplicas"]
    );

    // The generated config: hashed, immutable, owned, and what the offline CLI prints.
    let cm_name = status(cr)["configGeneration"]["configMapName"]
        .as_str()
        .context("status.configGeneration.configMapName")?
        .to_string();
    let cm = ns.api::<ConfigMap>().get(&cm_name).await?;
    ensure!(cm.immutable == Some(true), "{cm_name} is not immutable");
    ensure!(owned(&cm.metadata), "{cm_name} is not the CR's");
    let yaml = cm
        .data
        .as_ref()
        .and_then(|d| d.get("config.yaml"))
        .with_context(|| format!("config.yaml in {cm_name}"))?;
    let hash = llama_stack_config::content_hash(yaml.as_bytes());
    ensure!(
        cm_name == format!("{name}-config-{}", &hash[..8]),
        "{cm_name} does not carry the hash of its content ({})",
        &hash[..8]
    );
    let offline = offline_generate(ns, cr).await?;
    ensure!(
        offline["configYaml"].as_str() == Some(yaml.as_str()),
        "the operator's config.yaml differs from `llama-stack-operator generate` of the same object:\n--- operator\n{yaml}\n--- generate\n{}",
        offline["configYaml"].as_str().unwrap_or_default()
    );

    // The Deployment: the pinned image, the secret env refs and the overrides.
    let dep = ns
        .api::<Deployment>()
        .get(&name)
        .await
        .with_context(|| format!("Deployment {name}"))?;
    ensure!(owned(&dep.metadata), "Deployment {name} is not the CR's");
    let want_image = match spec["distribution"]["name"].as_str() {
        Some(d) => pinned_image(d)?,
        None => bail!("a Ready sample without distribution.name: extend this test"),
    };
    ensure!(
        image(&dep).as_deref() == Some(want_image.as_str()),
        "Deployment image {:?}, expected the pinned {want_image}",
        image(&dep)
    );
    ensure!(
        status(cr)["resolvedDistribution"]["image"] == want_image.as_str(),
        "status.resolvedDistribution: {}",
        status(cr)["resolvedDistribution"]
    );
    let pod = dep
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .context("pod template")?;
    let container = pod.containers.first().context("a container")?;
    for e in offline["env"].as_array().into_iter().flatten() {
        let (env, secret, key) = (
            e["name"].as_str().unwrap_or_default(),
            e["secretName"].as_str().unwrap_or_default(),
            e["secretKey"].as_str().unwrap_or_default(),
        );
        let r = env_of(container, env)
            .and_then(|v| v.value_from.as_ref())
            .and_then(|v| v.secret_key_ref.as_ref())
            .with_context(|| format!("env {env} from a Secret in the server container"))?;
        ensure!(
            r.name == secret && r.key == key,
            "env {env} reads {}/{}, expected {secret}/{key}",
            r.name,
            r.key
        );
        let s = ns
            .api::<Secret>()
            .get_opt(secret)
            .await?
            .with_context(|| format!("Secret {secret} (env {env}) does not exist"))?;
        let has_key = s.data.as_ref().is_some_and(|d| d.contains_key(key));
        ensure!(has_key, "Secret {secret} has no key {key} (env {env})");
    }
    let overrides = &spec["workload"]["overrides"];
    for e in overrides["env"].as_array().into_iter().flatten() {
        let want: llsd_test_support::k8s_openapi::api::core::v1::EnvVar =
            serde_json::from_value(e.clone())?;
        ensure!(
            env_of(container, &want.name) == Some(&want),
            "overrides.env {}: container has {:?}",
            want.name,
            env_of(container, &want.name)
        );
    }
    for m in overrides["volumeMounts"].as_array().into_iter().flatten() {
        ensure!(
            container
                .volume_mounts
                .iter()
                .flatten()
                .any(|v| json!(v.name) == m["name"] && json!(v.mount_path) == m["mountPath"]),
            "overrides.volumeMounts {m} is not in the container"
        );
    }
    for v in overrides["volumes"].as_array().into_iter().flatten() {
        ensure!(
            pod.volumes
                .iter()
                .flatten()
                .any(|p| json!(p.name) == v["name"]),
            "overrides.volumes {v} is not in the pod"
        );
    }
    let sa = overrides["serviceAccountName"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{name}-sa"));
    ensure!(
        pod.service_account_name.as_deref() == Some(sa.as_str()),
        "pods run as {:?}, expected {sa}",
        pod.service_account_name
    );
    ns.api::<ServiceAccount>()
        .get(&sa)
        .await
        .with_context(|| format!("ServiceAccount {sa}"))?;

    // The objects the spec asks for.
    let port = spec["networking"]["port"].as_i64().unwrap_or(8321) as i32;
    let svc = ns.api::<Service>().get(&format!("{name}-service")).await?;
    ensure!(
        owned(&svc.metadata),
        "Service {name}-service is not the CR's"
    );
    ensure!(
        svc.spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .is_some_and(|p| p.iter().any(|p| p.port == port)),
        "Service {name}-service does not serve port {port}: {:?}",
        svc.spec
    );
    let workload = &spec["workload"];
    if let Some(size) = pvc_size(&json!({"spec": spec})) {
        let pvc = ns
            .api::<PersistentVolumeClaim>()
            .get(&format!("{name}-pvc"))
            .await?;
        ensure!(owned(&pvc.metadata), "PVC {name}-pvc is not the CR's");
        let requested = pvc_request(&pvc);
        ensure!(
            requested.as_deref() == Some(size.as_str()),
            "PVC size {requested:?}, expected {size}"
        );
    }
    if workload["podDisruptionBudget"].is_object() {
        let pdb = ns
            .api::<PodDisruptionBudget>()
            .get(&format!("{name}-pdb"))
            .await?;
        ensure!(owned(&pdb.metadata), "PDB {name}-pdb is not the CR's");
    }
    if workload["autoscaling"].is_object() {
        let hpa = ns
            .api::<HorizontalPodAutoscaler>()
            .get(&format!("{name}-hpa"))
            .await?;
        ensure!(owned(&hpa.metadata), "HPA {name}-hpa is not the CR's");
        let max = hpa.spec.max_replicas;
        ensure!(
            Some(i64::from(max)) == workload["autoscaling"]["maxReplicas"].as_i64(),
            "HPA maxReplicas {max}"
        );
    }
    let expose = &spec["networking"]["expose"];
    if expose.is_object() && expose["enabled"] != false {
        let ing = ns.api::<Ingress>().get(&format!("{name}-ingress")).await?;
        ensure!(
            owned(&ing.metadata),
            "Ingress {name}-ingress is not the CR's"
        );
        if let Some(host) = expose["hostname"].as_str() {
            let hosts: Vec<_> = ing
                .spec
                .iter()
                .flat_map(|s| s.rules.iter().flatten())
                .filter_map(|r| r.host.clone())
                .collect();
            ensure!(
                hosts.iter().any(|h| h == host),
                "Ingress hosts {hosts:?}, expected {host}"
            );
        }
    }
    if spec["networking"]["tls"]["caBundle"].is_object() {
        let bundle = ns
            .api::<ConfigMap>()
            .get(&format!("{name}-ca-bundle"))
            .await?;
        ensure!(owned(&bundle.metadata), "{name}-ca-bundle is not the CR's");
    }
    let np = ns
        .api::<NetworkPolicy>()
        .get(&format!("{name}-network-policy"))
        .await
        .context("the NetworkPolicy (enableNetworkPolicy is on)")?;
    let peers = serde_json::to_value(&np.spec)?;
    for allowed in spec["networking"]["allowedFrom"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
    {
        ensure!(
            peers
                .to_string()
                .contains(&format!("\"kubernetes.io/metadata.name\":{allowed}")),
            "allowedFrom namespace {allowed} is not let in: {peers}"
        );
    }
    Ok(())
}

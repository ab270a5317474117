//! Issue 8 end to end: the operator process, the real control plane and a real registry on
//! loopback. A labelled image runs with its own config (FR-027f..j), external providers are
//! merged and installed (FR-090..092, D16), registry failures keep the running Deployment and
//! are retried (FR-097, D17), private images use the pod's pull Secrets (FR-027h), vendor
//! plugins come by digest (D18).

use anyhow::{Context, Result, ensure};
use llsd_test_support::eventually;
use llsd_test_support::k8s_openapi::ByteString;
use llsd_test_support::k8s_openapi::api::apps::v1::Deployment;
use llsd_test_support::k8s_openapi::api::core::v1::{
    ConfigMap, ContainerState, ContainerStateTerminated, Pod, Secret, ServiceAccount,
};
use llsd_test_support::kube::api::{ListParams, Patch, PatchParams, PostParams};
use llsd_test_support::registry::fixtures::{labelled, provider_image};
use llsd_test_support::registry::{Artifact, RegistryOptions, TestImage, TestRegistry};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

mod common;
#[path = "../../../host/tests/plugin_support/mod.rs"]
mod plugin_support;
use common::cr::{
    condition, generated_config, image, starter_config, status, wait_cr, wait_events, wait_phase,
};
use common::operator::setup;
use common::{llsd_api, object};

fn reason_of(cr: &llsd_test_support::kube::core::DynamicObject) -> (String, String) {
    let c = condition(cr, "ConfigGenerated")
        .cloned()
        .unwrap_or(Value::Null);
    (
        c["reason"].as_str().unwrap_or_default().to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// FR-027f/g/j, FR-027i, NFR-006: a direct image with a config label reaches Ready with that
/// config, pinned to the digest it was read from; later reconciles resolve the tag but fetch
/// no blob.
#[tokio::test]
async fn labelled_image_runs_its_own_config_and_is_read_once() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let config = starter_config("labelled-starter")?;
    let digest = reg.push("acme/stack", "1.0", &labelled(&config)).await?;
    let host = reg.host();
    let (_client, ns, op) = setup("oci-label", &["--registry-plain-http", &host]).await?;
    let api = llsd_api(ns.client(), ns.name(), "v1alpha2");
    let reference = format!("{host}/acme/stack:1.0");
    api.create(
        &PostParams::default(),
        &object(
            "v1alpha2",
            "labelled",
            json!({"distribution": {"image": reference}}),
        ),
    )
    .await?;
    let cr = wait_phase(&api, "labelled", "Ready")
        .await
        .with_context(|| op.log_text())?;
    let pinned = format!("{host}/acme/stack@{digest}");
    let rd = &status(&cr)["resolvedDistribution"];
    ensure!(rd["configSource"] == "oci-label", "{rd}");
    ensure!(
        rd["image"] == pinned.as_str(),
        "image recorded with its digest: {rd}"
    );
    let (_, yaml) = generated_config(&ns, &cr).await?;
    ensure!(yaml == config, "the label's config runs unchanged:\n{yaml}");
    let dep = ns.api::<Deployment>().get("labelled").await?;
    ensure!(
        image(&dep).as_deref() == Some(pinned.as_str()),
        "the pods run the image whose labels were read: {:?}",
        image(&dep)
    );

    // A reconcile of the unchanged image: the tag is resolved again, no blob is fetched.
    let (blobs, manifests) = (reg.blob_requests(), reg.manifest_requests());
    let reconciles = op.counter("llsd_reconciles_total").await?;
    ns.api::<ConfigMap>()
        .patch(
            "llama-stack-operator-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"ingress-domain": "apps.example.test"}})),
        )
        .await?;
    eventually(
        "a reconcile that resolved the tag",
        Duration::from_secs(30),
        || async {
            Ok((reg.manifest_requests() > manifests
                && op.counter("llsd_reconciles_total").await? > reconciles)
                .then_some(()))
        },
    )
    .await?;
    ensure!(
        reg.blob_requests() == blobs,
        "the second reconcile fetched {} blobs",
        reg.blob_requests() - blobs
    );
    ensure!(
        ns.api::<Deployment>()
            .get("labelled")
            .await?
            .metadata
            .generation
            == dep.metadata.generation,
        "nothing rolled"
    );
    ns.delete().await
}

/// FR-090..092, D16: an external provider's metadata is read from its image and merged into
/// the generated config before hashing; the pod installs it with an init container.
#[tokio::test]
async fn external_provider_is_merged_and_installed() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let digest = reg
        .push("acme/provider", "1.2.0", &provider_image())
        .await?;
    let host = reg.host();
    let (_client, ns, op) = setup("oci-ext", &["--registry-plain-http", &host]).await?;
    let api = llsd_api(ns.client(), ns.name(), "v1alpha2");
    let spec = json!({"distribution": {"name": "starter"},
        "externalProviders": {"inference": [{"providerId": "acme-infer",
            "image": format!("{host}/acme/provider:1.2.0"),
            "config": {"url": "http://acme.models.svc:8000/v1"}}]}});
    api.create(&PostParams::default(), &object("v1alpha2", "ext", spec))
        .await?;
    let cr = wait_phase(&api, "ext", "Ready")
        .await
        .with_context(|| op.log_text())?;
    let (_, yaml) = generated_config(&ns, &cr).await?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&yaml)?;
    let entry = doc["providers"]["inference"]
        .as_sequence()
        .context("providers.inference")?
        .iter()
        .find(|p| p["provider_id"] == "acme-infer")
        .with_context(|| format!("acme-infer merged into:\n{yaml}"))?;
    ensure!(entry["provider_type"] == "remote::acme-infer", "{entry:?}");
    // packageName acme_infer.provider: llama-stack imports <module>.provider.
    ensure!(entry["module"] == "acme_infer", "{entry:?}");
    ensure!(
        entry["config"]["url"] == "http://acme.models.svc:8000/v1",
        "{entry:?}"
    );

    let dep = ns.api::<Deployment>().get("ext").await?;
    let pod = dep
        .spec
        .and_then(|s| s.template.spec)
        .context("pod template")?;
    let init = pod.init_containers.clone().unwrap_or_default();
    ensure!(init.len() == 1, "{init:?}");
    ensure!(init[0].name == "install-provider-acme-infer");
    ensure!(
        init[0].image.as_deref() == Some(format!("{host}/acme/provider@{digest}").as_str()),
        "installs the very image whose metadata was read: {:?}",
        init[0].image
    );
    ensure!(
        pod.volumes
            .unwrap_or_default()
            .iter()
            .any(|v| v.name == "external-providers" && v.empty_dir.is_some())
    );
    let env = pod.containers[0].env.clone().unwrap_or_default();
    ensure!(
        env.iter().any(|e| e.name == "PYTHONPATH"
            && e.value.as_deref() == Some("/opt/llama-stack/external-providers/python-packages")),
        "{env:?}"
    );
    let cr = wait_cr(&api, "ext", Duration::from_secs(60), |o| {
        status(o)["externalProviders"][0]["phase"] == "Ready"
    })
    .await?;
    let ep = &status(&cr)["externalProviders"][0];
    ensure!(
        ep["providerId"] == "acme-infer"
            && ep["initContainerName"] == "install-provider-acme-infer",
        "{ep}"
    );
    wait_events(
        ns.client(),
        ns.name(),
        "ext",
        &["ExternalProviderInstalled"],
    )
    .await?;

    // The install's state lives in the pod, and a pod change moves no Deployment status: the
    // operator watches the pods, so a failed install reaches the CR at once, not at the
    // 5-minute resync. (kwok leaves a running pod's status alone, so the test writes it.)
    let pods = ns.api::<Pod>();
    let pod = pods
        .list(&ListParams::default().labels("app.kubernetes.io/instance=ext"))
        .await?
        .items
        .into_iter()
        .next()
        .context("the server pod")?;
    let pod_name = pod.metadata.name.clone().context("pod name")?;
    let mut inits = pod
        .status
        .and_then(|s| s.init_container_statuses)
        .context("init container statuses")?;
    let first = inits.first_mut().context("one init container status")?;
    first.state = Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: 1,
            reason: Some("Error".into()),
            message: Some("no matching distribution for acme_infer".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    pods.patch_status(
        &pod_name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"initContainerStatuses": inits}})),
    )
    .await?;
    let cr = wait_cr(&api, "ext", Duration::from_secs(30), |o| {
        status(o)["externalProviders"][0]["phase"] == "Failed"
    })
    .await
    .with_context(|| op.log_text())?;
    let message = status(&cr)["externalProviders"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(
        message.contains("exited with code 1"),
        "the failed install's message: {message}"
    );
    wait_events(ns.client(), ns.name(), "ext", &["ExternalProviderFailed"]).await?;
    ns.delete().await
}

/// FR-097, D17: a registry failure on update keeps the running Deployment, reports the field,
/// the image and the reason, and is retried without any change to the CR.
#[tokio::test]
async fn registry_failure_keeps_the_deployment_and_is_retried() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let host = reg.host();
    let (_client, ns, op) = setup("oci-fail", &["--registry-plain-http", &host]).await?;
    let api = llsd_api(ns.client(), ns.name(), "v1alpha2");
    api.create(
        &PostParams::default(),
        &object(
            "v1alpha2",
            "keep",
            json!({"distribution": {"name": "starter"}}),
        ),
    )
    .await?;
    wait_phase(&api, "keep", "Ready")
        .await
        .with_context(|| op.log_text())?;
    let before = ns.api::<Deployment>().get("keep").await?;

    let late = format!("{host}/acme/late:1.0");
    api.patch(
        "keep",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"externalProviders": {"inference": [
            {"providerId": "late", "image": late}]}}})),
    )
    .await?;
    let cr = wait_phase(&api, "keep", "Failed").await?;
    let (reason, message) = reason_of(&cr);
    ensure!(reason == "ImageNotFound", "{reason}: {message}");
    ensure!(
        message.contains("spec.externalProviders.inference[0]") && message.contains(&late),
        "{message}"
    );
    let ep = &status(&cr)["externalProviders"][0];
    ensure!(
        ep["providerId"] == "late" && ep["phase"] == "Failed",
        "{ep}"
    );
    let events = wait_events(ns.client(), ns.name(), "keep", &["ConfigGenerationFailed"]).await?;
    ensure!(
        events
            .iter()
            .any(|(r, n)| r == "ConfigGenerationFailed" && n.contains(&late)),
        "{events:?}"
    );
    let after = ns.api::<Deployment>().get("keep").await?;
    ensure!(
        after.metadata.generation == before.metadata.generation,
        "the running Deployment is untouched"
    );

    // The image appears; the operator's retry finds it with no change to the CR.
    reg.push("acme/late", "1.0", &provider_image()).await?;
    let cr = wait_phase(&api, "keep", "Ready")
        .await
        .with_context(|| op.log_text())?;
    ensure!(status(&cr)["externalProviders"][0]["providerId"] == "late");
    ns.delete().await
}

/// FR-027h: an image on a private registry (TLS with a private CA, basic auth) is read with
/// the pull Secrets of the pod's ServiceAccount; without them the condition says which
/// ServiceAccount needs one. The password never reaches the log.
#[tokio::test]
async fn private_image_is_read_with_the_service_accounts_pull_secret() -> Result<()> {
    let password = "s3cret-pull-pa55";
    let reg = TestRegistry::start(RegistryOptions {
        tls: true,
        basic_auth: Some(("puller".into(), password.into())),
    })
    .await?;
    let config = starter_config("private-starter")?;
    reg.push("team/private", "1", &labelled(&config)).await?;
    let ca = tempfile_with(&reg.ca_pem().context("TLS registry CA")?)?;
    let ca_path = ca.to_string_lossy().to_string();
    let (_client, ns, op) = setup("oci-private", &["--registry-ca-file", &ca_path]).await?;
    let sas = ns.api::<ServiceAccount>();
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "puller"}}))?,
    )
    .await?;
    let api = llsd_api(ns.client(), ns.name(), "v1alpha2");
    let spec = json!({"distribution": {"image": format!("{}/team/private:1", reg.host())},
        "workload": {"overrides": {"serviceAccountName": "puller"}}});
    api.create(&PostParams::default(), &object("v1alpha2", "private", spec))
        .await?;
    let cr = wait_phase(&api, "private", "Failed").await?;
    let (reason, message) = reason_of(&cr);
    ensure!(reason == "RegistryUnauthorized", "{reason}: {message}");
    ensure!(
        message.contains("puller") && message.contains(&reg.host()),
        "{message}"
    );

    let secret = Secret {
        metadata: llsd_test_support::kube::api::ObjectMeta {
            name: Some("registry-login".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            ByteString(reg.dockerconfigjson().into_bytes()),
        )])),
        ..Default::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    sas.patch(
        "puller",
        &PatchParams::default(),
        &Patch::Merge(json!({"imagePullSecrets": [{"name": "registry-login"}]})),
    )
    .await?;
    let cr = wait_phase(&api, "private", "Ready")
        .await
        .with_context(|| op.log_text())?;
    ensure!(status(&cr)["resolvedDistribution"]["configSource"] == "oci-label");
    let (_, yaml) = generated_config(&ns, &cr).await?;
    ensure!(yaml == config);
    ensure!(
        !op.full_log().contains(password),
        "the password is in the operator log"
    );
    let _ = std::fs::remove_file(&ca);
    ns.delete().await
}

/// D18: a vendor plugin listed by OCI reference pinned by digest is fetched at start and
/// serves its distribution; one whose digest names nothing is refused, the rest keeps working.
#[tokio::test]
async fn vendor_plugin_by_digest_serves_its_distribution() -> Result<()> {
    let reg = TestRegistry::start(RegistryOptions::default()).await?;
    let wasm = std::fs::read(plugin_support::component("acme-llama-stack-plugin", None))?;
    let digest = reg
        .push(
            "acme/plugin",
            "1.2.0",
            &TestImage {
                artifact: Some(Artifact { bytes: wasm }),
                ..Default::default()
            },
        )
        .await?;
    let host = reg.host();
    let plugins = tempfile_with(&format!(
        "plugins:\n- oci: {host}/acme/plugin@{digest}\n- oci: {host}/acme/plugin@sha256:{}\n",
        "0".repeat(64)
    ))?;
    let plugins_path = plugins.to_string_lossy().to_string();
    let (_client, ns, op) = setup(
        "oci-plugin",
        &[
            "--registry-plain-http",
            &host,
            "--plugins-config",
            &plugins_path,
        ],
    )
    .await?;
    let api = llsd_api(ns.client(), ns.name(), "v1alpha2");
    let spec = json!({"distribution": {"name": "acme-enterprise"},
        "providers": {"inference": [{"provider": "vllm", "endpoint": "https://llm.acme.internal/v1"}]}});
    api.create(&PostParams::default(), &object("v1alpha2", "acme", spec))
        .await?;
    let cr = wait_phase(&api, "acme", "Ready")
        .await
        .with_context(|| op.log_text())?;
    let (_, yaml) = generated_config(&ns, &cr).await?;
    ensure!(
        yaml.contains("verify: /etc/acme/ca-bundle.pem"),
        "the vendor plugin generated it:\n{yaml}"
    );
    let dep = ns.api::<Deployment>().get("acme").await?;
    ensure!(image(&dep).as_deref() == Some("quay.io/acme/llama-stack-enterprise:1.2.0"));
    let log = op.full_log();
    ensure!(
        log.contains("vendor plugin refused") && log.contains(&"0".repeat(64)),
        "the unknown digest is refused with its reference:\n{}",
        op.log_text()
    );
    let _ = std::fs::remove_file(&plugins);
    ns.delete().await
}

fn tempfile_with(text: &str) -> Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "llsd-oci-{}-{}",
        std::process::id(),
        llama_stack_config::content_hash(text.as_bytes())
    ));
    std::fs::write(&path, text)?;
    Ok(path)
}

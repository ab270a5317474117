//! Issue 7: the operator process reconciles LlamaStackDistributions on the real control plane
//! (kwok makes the pods Ready). Each test runs its own operator, watching only its namespace.

use anyhow::{Context, Result, ensure};
use llama_stack_operator::api::crd;
use llsd_test_support::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use llsd_test_support::k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use llsd_test_support::kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use llsd_test_support::kube::core::DynamicObject;
use llsd_test_support::{TestNamespace, client, eventually, wait_deleted};
use serde_json::{Value, json};
use std::time::Duration;

mod common;
use common::operator::{Operator, audit_offset, operator_writes};
use common::{llsd_api, object};

const READY: Duration = Duration::from_secs(90);

fn status(o: &DynamicObject) -> &Value {
    &o.data["status"]
}

fn condition<'a>(o: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    status(o)["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn phase(o: &DynamicObject) -> &str {
    status(o)["phase"].as_str().unwrap_or("")
}

/// Polls the CR until `cond` holds (DynamicObject has no default ApiResource for wait_for).
async fn wait_cr(
    api: &Api<DynamicObject>,
    name: &str,
    timeout: Duration,
    cond: impl Fn(&DynamicObject) -> bool,
) -> Result<DynamicObject> {
    let start = std::time::Instant::now();
    loop {
        let o = api.get_opt(name).await?;
        if let Some(o) = o.as_ref().filter(|o| cond(o)) {
            return Ok(o.clone());
        }
        if start.elapsed() > timeout {
            let seen = o
                .map(|o| serde_json::to_string_pretty(&o.data["status"]).unwrap_or_default())
                .unwrap_or_else(|| "nothing".into());
            anyhow::bail!(
                "timed out after {timeout:?} waiting for {name}; status last seen: {seen}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_phase(api: &Api<DynamicObject>, name: &str, want: &str) -> Result<DynamicObject> {
    wait_cr(api, name, READY, |o| {
        phase(o) == want
            && status(o)["observedGeneration"]
                == o.metadata
                    .generation
                    .map(Value::from)
                    .unwrap_or(Value::Null)
    })
    .await
}

fn template_annotation(d: &Deployment, key: &str) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

fn image(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

fn sha256_hex(text: &str) -> String {
    llama_stack_config::content_hash(text.as_bytes())
}

async fn setup(prefix: &str) -> Result<(llsd_test_support::kube::Client, TestNamespace, Operator)> {
    let client = client().await?;
    common::install_crd(&client, crd::crd()?).await?;
    let ns = TestNamespace::create(&client, prefix).await?;
    let op = Operator::start(ns.name(), &[]).await?;
    Ok((client, ns, op))
}

/// US1 + FR-023..026, D10, D12: a name-only CR runs the distribution's default config from a
/// hashed, immutable, owned ConfigMap; the CR reaches Ready; deleting it collects everything.
#[tokio::test]
async fn us1_name_only_reaches_ready_and_is_garbage_collected() -> Result<()> {
    let (client, ns, op) = setup("ctl-us1").await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    api.create(
        &PostParams::default(),
        &object(
            "v1alpha2",
            "demo",
            json!({"distribution": {"name": "starter"}}),
        ),
    )
    .await?;
    let cr = wait_phase(&api, "demo", "Ready")
        .await
        .with_context(|| op.log_text())?;

    let cm_name = status(&cr)["configGeneration"]["configMapName"]
        .as_str()
        .context("configMapName")?
        .to_string();
    ensure!(
        cm_name.starts_with("demo-config-") && cm_name.len() == "demo-config-".len() + 8,
        "{cm_name}"
    );
    let cm: ConfigMap = ns.api::<ConfigMap>().get(&cm_name).await?;
    ensure!(cm.immutable == Some(true), "NFR-005: immutable");
    let yaml = cm
        .data
        .as_ref()
        .and_then(|d| d.get("config.yaml"))
        .context("config.yaml key")?;
    let hash = sha256_hex(yaml);
    ensure!(
        cm_name.ends_with(&hash[..8]),
        "D10: name carries the content hash"
    );
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    ensure!(
        labels
            .get("app.kubernetes.io/component")
            .map(String::as_str)
            == Some("generated-config")
    );
    ensure!(cm.metadata.owner_references.as_ref().is_some_and(|o| {
        o.iter()
            .any(|r| r.controller == Some(true) && r.name == "demo")
    }));

    let dep: Deployment = ns.api::<Deployment>().get("demo").await?;
    ensure!(
        template_annotation(&dep, "llamastack.io/config-hash") == Some(format!("sha256:{hash}")),
        "FR-026"
    );
    ensure!(
        image(&dep).as_deref() == status(&cr)["resolvedDistribution"]["image"].as_str(),
        "image in status"
    );
    ns.api::<Service>()
        .get("demo-service")
        .await
        .context("Service demo-service")?;
    ns.api::<ServiceAccount>()
        .get("demo-sa")
        .await
        .context("ServiceAccount demo-sa")?;
    for t in [
        "ConfigGenerated",
        "DeploymentUpdated",
        "Available",
        "SecretsResolved",
    ] {
        let c = condition(&cr, t).with_context(|| format!("condition {t}"))?;
        ensure!(c["status"] == "True", "{t}: {c}");
    }
    ensure!(
        condition(&cr, "DeploymentUpdated")
            .is_some_and(|c| c["message"] == format!("Deployment updated with config {cm_name}"))
    );
    ensure!(status(&cr)["availableReplicas"] == 1);
    ensure!(
        status(&cr)["serviceURL"]
            == format!("http://demo-service.{}.svc.cluster.local:8321", ns.name())
    );
    ensure!(
        status(&cr)["configGeneration"]["providerCount"]
            .as_i64()
            .unwrap_or(0)
            > 0
    );

    api.delete("demo", &DeleteParams::foreground()).await?;
    wait_deleted(&ns.api::<Deployment>(), "demo", READY).await?;
    wait_deleted(&ns.api::<ConfigMap>(), &cm_name, READY).await?;
    wait_deleted(&ns.api::<Service>(), "demo-service", READY).await?;
    ns.delete().await
}

/// E2, FR-073: a CR whose Secret does not exist yet gets SecretsResolved=False naming it, and
/// no Deployment; once the Secret exists the CR reaches Ready with the env var wired.
#[tokio::test]
async fn a_missing_secret_is_reported_then_resolved() -> Result<()> {
    let (client, ns, op) = setup("ctl-secret").await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    let spec = json!({
        "distribution": {"name": "starter"},
        "providers": {"inference": [{"provider": "vllm", "endpoint": "http://vllm:8000/v1",
                                      "apiKey": {"secretKeyRef": {"name": "vllm-creds", "key": "token"}}}]},
    });
    api.create(&PostParams::default(), &object("v1alpha2", "sec", spec))
        .await?;
    let cr = wait_cr(&api, "sec", READY, |o| {
        condition(o, "SecretsResolved").is_some_and(|c| c["status"] == "False")
    })
    .await
    .with_context(|| op.log_text())?;
    let c = condition(&cr, "SecretsResolved").context("condition")?;
    ensure!(c["reason"] == "SecretNotFound", "{c}");
    let msg = c["message"].as_str().unwrap_or("");
    ensure!(
        msg.starts_with(&format!(
            "Secret \"vllm-creds\" not found in namespace \"{}\"",
            ns.name()
        )),
        "{msg}"
    );
    ensure!(phase(&cr) == "Failed");
    ensure!(
        ns.api::<Deployment>().get_opt("sec").await?.is_none(),
        "no Deployment before the Secret exists"
    );

    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "vllm-creds"}, "stringData": {"token": "s3cr3t-value"}}),
    )?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let cr = wait_phase(&api, "sec", "Ready")
        .await
        .with_context(|| op.log_text())?;
    let dep: Deployment = ns.api::<Deployment>().get("sec").await?;
    let env = dep
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers[0].env.clone().unwrap_or_default())
        .unwrap_or_default();
    let e = env
        .iter()
        .find(|e| e.name == "LLSD_VLLM_API_KEY")
        .context("LLSD_VLLM_API_KEY")?;
    let r = e
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .context("secretKeyRef")?;
    ensure!(r.name == "vllm-creds" && r.key == "token");
    // NFR-003: the value is nowhere in the status or the generated config.
    ensure!(!serde_json::to_string(&cr.data)?.contains("s3cr3t-value"));
    let cm: ConfigMap = ns
        .api::<ConfigMap>()
        .get(
            status(&cr)["configGeneration"]["configMapName"]
                .as_str()
                .unwrap_or(""),
        )
        .await?;
    ensure!(!serde_json::to_string(&cm.data)?.contains("s3cr3t-value"));
    ns.delete().await
}

/// FR-097, E9, D12: an invalid update leaves the running Deployment and its pods alone, with
/// ConfigGenerated=False and phase Failed; a valid one afterwards rolls out.
#[tokio::test]
async fn an_invalid_update_keeps_the_running_deployment() -> Result<()> {
    let (client, ns, op) = setup("ctl-invalid").await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    api.create(
        &PostParams::default(),
        &object(
            "v1alpha2",
            "inv",
            json!({"distribution": {"name": "starter"}}),
        ),
    )
    .await?;
    wait_phase(&api, "inv", "Ready")
        .await
        .with_context(|| op.log_text())?;
    let before: Deployment = ns.api::<Deployment>().get("inv").await?;
    let rs_before = ns
        .api::<ReplicaSet>()
        .list(&ListParams::default())
        .await?
        .items
        .len();

    let bad = json!({"spec": {"providers": {"inference": [{"provider": "no-such-provider", "endpoint": "http://x"}]}}});
    api.patch("inv", &PatchParams::default(), &Patch::Merge(&bad))
        .await?;
    let cr = wait_phase(&api, "inv", "Failed")
        .await
        .with_context(|| op.log_text())?;
    let c = condition(&cr, "ConfigGenerated").context("ConfigGenerated")?;
    ensure!(
        c["status"] == "False" && c["reason"] == "ConfigGenerationFailed",
        "{c}"
    );
    ensure!(
        c["message"]
            .as_str()
            .unwrap_or("")
            .contains("spec.providers.inference[0].provider"),
        "{c}"
    );
    ensure!(
        condition(&cr, "Available").is_some_and(|a| a["status"] == "True"),
        "the old pods still serve"
    );
    let after: Deployment = ns.api::<Deployment>().get("inv").await?;
    ensure!(
        after.metadata.generation == before.metadata.generation,
        "Deployment untouched"
    );
    ensure!(
        template_annotation(&after, "llamastack.io/config-hash")
            == template_annotation(&before, "llamastack.io/config-hash")
    );
    ensure!(
        ns.api::<ReplicaSet>()
            .list(&ListParams::default())
            .await?
            .items
            .len()
            == rs_before,
        "no new ReplicaSet"
    );
    ns.delete().await
}

/// US8, FR-098/100: changing the distribution updates the Deployment exactly once, image and
/// config together; re-applying the same spec changes nothing.
#[tokio::test]
async fn a_distribution_change_is_one_deployment_write() -> Result<()> {
    let (client, ns, op) = setup("ctl-dist").await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    api.create(
        &PostParams::default(),
        &object(
            "v1alpha2",
            "dist",
            json!({"distribution": {"name": "starter"}}),
        ),
    )
    .await?;
    wait_phase(&api, "dist", "Ready")
        .await
        .with_context(|| op.log_text())?;
    let before: Deployment = ns.api::<Deployment>().get("dist").await?;
    let offset = audit_offset()?;

    api.patch(
        "dist",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"distribution": {"name": "postgres-demo"}}})),
    )
    .await?;
    let cr = wait_cr(&api, "dist", READY, |o| {
        phase(o) == "Ready" && status(o)["observedGeneration"] == 2
    })
    .await
    .with_context(|| op.log_text())?;
    let after: Deployment = ns.api::<Deployment>().get("dist").await?;
    ensure!(
        after.metadata.generation == before.metadata.generation.map(|g| g + 1),
        "exactly one spec change: {:?} -> {:?}",
        before.metadata.generation,
        after.metadata.generation
    );
    ensure!(image(&after) != image(&before), "image changed");
    ensure!(image(&after).as_deref() == status(&cr)["resolvedDistribution"]["image"].as_str());
    ensure!(
        template_annotation(&after, "llamastack.io/config-hash")
            != template_annotation(&before, "llamastack.io/config-hash"),
        "config changed"
    );
    let writes: Vec<Value> = operator_writes(offset, ns.name())?
        .into_iter()
        .filter(|e| {
            e["objectRef"]["resource"] == "deployments" && e["objectRef"]["subresource"].is_null()
        })
        .collect();
    ensure!(
        writes.len() == 1,
        "one Deployment write, got {}: {writes:?}",
        writes.len()
    );
    ns.delete().await
}

/// FR-096, NFR: in steady state the operator writes nothing, also across reconciles caused by
/// watched objects and across an operator restart (audit log of the real API server).
#[tokio::test]
async fn steady_state_makes_no_writes() -> Result<()> {
    let (client, ns, mut op) = setup("ctl-steady").await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "k"}, "stringData": {"token": "x"}}))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let spec = json!({
        "distribution": {"name": "starter"},
        "providers": {"inference": [{"provider": "vllm", "endpoint": "http://vllm:8000/v1", "apiKey": {"secretKeyRef": {"name": "k", "key": "token"}}}]},
        "workload": {"replicas": 2, "podDisruptionBudget": {"maxUnavailable": 1}},
        "networking": {"expose": {"hostname": "steady.example.com"}},
    });
    api.create(&PostParams::default(), &object("v1alpha2", "steady", spec))
        .await?;
    wait_phase(&api, "steady", "Ready")
        .await
        .with_context(|| op.log_text())?;
    // Let the pods' last status changes settle into the CR status.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let offset = audit_offset()?;
    let reconciles = op.counter("llsd_reconciles_total").await?;

    // A watched Secret changes (a label): the CR is reconciled again.
    ns.api::<Secret>()
        .patch(
            "k",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": "1"}}})),
        )
        .await?;
    eventually(
        "a reconcile after the Secret change",
        Duration::from_secs(30),
        || async { Ok((op.counter("llsd_reconciles_total").await? > reconciles).then_some(())) },
    )
    .await?;
    // A restart reconciles everything once more.
    op.stop();
    let op2 = Operator::start(ns.name(), &[]).await?;
    eventually(
        "a reconcile after the restart",
        Duration::from_secs(30),
        || async {
            Ok((op2.counter("llsd_reconciles_total{outcome=\"ok\"}").await? >= 1.0).then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = operator_writes(offset, ns.name())?;
    ensure!(
        writes.is_empty(),
        "steady state wrote: {}",
        writes
            .iter()
            .map(|w| format!(
                "{} {}/{} {}",
                w["verb"],
                w["objectRef"]["resource"],
                w["objectRef"]["name"],
                w["objectRef"]["subresource"]
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ns.delete().await
}

/// FR-025a, D10: spec changes create new ConfigMaps; only the newest two remain.
#[tokio::test]
async fn generated_configmaps_are_pruned_to_two() -> Result<()> {
    let (client, ns, op) = setup("ctl-prune").await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    let spec = |models: &[&str]| {
        json!({
            "distribution": {"name": "starter"},
            "providers": {"inference": [{"provider": "vllm", "endpoint": "http://vllm:8000/v1"}]},
            "resources": {"models": models.iter().map(|m| json!({"name": m})).collect::<Vec<_>>()},
        })
    };
    api.create(
        &PostParams::default(),
        &object("v1alpha2", "prune", spec(&["a"])),
    )
    .await?;
    wait_phase(&api, "prune", "Ready")
        .await
        .with_context(|| op.log_text())?;
    for (g, models) in [
        (2, vec!["a", "b"]),
        (3, vec!["a", "b", "c"]),
        (4, vec!["d"]),
    ] {
        api.patch(
            "prune",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": spec(&models)})),
        )
        .await?;
        wait_cr(&api, "prune", READY, |o| {
            status(o)["observedGeneration"] == g && phase(o) == "Ready"
        })
        .await
        .with_context(|| op.log_text())?;
    }
    let cr = api.get("prune").await?;
    let current = status(&cr)["configGeneration"]["configMapName"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let lp = ListParams::default()
        .labels("app.kubernetes.io/instance=prune,app.kubernetes.io/component=generated-config");
    let names = eventually(
        "two generated ConfigMaps",
        Duration::from_secs(30),
        || async {
            let items = ns.api::<ConfigMap>().list(&lp).await?.items;
            let names: Vec<String> = items.into_iter().filter_map(|c| c.metadata.name).collect();
            Ok((names.len() == 2).then_some(names))
        },
    )
    .await?;
    ensure!(
        names.contains(&current),
        "the current one is kept: {names:?}"
    );
    ns.delete().await
}

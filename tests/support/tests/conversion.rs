//! Issue 6, conversion: the real API server calls the operator's conversion webhook (HTTPS,
//! the built-in component behind it). v1alpha1 objects are stored as v1alpha2 and read back
//! in either version with nothing lost (FR-080..083). FAILS, never skips, without `KUBECONFIG`.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use llama_stack_operator::api::crd;
use llsd_test_support::k8s_openapi::ByteString;
use llsd_test_support::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookClientConfig;
use llsd_test_support::kube::api::{Patch, PatchParams, PostParams};
use llsd_test_support::{TestNamespace, client};
use serde_json::json;

mod common;
use common::{contains, llsd_api, object, v1alpha1_samples};

/// Starts the operator's webhook server on a free loopback port and points the CRD's
/// conversion at it. Returns the server task (abort it to stop).
async fn start(client: &llsd_test_support::kube::Client) -> Result<tokio::task::JoinHandle<()>> {
    let hook = common::start_webhooks().await?;
    let crd = crd::with_conversion_client(
        crd::crd()?,
        WebhookClientConfig {
            url: Some(hook.url(crd::CONVERSION_PATH)),
            ca_bundle: Some(ByteString(hook.ca.clone().into_bytes())),
            service: None,
        },
    );
    common::install_crd(client, crd).await?;
    Ok(hook.task)
}

#[tokio::test]
async fn the_api_server_converts_through_the_operator() -> Result<()> {
    let client = client().await?;
    let server = start(&client).await?;
    let ns = TestNamespace::create(&client, "conversion").await?;
    let v1 = llsd_api(&client, ns.name(), "v1alpha1");
    let v2 = llsd_api(&client, ns.name(), "v1alpha2");

    // The API server may use the old conversion settings for a moment (an object written
    // then would be stored unconverted): probe, and start over until a write converts.
    let probe = (
        "probe",
        json!({"server": {"distribution": {"name": "starter"}, "workers": 3}}),
    );
    let mut ready = false;
    for _ in 0..150 {
        let _ = v1
            .create(
                &PostParams::default(),
                &object("v1alpha1", probe.0, probe.1.clone()),
            )
            .await;
        if let Ok(o) = v1.get(probe.0).await
            && o.data["spec"]["server"]["workers"] == json!(3)
        {
            ready = true;
            break;
        }
        let _ = v1.delete(probe.0, &Default::default()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(
        ready,
        "v1alpha1 objects never read back through the conversion webhook"
    );

    // Every v1alpha1 shape: stored as v1alpha2, read back in v1alpha1 with every field kept.
    let mut diffs = Vec::new();
    for (name, spec) in v1alpha1_samples() {
        v1.create(
            &PostParams::default(),
            &object("v1alpha1", name, spec.clone()),
        )
        .await
        .with_context(|| format!("creating v1alpha1 {name}"))?;
        let back = v1.get(name).await?;
        contains(
            &back.data["spec"],
            &spec,
            &format!("{name}: spec"),
            &mut diffs,
        );
        let hub = v2.get(name).await?;
        ensure!(
            hub.data["spec"]["distribution"] == spec["server"]["distribution"],
            "{name} as v1alpha2: {}",
            hub.data["spec"]
        );
        ensure!(
            hub.data["spec"].get("server").is_none(),
            "{name}: v1alpha1 fields leaked into v1alpha2"
        );
    }
    ensure!(
        diffs.is_empty(),
        "v1alpha1 fields lost in the round trip:\n  {}",
        diffs.join("\n  ")
    );
    let e2e = v2.get("starter-e2e").await?;
    ensure!(
        e2e.data["spec"]["workload"]["workers"] == json!(2),
        "FR-083 workers: {}",
        e2e.data["spec"]
    );
    ensure!(e2e.data["spec"]["workload"]["storage"]["size"] == json!("20Gi"));
    let custom = v2.get("custom-image").await?;
    ensure!(custom.data["spec"]["overrideConfig"] == json!({"configMapName": "llama-config"}));
    ensure!(custom.data["spec"]["networking"]["expose"] == json!({"enabled": true}));

    // A v1alpha2 object read as v1alpha1 keeps its new fields in the annotation and gets them
    // back when read as v1alpha2 again.
    let spec2 = json!({"distribution": {"name": "starter"},
        "providers": {"inference": [{"id": "a", "provider": "vllm", "endpoint": "http://a:8000/v1"}]},
        "resources": {"models": [{"name": "m"}]}, "disabled": ["eval"],
        "workload": {"replicas": 2}});
    v2.create(
        &PostParams::default(),
        &object("v1alpha2", "modern", spec2.clone()),
    )
    .await?;
    let old = v1.get("modern").await?;
    ensure!(
        old.data["spec"]["replicas"] == json!(2),
        "replicas: {}",
        old.data["spec"]
    );
    let parked = old
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("llamastack.io/v1alpha2-fields"))
        .ok_or_else(|| anyhow!("no llamastack.io/v1alpha2-fields on the v1alpha1 view"))?;
    ensure!(
        parked.contains("providers") && parked.contains("vllm"),
        "{parked}"
    );
    // An update through v1alpha1 keeps the v1alpha2-only fields.
    let mut edited = old.clone();
    edited.data["spec"]["replicas"] = json!(4);
    v1.replace("modern", &PostParams::default(), &edited)
        .await
        .context("update through v1alpha1")?;
    let now = v2.get("modern").await?;
    ensure!(
        now.data["spec"]["workload"]["replicas"] == json!(4),
        "{}",
        now.data["spec"]
    );
    let mut kept = Vec::new();
    let mut want = spec2.clone();
    want["workload"]["replicas"] = json!(4);
    contains(&now.data["spec"], &want, "modern", &mut kept);
    ensure!(
        kept.is_empty(),
        "v1alpha2 fields lost through a v1alpha1 update:\n  {}",
        kept.join("\n  ")
    );
    ensure!(
        now.metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("llamastack.io/v1alpha2-fields")),
        "the parking annotation must not show on the v1alpha2 view"
    );

    // Status converts too.
    v1.patch_status(
        "probe",
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": "Ready", "availableReplicas": 1}})),
    )
    .await?;
    let st = v2.get_status("probe").await?;
    ensure!(
        st.data["status"]["phase"] == json!("Ready"),
        "status: {}",
        st.data["status"]
    );

    // A list mixes nothing up.
    let listed = v1.list(&Default::default()).await?;
    ensure!(
        listed.items.len() == v1alpha1_samples().len() + 2,
        "listed {}",
        listed.items.len()
    );
    if listed
        .items
        .iter()
        .any(|o| o.data["spec"].get("server").is_none())
    {
        bail!("a v1alpha1 list returned an unconverted object");
    }
    server.abort();
    Ok(())
}

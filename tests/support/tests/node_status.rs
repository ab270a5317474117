//! Issue 17 on the real node: the operator knows its servers. The status carries what the
//! running server reports; a config the server rejects never takes the old server down, and
//! the CR says why in the server's own words; pods that cannot run are named with the
//! scheduler's or the kubelet's reason; the readiness probe takes a server that stops
//! answering out of its Service.

use anyhow::{Context, Result, ensure};
use llsd_test_support::k8s_openapi::api::core::v1::ConfigMap;
use llsd_test_support::k8s_openapi::api::discovery::v1::EndpointSlice;
use llsd_test_support::kube::api::{Api, ListParams, Patch, PatchParams};
use llsd_test_support::kube::core::DynamicObject;
use llsd_test_support::{eventually, kubectl};
use serde_json::{Value, json};
use std::time::Duration;

mod common;
use common::cr::{condition, phase, status, wait_cr, wait_events};
use common::llsd_api;
use common::node::{data, get_json, ready_server_pods, wait_rolled_out};
use common::samples::{
    RequestLoop, apply_sample, apply_sample_edited, apply_sample_with, serving, setup,
};

/// How long the operator may take to notice what a pod does (pod watch, then a pass).
const NOTICE: Duration = Duration::from_secs(120);

fn condition_is(o: &DynamicObject, type_: &str, state: &str, reason: &str) -> bool {
    condition(o, type_).is_some_and(|c| c["status"] == state && c["reason"] == reason)
}

/// (api, provider_id, provider_type, health.status) of each provider, sorted: the server's
/// answer and the status spell these fields alike.
fn provider_rows(list: &[Value]) -> Vec<[String; 4]> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut rows: Vec<[String; 4]> = list
        .iter()
        .map(|p| {
            [
                s(&p["api"]),
                s(&p["provider_id"]),
                s(&p["provider_type"]),
                s(&p["health"]["status"]),
            ]
        })
        .collect();
    rows.sort();
    rows
}

/// `status.version.llamaStackServerVersion` and `status.distributionConfig.providers` hold
/// what `GET /v1/version` and `GET /v1/providers` answer (as upstream fills them), the
/// `ServerReachable` condition says the operator read them, and `kubectl get -o wide` shows
/// the version.
#[tokio::test]
async fn status_carries_what_the_server_reports() -> Result<()> {
    let (client, ns, op) = setup("node-status").await?;
    apply_sample(ns.name(), "v1alpha2-simple.yaml")?;
    let (_, http, url) = serving(&client, ns.name(), &op, "simple").await?;
    let version = get_json(&http, &format!("{url}/v1/version")).await?["version"]
        .as_str()
        .context("/v1/version has no version")?
        .to_string();
    let answered = get_json(&http, &format!("{url}/v1/providers")).await?;
    let want = provider_rows(&data(&answered));
    ensure!(
        !want.is_empty(),
        "the server lists no providers: {answered}"
    );

    let api = llsd_api(&client, ns.name(), "v1alpha2");
    let cr = wait_cr(&api, "simple", NOTICE, |o| {
        status(o)["version"]["llamaStackServerVersion"] == version.as_str()
    })
    .await
    .with_context(|| op.log_text())?;
    let got = provider_rows(
        status(&cr)["distributionConfig"]["providers"]
            .as_array()
            .context("status.distributionConfig.providers")?,
    );
    ensure!(
        got == want,
        "status providers differ from the server's:\n status {got:?}\n server {want:?}"
    );
    ensure!(
        condition_is(&cr, "ServerReachable", "True", "ServerAnswered"),
        "ServerReachable: {:?}",
        condition(&cr, "ServerReachable")
    );
    let wide = kubectl(
        &["-n", ns.name(), "get", "llsd", "simple", "-o", "wide"],
        None,
    )?;
    let mut lines = wide.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let col = header
        .iter()
        .position(|h| *h == "SERVER")
        .with_context(|| format!("no SERVER column in -o wide:\n{wide}"))?;
    // AGE is one word ("2m"): the columns line up by whitespace.
    ensure!(
        row.get(col) == Some(&version.as_str()),
        "-o wide shows {:?} under SERVER, not {version}:\n{wide}",
        row.get(col)
    );
    ns.delete().await
}

/// A config the server rejects at start-up (the override sample's ConfigMap edited to use
/// `${env.LLSD_TEST_UNSET}`, never set) rolls out a new pod that exits; the old pod keeps
/// serving (a request loop sees no failure), the CR says `Available=True`,
/// `Progressing=False`/`NewConfigNotReady` with the server's own error line, one Warning
/// Event is recorded, retention keeps the ConfigMap the old pod mounts however many newer
/// ones there are, and restoring the ConfigMap recovers without another step.
#[tokio::test]
async fn a_config_the_server_rejects_leaves_the_old_server_serving() -> Result<()> {
    let (client, ns, op) = setup("node-reject").await?;
    // Half a CPU: the old and the new pod run side by side on the node's 2 CPUs.
    apply_sample_with(
        ns.name(),
        "v1alpha2-override.yaml",
        json!({"workload": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}}),
    )?;
    let (good, http, url) = serving(&client, ns.name(), &op, "override").await?;
    let good_config = status(&good)["configGeneration"]["configMapName"]
        .as_str()
        .context("configMapName")?
        .to_string();
    let requests = RequestLoop::start(&http, format!("{url}/v1/models"));

    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let original = maps
        .get("override-llama-config")
        .await?
        .data
        .and_then(|d| d.get("config.yaml").cloned())
        .context("the sample's config.yaml")?;
    // A different variable each time: each edit is a new config.
    let broken = |n: u32| {
        original.replace(
            "max_tokens: 4096",
            &format!("max_tokens: ${{env.LLSD_TEST_UNSET_{n}}}"),
        )
    };
    let set_config = |text: String| {
        let maps = maps.clone();
        async move {
            maps.patch(
                "override-llama-config",
                &PatchParams::default(),
                &Patch::Merge(&json!({"data": {"config.yaml": text}})),
            )
            .await
        }
    };
    ensure!(
        broken(1) != original,
        "the sample no longer has max_tokens: 4096"
    );
    set_config(broken(1)).await?;

    let api = llsd_api(&client, ns.name(), "v1alpha2");
    let stuck = wait_cr(&api, "override", NOTICE, |o| {
        condition_is(o, "Progressing", "False", "NewConfigNotReady")
    })
    .await
    .with_context(|| op.log_text())?;
    let progressing = condition(&stuck, "Progressing")
        .cloned()
        .unwrap_or_default();
    let message = progressing["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains("LLSD_TEST_UNSET") && message.contains("previous config keep serving"),
        "Progressing does not quote the server's error: {progressing}"
    );
    ensure!(
        condition_is(&stuck, "Available", "True", "MinimumReplicasAvailable"),
        "Available while the old pod serves: {:?}",
        condition(&stuck, "Available")
    );
    ensure!(phase(&stuck) == "Failed", "phase {}", phase(&stuck));

    // Two more broken edits: four generated ConfigMaps, the old pod's the oldest.
    for n in [2, 3] {
        let before = status(&wait_cr(&api, "override", NOTICE, |_| true).await?)
            ["configGeneration"]["configMapName"]
            .clone();
        set_config(broken(n)).await?;
        wait_cr(&api, "override", NOTICE, |o| {
            status(o)["configGeneration"]["configMapName"] != before
        })
        .await?;
    }
    let generated: Vec<String> = maps
        .list(&ListParams::default().labels("app.kubernetes.io/component=generated-config"))
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    ensure!(
        generated.contains(&good_config),
        "retention deleted {good_config}, which the serving pod mounts: {generated:?}"
    );
    let events = wait_events(&client, ns.name(), "override", &["NewConfigNotReady"]).await?;
    let stalls = events
        .iter()
        .filter(|(r, _)| r == "NewConfigNotReady")
        .count();
    ensure!(
        stalls == 1,
        "one Warning per stalled rollout, got {stalls}: {events:?}"
    );

    // The fix: the original config rolls out, with no step besides the edit.
    set_config(original).await?;
    let fixed = wait_cr(&api, "override", common::node::SERVER_READY, |o| {
        phase(o) == "Ready" && condition_is(o, "Progressing", "True", "RolloutComplete")
    })
    .await
    .with_context(|| op.log_text())?;
    wait_rolled_out(&client, ns.name(), "override", 1).await?;
    let ok = requests
        .stop_expecting_no_failure("while the rejected config rolled out and back", 100)
        .await?;
    eprintln!(
        "rejected config: {ok} requests, none failed; back on {}",
        status(&fixed)["configGeneration"]["configMapName"]
    );
    ns.delete().await
}

/// Pods that cannot run are named in `Available`: a claim nothing binds (the scheduler's
/// reason) and an image no registry has (the kubelet's).
#[tokio::test]
async fn unschedulable_and_unpullable_server_pods_are_named() -> Result<()> {
    let (client, ns, op) = setup("node-pods").await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    // workload.storage: a PersistentVolumeClaim the node has no provisioner for.
    apply_sample_with(
        ns.name(),
        "v1alpha2-simple.yaml",
        json!({"workload": {"storage": {"size": "1Gi"}}}),
    )?;
    let cr = wait_cr(&api, "simple", NOTICE, |o| {
        condition_is(o, "Available", "False", "Unschedulable") && phase(o) == "Pending"
    })
    .await
    .with_context(|| op.log_text())?;
    available_names(&cr, "PersistentVolumeClaim")?;

    // An image that is nowhere: the override sample run on it from the start. (Patched in
    // after the sample's own image, the first pod could be Ready before the new one failed,
    // and then Available is rightly True: the old pod serves.)
    let missing = "127.0.0.1:9/llsd/missing:1";
    apply_sample_edited(ns.name(), "v1alpha2-override.yaml", |spec| {
        spec["distribution"] = json!({"image": missing});
        Ok(())
    })?;
    let cr = wait_cr(&api, "override", NOTICE, |o| {
        condition_is(o, "Available", "False", "ImagePullFailed")
    })
    .await
    .with_context(|| op.log_text())?;
    available_names(&cr, missing)?;
    ns.delete().await
}

/// `Available`'s message names `what`.
fn available_names(cr: &DynamicObject, what: &str) -> Result<()> {
    let available = condition(cr, "Available").cloned().unwrap_or_default();
    ensure!(
        available["message"]
            .as_str()
            .is_some_and(|m| m.contains(what)),
        "Available does not name {what}: {available}"
    );
    Ok(())
}

/// The readiness probe: a server that stops answering (its processes stopped with SIGSTOP
/// from the node) leaves its Service's endpoints, and comes back when it answers again.
#[tokio::test]
async fn a_server_that_stops_answering_leaves_the_service() -> Result<()> {
    let (client, ns, op) = setup("node-ready").await?;
    apply_sample(ns.name(), "v1alpha2-simple.yaml")?;
    serving(&client, ns.name(), &op, "simple").await?;
    let pods = ready_server_pods(&client, ns.name(), "simple").await?;
    let container = pods
        .first()
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.container_id.as_deref())
        .and_then(|id| id.strip_prefix("containerd://"))
        .context("the server container's id")?
        .to_string();
    let signal = |sig: &str| -> Result<()> {
        let socket = std::env::var("LLSD_NODE_CONTAINERD").context("LLSD_NODE_CONTAINERD")?;
        let out = std::process::Command::new("ctr")
            .args([
                "--address",
                &socket,
                "--namespace",
                "k8s.io",
                "tasks",
                "kill",
                "--all",
                "--signal",
                sig,
                &container,
            ])
            .output()?;
        ensure!(
            out.status.success(),
            "ctr tasks kill {sig}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns.name());
    let ready_endpoints = || {
        let slices = slices.clone();
        async move {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=simple-service"))
                .await?;
            Ok::<usize, anyhow::Error>(
                list.items
                    .iter()
                    .flat_map(|s| s.endpoints.iter().flatten())
                    .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                    .count(),
            )
        }
    };
    ensure!(ready_endpoints().await? == 1, "one ready endpoint before");
    signal("SIGSTOP")?;
    let stopped = std::time::Instant::now();
    let result = eventually(
        "the stopped server out of the Service's endpoints",
        Duration::from_secs(90),
        || async { Ok((ready_endpoints().await? == 0).then_some(())) },
    )
    .await;
    let left_after = stopped.elapsed();
    // Always resume it: a stopped process holds the namespace's deletion.
    signal("SIGCONT")?;
    result?;
    eventually(
        "the resumed server back in the Service's endpoints",
        Duration::from_secs(90),
        || async { Ok((ready_endpoints().await? == 1).then_some(())) },
    )
    .await?;
    eprintln!("readiness: a stopped server left the endpoints after {left_after:?}");
    ns.delete().await
}

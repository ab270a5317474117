//! Controller benchmark (issue 7), on the local control plane started by tests/cluster/up:
//!   1. operator start-up: process spawn to `/readyz` 200;
//!   2. 50 CRs applied one after another: time from each create to its Deployment existing
//!      and to phase Ready (p50, p99);
//!   3. 200 CRs created at once: time until all are Ready, the operator's peak RSS and its
//!      CPU seconds (from /proc).
//!
//! Run: `tests/bench/controller.sh` (builds the release operator, starts the cluster).

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PostParams};
use llsd_test_support::bench::{
    Killed, Seen, llsd, percentile, proc_stats, readyz, spawn_watches, wait_all_ready,
};
use serde_json::json;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn cr(name: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "llamastack.io/v1alpha2", "kind": "LlamaStackDistribution",
        "metadata": {"name": name},
        "spec": {"distribution": {"name": "starter"},
                 "providers": {"inference": [{"provider": "vllm", "endpoint": "http://vllm:8000/v1"}]},
                 "resources": {"models": [{"name": "llama-3.1-8b"}]}},
    }))?)
}

#[tokio::main]
async fn main() -> Result<()> {
    llsd_test_support::install_crypto_provider();
    let bin = std::env::var("LLSD_OPERATOR_BIN").context("LLSD_OPERATOR_BIN")?;
    let client = llsd_test_support::client().await?;
    let ns = format!("llsd-bench-{}", std::process::id());
    let nss: Api<Namespace> = Api::all(client.clone());
    // An earlier run's namespace (250 pods) still being torn down keeps the controller-manager
    // and the scheduler busy: a pod of this run then waited 8 s to be scheduled (p99 13 s).
    // Start on a quiet cluster.
    let quiet = Instant::now();
    loop {
        let left: Vec<String> = nss
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .filter(|n| n.starts_with("llsd-bench-"))
            .collect();
        if left.is_empty() {
            break;
        }
        if quiet.elapsed() > Duration::from_secs(180) {
            bail!("earlier benchmark namespaces still exist after 180 s: {left:?}");
        }
        for n in &left {
            let _ = nss.delete(n, &Default::default()).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
    )
    .await?;

    // The operator's log, for a run that fails (its path is printed).
    let log = std::env::temp_dir().join(format!("controller-bench-operator-{ns}.log"));
    eprintln!("operator log: {}", log.display());

    // 1. start-up
    let t0 = Instant::now();
    let child = Command::new(&bin)
        .args([
            "run",
            "--namespace",
            &ns,
            "--watch-namespace",
            &ns,
            "--bind-address",
            "127.0.0.1",
        ])
        .args([
            "--webhook-port",
            "29443",
            "--metrics-port",
            "29080",
            "--probe-port",
            "29081",
            "--webhook-host",
            "127.0.0.1",
        ])
        .args([
            "--webhook-secret",
            "bench-cert",
            "--mutating-webhook-configuration",
            "absent",
            "--validating-webhook-configuration",
            "absent",
        ])
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&log)?)
        .stderr(Stdio::null())
        .spawn()?;
    let child = Killed(child);
    while !readyz(29081).await {
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("operator not ready in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let startup = t0.elapsed();
    println!(
        "startup to /readyz: {:.0} ms",
        startup.as_secs_f64() * 1000.0
    );

    let seen = Arc::new(Mutex::new(Seen::default()));
    spawn_watches(&client, &ns, seen.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let api = llsd(&client, &ns);

    // 2. 50 CRs one after another
    let mut applied = HashMap::new();
    for i in 0..50 {
        let name = format!("seq-{i}");
        applied.insert(name.clone(), Instant::now());
        api.create(&PostParams::default(), &cr(&name)?).await?;
        // Wait for this one to be Ready before the next: latency, not throughput.
        let start = Instant::now();
        loop {
            if seen
                .lock()
                .map(|s| s.ready.contains_key(&name))
                .unwrap_or(false)
            {
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("{name} not Ready in 60 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let (mut to_dep, mut to_ready) = (Vec::new(), Vec::new());
    if let Ok(s) = seen.lock() {
        for (n, t) in &applied {
            if let Some(d) = s.deployment.get(n) {
                to_dep.push(d.duration_since(*t).as_secs_f64() * 1000.0);
            }
            if let Some(r) = s.ready.get(n) {
                to_ready.push(r.duration_since(*t).as_secs_f64() * 1000.0);
            }
        }
    }
    to_dep.sort_by(f64::total_cmp);
    to_ready.sort_by(f64::total_cmp);
    println!(
        "50 CRs, apply -> Deployment created: p50 {:.0} ms, p99 {:.0} ms",
        percentile(&to_dep, 50.0),
        percentile(&to_dep, 99.0)
    );
    println!(
        "50 CRs, apply -> phase Ready:        p50 {:.0} ms, p99 {:.0} ms",
        percentile(&to_ready, 50.0),
        percentile(&to_ready, 99.0)
    );

    // 3. 200 CRs at once
    let cpu_before = proc_stats(child.0.id())?.cpu_seconds;
    let t = Instant::now();
    let names: Vec<String> = (0..200).map(|i| format!("burst-{i}")).collect();
    let creates = names.iter().map(|n| {
        let api = api.clone();
        let n = n.clone();
        async move {
            api.create(&PostParams::default(), &cr(&n)?)
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        }
    });
    for r in futures_util::future::join_all(creates).await {
        r?;
    }
    let deployed = wait_all_ready(&seen, &names, t, Duration::from_secs(600)).await?;
    let total = t.elapsed();
    let after = proc_stats(child.0.id())?;
    let (hwm_kb, cpu_after) = (after.peak_rss_kib, after.cpu_seconds);
    if let Some(d) = deployed {
        println!(
            "200 CRs created at once -> all Deployments created: {:.1} s",
            d.as_secs_f64()
        );
    }
    println!(
        "200 CRs created at once -> all Ready: {:.1} s",
        total.as_secs_f64()
    );
    println!(
        "operator peak RSS (VmHWM, whole run): {:.1} MiB",
        hwm_kb as f64 / 1024.0
    );
    println!(
        "operator CPU for the 200 CRs: {:.1} s (whole run {:.1} s)",
        cpu_after - cpu_before,
        cpu_after
    );

    drop(child);
    nss.delete(&ns, &Default::default()).await?;
    Ok(())
}
